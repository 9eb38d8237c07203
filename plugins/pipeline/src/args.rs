//! The arguments of the `pipeline` tool: the action, the flow and its two ends.

use std::collections::BTreeMap;

use infra_sdk::prelude::*;

/// What to do.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
#[schemars(extend("additionalProperties" = false))]
pub enum Action {
    /// Runs one flow: without `apply: true`, answers with its plan and touches nothing.
    Run(Box<Run>),
    /// Lists the flows and the fields each end takes.
    Describe {},
}

/// One flow to run.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// Which flow.
    pub flow: Flow,
    /// Where the bytes come from (fields of the flow's source kind only).
    pub source: End,
    /// Where the bytes go (fields of the flow's destination kind only).
    pub destination: End,
    /// Largest source accepted, in bytes; a larger one fails and nothing is written (default
    /// and ceiling: the host's `limits.artifact_bytes`).
    pub max_bytes: Option<u64>,
    /// Do it. Without `apply: true` the answer is the plan: nothing is read or written.
    pub apply: Option<bool>,
}

/// The six flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// Download a URL, upload the body to an SFTP path.
    HttpToSftp,
    /// Read an SFTP file, send it as a request body.
    SftpToHttp,
    /// Download a URL, COPY it into a table.
    HttpToPostgres,
    /// Read an SFTP file, COPY it into a table.
    SftpToPostgres,
    /// COPY a query or table out, upload it to an SFTP path.
    PostgresToSftp,
    /// COPY a query or table out, send it as a request body.
    PostgresToHttp,
}

/// The kind of system at one end of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An HTTP(S) URL, through the host's http capability.
    Http,
    /// A file on an SSH target, through the host's sftp.
    Sftp,
    /// A PostgreSQL profile, through the host's COPY.
    Postgres,
}

impl Kind {
    /// The kind's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Sftp => "sftp",
            Kind::Postgres => "postgres",
        }
    }

    /// The `End` fields this kind takes at the source (false) or destination (true).
    pub fn fields(self, destination: bool) -> &'static [&'static str] {
        match (self, destination) {
            (Kind::Http, false) => &["url", "profile", "headers"],
            (Kind::Http, true) => &["url", "profile", "headers", "method"],
            (Kind::Sftp, false) => &["target", "path"],
            (Kind::Sftp, true) => &["target", "path", "mode", "mkdirs", "overwrite"],
            (Kind::Postgres, false) => &["profile", "sql", "table", "format"],
            (Kind::Postgres, true) => &["profile", "table", "columns", "format", "header"],
        }
    }
}

impl Flow {
    /// Every flow, in the order `describe` lists them.
    pub const ALL: [Flow; 6] = [
        Flow::HttpToSftp,
        Flow::SftpToHttp,
        Flow::HttpToPostgres,
        Flow::SftpToPostgres,
        Flow::PostgresToSftp,
        Flow::PostgresToHttp,
    ];

    /// The flow's name, as `flow` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Flow::HttpToSftp => "http_to_sftp",
            Flow::SftpToHttp => "sftp_to_http",
            Flow::HttpToPostgres => "http_to_postgres",
            Flow::SftpToPostgres => "sftp_to_postgres",
            Flow::PostgresToSftp => "postgres_to_sftp",
            Flow::PostgresToHttp => "postgres_to_http",
        }
    }

    /// The kinds of its source and destination.
    pub fn ends(self) -> (Kind, Kind) {
        match self {
            Flow::HttpToSftp => (Kind::Http, Kind::Sftp),
            Flow::SftpToHttp => (Kind::Sftp, Kind::Http),
            Flow::HttpToPostgres => (Kind::Http, Kind::Postgres),
            Flow::SftpToPostgres => (Kind::Sftp, Kind::Postgres),
            Flow::PostgresToSftp => (Kind::Postgres, Kind::Sftp),
            Flow::PostgresToHttp => (Kind::Postgres, Kind::Http),
        }
    }
}

/// Format of the data at a postgres end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// CSV (an export has a header line; a load skips one unless `header: false`).
    #[default]
    Csv,
    /// One JSON object per line, keys are column names.
    Jsonl,
}

/// One end of a flow. Which fields apply depends on its kind (`describe` lists them); a field
/// of another kind is refused, naming it.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct End {
    /// http: absolute URL, or a path relative to the profile's `base_url`.
    pub url: Option<String>,
    /// http: a `profiles.json` entry whose auth the host injects; postgres: the postgres
    /// profile (required).
    pub profile: Option<String>,
    /// http: request headers.
    pub headers: Option<BTreeMap<String, String>>,
    /// http destination: POST (default), PUT or PATCH.
    pub method: Option<String>,
    /// sftp: a `targets.json` entry.
    pub target: Option<String>,
    /// sftp: the remote file's path.
    pub path: Option<String>,
    /// sftp destination: the new file's mode, e.g. 420 (0644).
    pub mode: Option<u32>,
    /// sftp destination: create missing parent directories (default false).
    pub mkdirs: Option<bool>,
    /// sftp destination: replace an existing file (default false).
    pub overwrite: Option<bool>,
    /// postgres source: the query to export (SELECT, WITH, VALUES, TABLE); or give `table`.
    pub sql: Option<String>,
    /// postgres: `table` or `schema.table` (plain identifiers) — exported whole at the
    /// source, loaded into at the destination.
    pub table: Option<String>,
    /// postgres destination: columns in the data's order (default: all, in table order).
    pub columns: Option<Vec<String>>,
    /// postgres: csv (default) or jsonl.
    pub format: Option<Format>,
    /// postgres destination, csv: the data's first line is a header to skip (default true).
    pub header: Option<bool>,
}

impl End {
    /// The names of the fields that are set.
    pub fn set_fields(&self) -> Vec<&'static str> {
        let all = [
            ("url", self.url.is_some()),
            ("profile", self.profile.is_some()),
            ("headers", self.headers.is_some()),
            ("method", self.method.is_some()),
            ("target", self.target.is_some()),
            ("path", self.path.is_some()),
            ("mode", self.mode.is_some()),
            ("mkdirs", self.mkdirs.is_some()),
            ("overwrite", self.overwrite.is_some()),
            ("sql", self.sql.is_some()),
            ("table", self.table.is_some()),
            ("columns", self.columns.is_some()),
            ("format", self.format.is_some()),
            ("header", self.header.is_some()),
        ];
        all.into_iter()
            .filter(|(_, s)| *s)
            .map(|(n, _)| n)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_parse_by_name() {
        for f in Flow::ALL {
            let parsed: Flow = serde_json::from_value(json!(f.name())).unwrap();
            assert_eq!(parsed, f);
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let r: Result<End, _> = serde_json::from_value(json!({"url": "x", "evil": 1}));
        assert!(r.is_err());
    }
}
