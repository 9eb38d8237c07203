//! COPY IN: an artifact streamed from the store into one table with `COPY … FROM STDIN`, in one
//! transaction (a failed load leaves the table as it was). JSONL is turned into CSV here, line
//! by line, so Postgres's line numbers are the artifact's.

use futures::SinkExt;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::{cap, invalid, pg_err};
use crate::caps::CallCtx;
use crate::caps::infra::host::postgres::{CopyInRequest, CopyInResult, LoadFormat, PgError};
use crate::caps::infra::host::types::CapError;

/// Bytes read from the artifact, and sent to the server, per chunk.
const CHUNK: usize = 256 * 1024;
/// Longest identifier Postgres keeps (NAMEDATALEN - 1).
const MAX_IDENT: usize = 63;

/// A plain identifier, double-quoted: letters, digits, `_` and `$`, not starting with a digit.
/// Anything else is refused rather than escaped, so no name an agent picks reads as SQL.
fn ident(name: &str, field: &str) -> Result<String, PgError> {
    let mut bytes = name.bytes();
    let ok = name.len() <= MAX_IDENT
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$');
    if !ok {
        return Err(invalid(format!(
            "{field}: '{name}' is not a plain identifier; use letters, digits, '_' and '$' \
             (at most {MAX_IDENT}, not starting with a digit), e.g. \"events\""
        )));
    }
    Ok(format!("\"{name}\""))
}

/// `table` or `schema.table`, each part a plain identifier, quoted.
fn table_name(table: &str) -> Result<String, PgError> {
    match table.split_once('.') {
        Some((s, t)) => Ok(format!("{}.{}", ident(s, "table")?, ident(t, "table")?)),
        None => ident(table, "table"),
    }
}

/// Appends one JSON value as a CSV field: NULL unquoted and empty, text quoted.
fn push_field(out: &mut Vec<u8>, v: Option<&Value>) {
    let text = match v {
        None | Some(Value::Null) => return,
        Some(Value::Bool(b)) => return out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Some(Value::Number(n)) => return out.extend_from_slice(n.to_string().as_bytes()),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    out.push(b'"');
    for b in text.bytes() {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// JSON lines to CSV records, one record per line so the server's line numbers hold.
struct JsonlToCsv {
    columns: Vec<String>,
    /// An unfinished line carried to the next chunk.
    pending: Vec<u8>,
    line: u64,
    /// A blank line seen: only more blank lines may follow it.
    blank_at: Option<u64>,
}

impl JsonlToCsv {
    fn new(columns: Vec<String>) -> Self {
        JsonlToCsv {
            columns,
            pending: Vec::new(),
            line: 0,
            blank_at: None,
        }
    }

    /// Converts the whole lines of `chunk` (with what was pending) into `out`.
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', chunk) {
            if self.pending.is_empty() {
                self.line_to_csv(&chunk[start..nl], out)?;
            } else {
                self.pending.extend_from_slice(&chunk[start..nl]);
                let line = std::mem::take(&mut self.pending);
                self.line_to_csv(&line, out)?;
            }
            start = nl + 1;
        }
        self.pending.extend_from_slice(&chunk[start..]);
        Ok(())
    }

    /// Converts a last line without a newline.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let line = std::mem::take(&mut self.pending);
        if !line.is_empty() {
            self.line_to_csv(&line, out)?;
        }
        Ok(())
    }

    fn line_to_csv(&mut self, line: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        self.line += 1;
        let n = self.line;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            self.blank_at.get_or_insert(n);
            return Ok(());
        }
        if let Some(b) = self.blank_at {
            return Err(format!(
                "line {b} is blank and more rows follow it; JSONL holds one object per line — remove the blank line"
            ));
        }
        let obj: Map<String, Value> = serde_json::from_slice(line).map_err(|e| {
            format!("line {n}: not a JSON object ({e}); JSONL holds one object per line")
        })?;
        if let Some(k) = obj.keys().find(|k| !self.columns.iter().any(|c| c == *k)) {
            return Err(format!(
                "line {n}: key '{k}' is not one of the loaded columns ({}); drop it or name it in `columns`",
                self.columns.join(", ")
            ));
        }
        for (i, c) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_field(out, obj.get(c));
        }
        out.push(b'\n');
        Ok(())
    }
}

/// A server error with where it happened (`COPY t, line 3, column n: "x"`), which names the line.
fn copy_err(e: &tokio_postgres::Error, label: &str, table: &str) -> PgError {
    match (
        pg_err(e, label, 0),
        e.as_db_error().and_then(|d| d.where_()),
    ) {
        (PgError::Sql(mut s), Some(w)) => {
            s.message = format!(
                "{} (at {w}); nothing was loaded: {table} is as it was — fix that line and load again",
                s.message
            );
            PgError::Sql(s)
        }
        (PgError::Sql(mut s), None) => {
            s.message = format!("{}; nothing was loaded: {table} is as it was", s.message);
            PgError::Sql(s)
        }
        (other, _) => other,
    }
}

