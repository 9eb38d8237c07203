//! COPY OUT: a query's rows streamed from the server through the scrubber into an artifact.

use futures::StreamExt;

use super::{cap, invalid, parse_params, pg_err, read_only};
use crate::artifacts::{ArtifactMeta, Measured, ScrubbedSink};
use crate::caps::CallCtx;
use crate::caps::infra::host::postgres::{CopyFormat, CopyResult, PgError, Statement};
use crate::caps::infra::host::types::CapError;

/// Counts records in a COPY stream: newlines outside quotes.
struct RecordCounter {
    quote: Option<u8>,
    inside: bool,
    lines: u64,
}

impl RecordCounter {
    fn feed(&mut self, chunk: &[u8]) {
        let Some(q) = self.quote else {
            self.lines += memchr::memchr_iter(b'\n', chunk).count() as u64;
            return;
        };
        // Only quotes and newlines matter: jump between them rather than look at every byte.
        for i in memchr::memchr2_iter(q, b'\n', chunk) {
            if chunk[i] == q {
                self.inside = !self.inside;
            } else if !self.inside {
                self.lines += 1;
            }
        }
    }
}

impl CallCtx {
    pub(super) async fn pg_copy_out(
        &self,
        stmt: Statement,
        format: CopyFormat,
    ) -> Result<CopyResult, PgError> {
        let call = self;
        let t = call.pg_target(&stmt.profile, Some("an export always runs read-only"))?;
        read_only::check_export(&stmt.sql).map_err(invalid)?;
        call.require("artifacts", "copy-out")
            .map_err(|r| cap(CapError::Denied(r)))?;
        if !parse_params(&stmt.params_json)?.is_empty() {
            return Err(invalid(
                "params: COPY cannot bind parameters; export a query without $n placeholders",
            ));
        }
        let sql = stmt
            .sql
            .trim_end()
            .trim_end_matches(';')
            .trim_end()
            .to_string();
        let (prefix_sql, suffix, media_type, quote) = match format {
            CopyFormat::Csv => (
                "COPY (\n",
                "\n) TO STDOUT (FORMAT csv, HEADER)",
                "text/csv",
                Some(b'"'),
            ),
            // CSV framing with a quote and delimiter that JSON text never holds raw: each line
            // is the JSON as row_to_json wrote it, with no text-format escaping.
            CopyFormat::Jsonl => (
                "COPY (SELECT row_to_json(q) FROM (\n",
                "\n) AS q) TO STDOUT (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')",
                "application/x-ndjson",
                None,
            ),
        };
        let ms = call.pg_budget(stmt.timeout_ms);
        let label = t.label.clone();
        let shared = call.shared.clone();
        let limit = shared.policy.limits().artifact_bytes;
        let meta = ArtifactMeta {
            media_type: media_type.into(),
            tool: call.tool.clone(),
            trace_id: call.trace_id.clone(),
            description: format!(
                "COPY export ({}) from {}",
                if quote.is_some() { "csv" } else { "jsonl" },
                t.label
            ),
        };
        let ev = call.event("postgres", &t.label);
        let r = call
            .with_client(&t, ms, move |client| {
                Box::pin(async move {
                    let err = |e: tokio_postgres::Error| pg_err(&e, &label, 0);
                    let tx = super::begin(client, true, ms).await.map_err(err)?;
                    // Prepared alone first: one statement that returns rows, and errors point
                    // into the caller's SQL.
                    let st = tx.prepare(&sql).await.map_err(err)?;
                    if st.columns().is_empty() {
                        return Err(invalid(
                            "sql: export needs a query that returns rows (SELECT, VALUES, TABLE …)",
                        ));
                    }
                    drop(st);
                    let wrapped = format!("{prefix_sql}{sql}{suffix}");
                    let offset = prefix_sql.chars().count() as u32;
                    let stream = tx
                        .copy_out(wrapped.as_str())
                        .await
                        .map_err(|e| pg_err(&e, &label, offset))?;
                    futures::pin_mut!(stream);
                    // Measured on scrubbed bytes: a secret is replaced before any cut could
                    // split it. Past the limit the export fails and the partial artifact is
                    // removed (the sink is dropped unfinished).
                    let mut sink = ScrubbedSink::open(
                        &shared.artifacts,
                        &shared.redactor,
                        meta,
                        limit,
                        Measured::Stored,
                    )
                    .await
                    .map_err(|e| cap(CapError::Failed(format!("{e:#}"))))?;
                    let too_large = || {
                        format!(
                            "the export passed {limit} bytes, the most one artifact may \
                             hold ([limits] artifact_bytes of the policy); export fewer rows \
                             or columns (WHERE, LIMIT, a column list), or ask the operator \
                             to raise the limit"
                        )
                    };
                    let mut counter = RecordCounter {
                        quote,
                        inside: false,
                        lines: 0,
                    };
                    while let Some(chunk) = stream.next().await {
                        let chunk = chunk.map_err(|e| pg_err(&e, &label, offset))?;
                        counter.feed(&chunk);
                        sink.write(&chunk)
                            .await
                            .map_err(|e| cap(CapError::from_sink(e, too_large)))?;
                    }
                    let info = sink
                        .finish()
                        .await
                        .map_err(|e| cap(CapError::from_sink(e, too_large)))?;
                    tx.rollback().await.map_err(err)?;
                    let rows = counter.lines - u64::from(quote.is_some() && counter.lines > 0);
                    Ok(CopyResult {
                        artifact: info.into(),
                        rows,
                    })
                })
            })
            .await;
        let r = t.unclip(r);
        let detail = match &r {
            Ok(c) => format!("{} rows to {}", c.rows, c.artifact.uri),
            Err(_) => String::new(),
        };
        call.pg_event(ev, &r, detail);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records_are_counted_outside_quotes() {
        let mut c = RecordCounter {
            quote: Some(b'"'),
            inside: false,
            lines: 0,
        };
        c.feed(b"a,b\n1,\"x\ny\"\n2,\"");
        c.feed(b"\"\"z\"\n");
        assert_eq!(c.lines, 3);
    }
}
