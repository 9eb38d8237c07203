//! The two ends of a flow: checked from the arguments, then the source read into an artifact
//! by the host and the destination written from it — every byte moves inside the host.

use infra_sdk::prelude::*;

use crate::args::{End, Format, Kind};
use crate::caps::http::{self, KeyValue};
use crate::caps::postgres::{self, CopyFormat, LoadFormat, PgError};
use crate::caps::ssh::{self, StdinSource};
use crate::caps::types::ArtifactRef;

/// Most bytes of a destination's response kept to report.
const RESPONSE_KEPT: u64 = 4096;

/// Where the bytes come from, checked.
#[derive(Debug)]
pub enum Source {
    /// GET a URL.
    Http {
        url: String,
        profile: Option<String>,
        headers: Vec<KeyValue>,
    },
    /// Read a remote file.
    Sftp { target: String, path: String },
    /// COPY a query out.
    Postgres {
        profile: String,
        sql: String,
        format: Format,
    },
}

/// Where the bytes go, checked.
#[derive(Debug)]
pub enum Destination {
    /// Send the bytes as a request body.
    Http {
        url: String,
        profile: Option<String>,
        headers: Vec<KeyValue>,
        method: String,
    },
    /// Write a remote file.
    Sftp {
        target: String,
        path: String,
        mode: Option<u32>,
        mkdirs: bool,
        overwrite: bool,
    },
    /// COPY the bytes into a table.
    Postgres {
        profile: String,
        table: String,
        columns: Vec<String>,
        format: LoadFormat,
    },
}

/// What the source gave: the artifact holding the bytes and, from postgres, the rows.
pub struct Read {
    /// The bytes, as the host stored them.
    pub artifact: ArtifactRef,
    /// Rows exported (postgres source).
    pub rows: Option<u64>,
}

/// What the destination reported.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Written {
    /// Rows loaded (postgres destination).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// The status the server answered (http destination).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The start of the server's answer, scrubbed by the host (http destination).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// The file's size after the write (sftp destination).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// A required text field, non-blank.
fn need(v: &Option<String>, field: &str, what: &str) -> Result<String, ToolError> {
    match v.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(ToolError::invalid(field, format!("give {what}"))),
    }
}

/// Refuses fields of another kind of end, naming the first and what this kind takes.
fn only_own_fields(end: &End, kind: Kind, side: &str, destination: bool) -> Result<(), ToolError> {
    let own = kind.fields(destination);
    if let Some(f) = end.set_fields().into_iter().find(|f| !own.contains(f)) {
        return Err(ToolError::invalid(
            format!("{side}.{f}"),
            format!(
                "a {} {side} takes {}; drop `{f}`",
                kind.name(),
                own.join(", ")
            ),
        ));
    }
    Ok(())
}