impl CallCtx {
    pub(super) async fn pg_copy_in(&self, req: CopyInRequest) -> Result<CopyInResult, PgError> {
        let call = self;
        let table = table_name(&req.table)?;
        let mut columns = Vec::with_capacity(req.columns.len());
        for (i, c) in req.columns.iter().enumerate() {
            columns.push(ident(c, &format!("columns[{i}]"))?);
        }
        let t = call.pg_target(&req.profile, None)?;
        if let Some(why) = &t.read_only {
            return Err(cap(CapError::Denied(format!(
                "a load writes to {}, and this call is read-only ({why}); use a writable profile",
                t.label
            ))));
        }
        call.require("artifacts", &req.source)
            .map_err(|r| cap(CapError::Denied(r)))?;
        let (mut file, _) = call
            .shared
            .artifacts
            .reader(&req.source)
            .await
            .map_err(|e| {
                cap(CapError::NotFound(format!(
                    "source: artifact {}: {e:#}; give an artifact:// URI this server stored",
                    req.source
                )))
            })?;
        let ms = call.pg_budget(req.timeout_ms);
        let label = t.label.clone();
        let format = req.format;
        let names = req.columns.clone();
        let ev = call.event("postgres", &format!("{} table {}", t.label, req.table));
        let r = call
            .with_client(&t, ms, move |client| {
                Box::pin(async move {
                    let err = |e: tokio_postgres::Error| pg_err(&e, &label, 0);
                    let tx = super::begin(client, false, ms).await.map_err(err)?;
                    // JSON keys are matched against column names, so a JSONL load with no
                    // column list needs the table's own.
                    let names = if names.is_empty() && matches!(format, LoadFormat::Jsonl) {
                        let st = tx
                            .prepare(&format!("SELECT * FROM {table} LIMIT 0"))
                            .await
                            .map_err(err)?;
                        st.columns().iter().map(|c| c.name().to_string()).collect()
                    } else {
                        names
                    };
                    let list = if names.is_empty() {
                        String::new()
                    } else {
                        let quoted: Vec<String> = names
                            .iter()
                            .map(|n| format!("\"{}\"", n.replace('"', "\"\"")))
                            .collect();
                        format!(" ({})", quoted.join(", "))
                    };
                    let header = if matches!(format, LoadFormat::CsvHeader) {
                        ", HEADER"
                    } else {
                        ""
                    };
                    let sql = format!("COPY {table}{list} FROM STDIN (FORMAT csv{header})");
                    let sink = tx
                        .copy_in::<_, bytes::Bytes>(sql.as_str())
                        .await
                        .map_err(|e| copy_err(&e, &label, &table))?;
                    futures::pin_mut!(sink);
                    let mut jsonl =
                        matches!(format, LoadFormat::Jsonl).then(|| JsonlToCsv::new(names));
                    let mut hash = Sha256::new();
                    let mut bytes = 0u64;
                    let mut buf = vec![0u8; CHUNK];
                    let mut csv = Vec::with_capacity(CHUNK * 2);
                    let bad = |m: String| invalid(format!("source: {m}; nothing was loaded"));
                    loop {
                        let n = file.read(&mut buf).await.map_err(|e| {
                            cap(CapError::Failed(format!("reading the artifact: {e}")))
                        })?;
                        let chunk = &buf[..n];
                        hash.update(chunk);
                        bytes += n as u64;
                        let out = match jsonl.as_mut() {
                            Some(j) if n == 0 => {
                                j.finish(&mut csv).map_err(bad)?;
                                std::mem::take(&mut csv)
                            }
                            Some(j) => {
                                j.feed(chunk, &mut csv).map_err(bad)?;
                                std::mem::take(&mut csv)
                            }
                            None => chunk.to_vec(),
                        };
                        if !out.is_empty() {
                            sink.send(bytes::Bytes::from(out))
                                .await
                                .map_err(|e| copy_err(&e, &label, &table))?;
                        }
                        if n == 0 {
                            break;
                        }
                    }
                    let rows = sink
                        .as_mut()
                        .finish()
                        .await
                        .map_err(|e| copy_err(&e, &label, &table))?;
                    tx.commit().await.map_err(err)?;
                    Ok(CopyInResult {
                        rows,
                        bytes,
                        sha256: hex::encode(hash.finalize()),
                    })
                })
            })
            .await;
        let r = t.unclip(r);
        let detail = match &r {
            Ok(c) => format!("{} rows loaded ({} bytes)", c.rows, c.bytes),
            Err(_) => String::new(),
        };
        call.pg_event(ev, &r, detail);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(cols: &[&str], chunks: &[&[u8]]) -> Result<String, String> {
        let mut j = JsonlToCsv::new(cols.iter().map(|c| c.to_string()).collect());
        let mut out = Vec::new();
        for c in chunks {
            j.feed(c, &mut out)?;
        }
        j.finish(&mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn jsonl_lines_become_csv_records_across_chunks() {
        let csv = convert(
            &["id", "name", "tags"],
            &[
                b"{\"id\":1,\"name\":\"a \\\"q\\\"\\nb\"}\n{\"id\":",
                b"2,\"tags\":[1],\"name\":null}",
            ],
        )
        .unwrap();
        assert_eq!(csv, "1,\"a \"\"q\"\"\nb\",\n2,,\"[1]\"\n");
    }

    #[test]
    fn jsonl_errors_name_the_line() {
        let e = convert(&["id"], &[b"{\"id\":1}\n{\"id\":2,\"x\":3}\n"]).unwrap_err();
        assert!(e.starts_with("line 2: key 'x'"), "{e}");
        let e = convert(&["id"], &[b"{\"id\":1}\n\n{\"id\":2}\n"]).unwrap_err();
        assert!(e.starts_with("line 2 is blank"), "{e}");
        let e = convert(&["id"], &[b"[1]\n"]).unwrap_err();
        assert!(e.starts_with("line 1: not a JSON object"), "{e}");
    }

    #[test]
    fn identifiers_with_sql_are_refused() {
        assert!(table_name("public.events").is_ok());
        assert!(table_name("t; DROP TABLE x").is_err());
        assert!(table_name("a.b.c").is_err());
        assert!(ident("x\"y", "columns[0]").is_err());
    }
}
