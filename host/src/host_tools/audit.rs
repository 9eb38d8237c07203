//! `audit`: read and verify the hash-chained audit log.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{HostCall, HostView};
use crate::audit::{self, Filter};
use crate::failure::Failure;

pub const DESCRIPTION: &str = "The audit log (hash-chained begin and end records of every call): \
`list` one entry per call with filters (trace, tool, outcome, since, until), `tail` the last n \
calls, `verify` the chain (names the first broken record and the calls that began and never \
ended), `stats` counts by tool and outcome.";

/// What to do.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Calls matching the filters, newest first.
    List,
    /// The last `limit` calls.
    Tail,
    /// Walk the hash chain.
    Verify,
    /// Counts by tool and outcome.
    Stats,
}

/// Arguments of `audit`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// `list`, `tail`, `verify` or `stats`.
    pub action: Action,
    /// `list`: only the records of this trace id.
    pub trace: Option<String>,
    /// `list`: only this tool.
    pub tool: Option<String>,
    /// `list`: only this outcome (ok, error, denied, timeout, or unended: began, no end yet).
    pub outcome: Option<String>,
    /// `list`: records at or after this RFC 3339 time.
    pub since: Option<String>,
    /// `list`: records before this RFC 3339 time.
    pub until: Option<String>,
    /// How many records (default 20, at most 500).
    pub limit: Option<usize>,
}

pub fn run(host: &HostView<'_>, args: Args, call: &HostCall) -> Result<Value, Failure> {
    let path = &host.audit_log;
    let limit = args.limit.unwrap_or(20).min(500);
    Ok(match args.action {
        Action::List => {
            let filter = Filter {
                trace_id: args.trace,
                tool: args.tool,
                outcome: args.outcome,
                since: args.since,
                until: args.until,
            };
            json!({ "records": audit::list(path, &filter, limit)? })
        }
        Action::Tail => json!({ "records": audit::tail(path, limit)? }),
        Action::Verify => {
            let mut report = audit::verify(path)?;
            // This very call has begun and not ended yet: it is not a call a crash cut short.
            if let Some(i) = report
                .unended
                .iter()
                .rposition(|u| u.tool == "audit" && u.trace_id == call.trace_id)
            {
                report.unended.remove(i);
            }
            json!({
                "valid": report.ok,
                "records": report.records,
                "unended": report.unended.len(),
                "report": report.to_string(),
                "detail": report,
            })
        }
        Action::Stats => audit::stats(path)?,
    })
}