fn header_list(end: &End) -> Vec<KeyValue> {
    end.headers
        .iter()
        .flatten()
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// A plain identifier or `schema.table` of them, double-quoted; anything else is refused so no
/// name reads as SQL (the host checks again).
pub fn quoted_table(table: &str, field: &str) -> Result<String, ToolError> {
    let plain = |s: &str| {
        let mut b = s.bytes();
        s.len() <= 63
            && b.next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
            && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$')
    };
    let parts: Vec<&str> = table.split('.').collect();
    if parts.len() > 2 || !parts.iter().all(|p| plain(p)) {
        return Err(ToolError::invalid(
            field,
            format!(
                "'{table}' is not a table name; give `table` or `schema.table` of letters, digits, '_' and '$'"
            ),
        ));
    }
    Ok(parts
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join("."))
}

impl Source {
    /// Checks the source end of a flow whose source is `kind`.
    pub fn parse(end: &End, kind: Kind) -> Result<Source, ToolError> {
        only_own_fields(end, kind, "source", false)?;
        Ok(match kind {
            Kind::Http => Source::Http {
                url: need(&end.url, "source.url", "the URL to download")?,
                profile: end.profile.clone(),
                headers: header_list(end),
            },
            Kind::Sftp => Source::Sftp {
                target: need(
                    &end.target,
                    "source.target",
                    "the targets.json entry to read from",
                )?,
                path: need(&end.path, "source.path", "the remote file to read")?,
            },
            Kind::Postgres => {
                let profile = need(&end.profile, "source.profile", "the postgres profile")?;
                let sql = match (&end.sql, &end.table) {
                    (Some(_), Some(_)) => {
                        return Err(ToolError::invalid(
                            "source.table",
                            "give `sql` or `table`, not both",
                        ));
                    }
                    (Some(_), None) => need(&end.sql, "source.sql", "the query to export")?,
                    (None, Some(t)) => format!("TABLE {}", quoted_table(t, "source.table")?),
                    (None, None) => {
                        return Err(ToolError::invalid(
                            "source.sql",
                            "give the query to export as `sql`, or a `table` to export whole",
                        ));
                    }
                };
                Source::Postgres {
                    profile,
                    sql,
                    format: end.format.unwrap_or_default(),
                }
            }
        })
    }

    /// One line for the plan.
    pub fn describe(&self) -> String {
        match self {
            Source::Http { url, profile, .. } => format!(
                "GET {url}{}",
                profile
                    .as_ref()
                    .map_or(String::new(), |p| format!(" (profile {p})"))
            ),
            Source::Sftp { target, path } => format!("read {path} on target {target} (sftp)"),
            Source::Postgres {
                profile,
                sql,
                format,
            } => format!(
                "COPY ({sql}) TO STDOUT as {} on profile {profile}",
                match format {
                    Format::Csv => "csv with a header line",
                    Format::Jsonl => "jsonl",
                }
            ),
        }
    }

    /// The media type of the bytes it gives, for an http destination's content type.
    pub fn media_type(&self) -> &'static str {
        match self {
            Source::Postgres {
                format: Format::Csv,
                ..
            } => "text/csv",
            Source::Postgres {
                format: Format::Jsonl,
                ..
            } => "application/x-ndjson",
            _ => "application/octet-stream",
        }
    }

    /// Has the host read the source into an artifact, refused past `max_bytes`.
    pub fn read(&self, timeout_ms: u32, max_bytes: u64) -> Result<Read, ToolError> {
        let r = match self {
            Source::Http {
                url,
                profile,
                headers,
            } => {
                let d = http::download(&http::Request {
                    method: "GET".into(),
                    url: url.clone(),
                    headers: headers.clone(),
                    body: None,
                    profile: profile.clone(),
                    timeout_ms,
                    max_bytes,
                    max_redirects: 5,
                    retries: 2,
                })
                .map_err(|e| field(e.into(), "source.url"))?;
                Read {
                    artifact: d.artifact,
                    rows: None,
                }
            }
            Source::Sftp { target, path } => Read {
                artifact: ssh::sftp_read(target, path, max_bytes)
                    .map_err(|e| field(e.into(), "source.path"))?,
                rows: None,
            },
            Source::Postgres {
                profile,
                sql,
                format,
            } => {
                let c = postgres::copy_out(
                    &postgres::Statement {
                        profile: profile.clone(),
                        sql: sql.clone(),
                        params_json: String::new(),
                        read_only: true,
                        timeout_ms,
                        max_rows: 0,
                    },
                    match format {
                        Format::Csv => CopyFormat::Csv,
                        Format::Jsonl => CopyFormat::Jsonl,
                    },
                )
                .map_err(|e| pg_error(e, "source.sql"))?;
                Read {
                    artifact: c.artifact,
                    rows: Some(c.rows),
                }
            }
        };
        // COPY has no size cap of its own but the host's artifact limit.
        if r.artifact.size > max_bytes {
            return Err(ToolError::invalid(
                "max_bytes",
                format!(
                    "the source holds {} bytes, more than max_bytes ({max_bytes}); nothing was written — raise max_bytes or export less",
                    r.artifact.size
                ),
            ));
        }
        Ok(r)
    }
}

