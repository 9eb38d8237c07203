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

/// Arguments of `audit`: the action, with the fields only that action takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
#[schemars(extend("additionalProperties" = false))]
pub enum Args {
    /// Calls matching the filters, newest first.
    List {
        /// Only the records of this trace id.
        trace: Option<String>,
        /// Only this tool.
        tool: Option<String>,
        /// Only this outcome (ok, error, denied, timeout, or unended: began, no end yet).
        outcome: Option<String>,
        /// Records at or after this RFC 3339 time.
        since: Option<String>,
        /// Records before this RFC 3339 time.
        until: Option<String>,
        /// How many records (default 20, at most 500).
        limit: Option<usize>,
    },
    /// The last `limit` calls.
    Tail {
        /// How many records (default 20, at most 500).
        limit: Option<usize>,
    },
    /// Walk the hash chain.
    Verify {},
    /// Counts by tool and outcome.
    Stats {},
}

/// How many records: `limit`, defaulted and capped.
fn records(limit: Option<usize>) -> usize {
    limit.unwrap_or(20).min(500)
}

pub fn run(host: &HostView<'_>, args: Args, call: &HostCall) -> Result<Value, Failure> {
    let path = &host.audit_log;
    Ok(match args {
        Args::List {
            trace,
            tool,
            outcome,
            since,
            until,
            limit,
        } => {
            let filter = Filter {
                trace_id: trace,
                tool,
                outcome,
                since,
                until,
            };
            json!({ "records": audit::list(path, &filter, records(limit))? })
        }
        Args::Tail { limit } => json!({ "records": audit::tail(path, records(limit))? }),
        Args::Verify {} => {
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
        Args::Stats {} => audit::stats(path)?,
    })
}