impl Destination {
    /// Checks the destination end of a flow whose destination is `kind`.
    pub fn parse(end: &End, kind: Kind) -> Result<Destination, ToolError> {
        only_own_fields(end, kind, "destination", true)?;
        Ok(match kind {
            Kind::Http => {
                let method = end.method.as_deref().unwrap_or("POST").to_ascii_uppercase();
                if !matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
                    return Err(ToolError::invalid(
                        "destination.method",
                        format!("'{method}' sends no body; use POST, PUT or PATCH"),
                    ));
                }
                Destination::Http {
                    url: need(&end.url, "destination.url", "the URL to send the bytes to")?,
                    profile: end.profile.clone(),
                    headers: header_list(end),
                    method,
                }
            }
            Kind::Sftp => Destination::Sftp {
                target: need(
                    &end.target,
                    "destination.target",
                    "the targets.json entry to write to",
                )?,
                path: need(&end.path, "destination.path", "the remote file to write")?,
                mode: end.mode,
                mkdirs: end.mkdirs.unwrap_or(false),
                overwrite: end.overwrite.unwrap_or(false),
            },
            Kind::Postgres => {
                let table = need(&end.table, "destination.table", "the table to load into")?;
                quoted_table(&table, "destination.table")?;
                let columns = end.columns.clone().unwrap_or_default();
                for (i, c) in columns.iter().enumerate() {
                    quoted_table(c, &format!("destination.columns[{i}]"))
                        .ok()
                        .filter(|_| !c.contains('.'))
                        .ok_or_else(|| {
                            ToolError::invalid(
                                format!("destination.columns[{i}]"),
                                format!(
                                    "'{c}' is not a column name; use letters, digits, '_' and '$'"
                                ),
                            )
                        })?;
                }
                let format = match (end.format.unwrap_or_default(), end.header) {
                    (Format::Jsonl, Some(_)) => {
                        return Err(ToolError::invalid(
                            "destination.header",
                            "JSONL has no header line; drop `header`",
                        ));
                    }
                    (Format::Jsonl, None) => LoadFormat::Jsonl,
                    (Format::Csv, Some(false)) => LoadFormat::Csv,
                    (Format::Csv, _) => LoadFormat::CsvHeader,
                };
                Destination::Postgres {
                    profile: need(&end.profile, "destination.profile", "the postgres profile")?,
                    table,
                    columns,
                    format,
                }
            }
        })
    }

    /// One line for the plan.
    pub fn describe(&self) -> String {
        match self {
            Destination::Http {
                url,
                profile,
                method,
                ..
            } => format!(
                "{method} the bytes to {url}{}",
                profile
                    .as_ref()
                    .map_or(String::new(), |p| format!(" (profile {p})"))
            ),
            Destination::Sftp {
                target,
                path,
                overwrite,
                ..
            } => format!(
                "write {path} on target {target} (sftp{})",
                if *overwrite {
                    ", replacing it"
                } else {
                    ", new file"
                }
            ),
            Destination::Postgres {
                profile,
                table,
                columns,
                format,
            } => format!(
                "COPY into table {table}{} from {} on profile {profile}, in one transaction",
                if columns.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", columns.join(", "))
                },
                match format {
                    LoadFormat::Csv => "csv without a header line",
                    LoadFormat::CsvHeader => "csv, its first line a header",
                    LoadFormat::Jsonl => "jsonl",
                }
            ),
        }
    }

    /// The guard's kind and target for a write here.
    pub fn guard_target(&self) -> (&'static str, String) {
        match self {
            // The host (and port) a URL names: what the guard locks and a user approves.
            Destination::Http { url, profile, .. } => (
                "http",
                profile.clone().unwrap_or_else(|| {
                    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
                    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                    let host = &rest[..end];
                    host.rsplit_once('@').map_or(host, |(_, h)| h).to_string()
                }),
            ),
            Destination::Sftp { target, .. } => ("ssh", target.clone()),
            Destination::Postgres { profile, .. } => ("postgres", profile.clone()),
        }
    }

    /// Has the host write the artifact `uri` here.
    pub fn write(
        &self,
        uri: &str,
        media_type: &str,
        timeout_ms: u32,
    ) -> Result<Written, ToolError> {
        let none = Written {
            rows: None,
            status: None,
            response: None,
            size: None,
        };
        match self {
            Destination::Http {
                url,
                profile,
                headers,
                method,
            } => {
                let mut headers = headers.clone();
                if !headers
                    .iter()
                    .any(|h| h.key.eq_ignore_ascii_case("content-type"))
                {
                    headers.push(KeyValue {
                        key: "content-type".into(),
                        value: media_type.into(),
                    });
                }
                let resp = http::upload(
                    &http::Request {
                        method: method.clone(),
                        url: url.clone(),
                        headers,
                        body: None,
                        profile: profile.clone(),
                        timeout_ms,
                        max_bytes: RESPONSE_KEPT,
                        max_redirects: 0,
                        retries: 0,
                    },
                    uri,
                )
                .map_err(|e| field(e.into(), "destination.url"))?;
                let text = String::from_utf8_lossy(&resp.body).into_owned();
                if !(200..300).contains(&resp.status) {
                    return Err(ToolError::failed(format!(
                        "{url} answered {} to the upload: {text}; check the destination URL and its auth",
                        resp.status
                    ))
                    .with_detail(json!({"status": resp.status})));
                }
                Ok(Written {
                    status: Some(resp.status),
                    response: Some(text),
                    ..none
                })
            }
            Destination::Sftp {
                target,
                path,
                mode,
                mkdirs,
                overwrite,
            } => {
                let st = ssh::sftp_write(
                    target,
                    path,
                    &StdinSource::Artifact(uri.to_string()),
                    *mode,
                    *mkdirs,
                    *overwrite,
                )
                .map_err(|e| field(e.into(), "destination.path"))?;
                Ok(Written {
                    size: Some(st.size),
                    ..none
                })
            }
            Destination::Postgres {
                profile,
                table,
                columns,
                format,
            } => {
                let r = postgres::copy_in(&postgres::CopyInRequest {
                    profile: profile.clone(),
                    table: table.clone(),
                    columns: columns.clone(),
                    format: *format,
                    source: uri.to_string(),
                    timeout_ms,
                })
                .map_err(|e| pg_error(e, "destination.table"))?;
                Ok(Written {
                    rows: Some(r.rows),
                    ..none
                })
            }
        }
    }
}

/// Names `f` as the field of a host error that names none.
fn field(mut e: ToolError, f: &str) -> ToolError {
    if e.field.is_none() {
        e.field = Some(f.into());
    }
    e
}

/// A postgres error as a tool error: the server's message (with the line of a bad row), its
/// SQLSTATE in `detail`.
fn pg_error(e: PgError, f: &str) -> ToolError {
    match e {
        PgError::Cap(c) => field(c.into(), f),
        PgError::Sql(s) => ToolError {
            field: Some(f.into()),
            ..ToolError::failed(format!("{} (SQLSTATE {})", s.message, s.code))
                .with_detail(json!({"sqlstate": s.code, "message": s.message}))
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_with_sql_in_it_is_refused() {
        assert_eq!(quoted_table("public.t", "f").unwrap(), "\"public\".\"t\"");
        for bad in ["t; DROP TABLE x", "t\"--", "a.b.c", "", "1t"] {
            assert!(quoted_table(bad, "f").is_err(), "{bad}");
        }
    }

    #[test]
    fn fields_of_another_kind_are_named() {
        let end = End {
            url: Some("http://x".into()),
            table: Some("t".into()),
            ..End::default()
        };
        let e = Source::parse(&end, Kind::Http).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("source.table"));
    }
}
