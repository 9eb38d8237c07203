//! The audit log: hash-chained JSON records of every tool call, in `audit.jsonl`.
//!
//! # Records
//!
//! Every line is one record, canonical JSON (keys sorted, no whitespace). Each carries `seq`
//! (from 1), `time` (RFC 3339 UTC), `kind`, `prev`, the hash of the record before it, and
//! `hash`, the sha256 of `prev` followed by the record's canonical JSON without `hash`.
//! Editing, deleting, inserting or reordering records therefore breaks the chain at a place
//! [`verify`] can name. Deleting records from the *end* leaves a valid shorter chain; keeping
//! a copy of the latest hash elsewhere (a backup, a ticket) is what catches that.
//!
//! A call is two records sharing a `call_id` (unique per call; the agent's `trace_id` may repeat):
//!
//! - `kind: "begin"` — `call_id`, `trace_id`, `tool`, `action`, `plugin`, `plugin_sha256`, the
//!   redacted `args`, and `sent` when the call used names of the tool infra replaces (what was
//!   sent; `tool`, `action` and `args` are what it meant). It is on disk before the call may use any capability; a call whose begin
//!   cannot be written does not run.
//! - `kind: "end"` — `call_id`, `trace_id`, `tool`, `action`, `plugin`, `outcome` (`ok`, `error`,
//!   `denied`, `timeout`), `error`, `events` (the capability uses, in order, also those of a call
//!   the client cancelled), `artifacts` and `duration_ms`. A call whose end cannot be written is
//!   not reported as a success.
//! - `kind: "call"` — one whole event in one record: a plugin whose `describe` tried to use
//!   capabilities, the recovery of a torn or shrunken log. Records written before begin/end
//!   records existed have no `kind` and read as `call`.
//!
//! A begin without an end is a call that was still running when the log was read, or whose
//! server was killed: [`verify`] lists those by trace id without calling the chain broken.
//! [`list`], [`tail`] and [`stats`] show one entry per call, a begin merged with its end
//! (`outcome: "unended"` when it has none).
//!
//! # Writing
//!
//! One writer thread per open log takes records from a queue and appends all that are waiting
//! as one batch: one `write_all` on an `O_APPEND` file and one `fdatasync` for the whole batch
//! (group commit), so concurrent calls share a sync; each appender waits until its record is
//! durable. A crash leaves at worst a torn last line, which the next [`AuditLog::open`] moves
//! aside and records instead of silently dropping or accepting it. Several infra processes may
//! share one log: an exclusive `flock` around each batch keeps their records in one chain.

mod canonical;
mod log;
mod query;
mod read;
mod recover;
mod verify;

use std::fmt;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub use canonical::{canonical_json, record_hash};
pub use log::{AppendError, AuditLog, Cause};
pub use query::{Filter, list, stats, tail};
pub use verify::{Broken, BrokenReason, TornTail, Unended, VerifyReport, verify};

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The tool did its work.
    Ok,
    /// The tool failed.
    Error,
    /// The policy or a flag refused it.
    Denied,
    /// The deadline passed.
    Timeout,
    /// It began and has no end record: still running, or its server was killed. Never
    /// written into a record; [`list`] and [`stats`] show it for such calls.
    Unended,
}

impl Outcome {
    /// The name used in records: `ok`, `error`, `denied`, `timeout` (and `unended` in views).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Denied => "denied",
            Outcome::Timeout => "timeout",
            Outcome::Unended => "unended",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ok" => Ok(Outcome::Ok),
            "error" => Ok(Outcome::Error),
            "denied" => Ok(Outcome::Denied),
            "timeout" => Ok(Outcome::Timeout),
            "unended" => Ok(Outcome::Unended),
            other => Err(format!(
                "'{other}' is not an outcome; use one of ok, error, denied, timeout, unended"
            )),
        }
    }
}

/// What a record stands for (see the module doc for the fields of each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A call about to run, written before it may use any capability.
    Begin,
    /// How that call ended.
    End,
    /// A whole event in one record (and every record written before begin/end existed).
    #[default]
    Call,
}

/// What the caller knows about a call; [`AuditLog::append`] adds seq, time and the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Begin, end, or a one-record event.
    pub kind: Kind,
    /// Pairs a begin with its end; unique per call.
    pub call_id: Option<String>,
    /// The call's trace id.
    pub trace_id: String,
    /// The tool called.
    pub tool: String,
    /// The tool's action, if it has actions.
    pub action: Option<String>,
    /// The plugin that ran it, for plugin tools.
    pub plugin: Option<String>,
    /// The sha256 of that plugin's wasm (begin and call records).
    pub plugin_sha256: Option<String>,
    /// The call's arguments, already redacted by the caller (they are scrubbed again anyway);
    /// begin and call records.
    pub args: Value,
    /// When the call used names of the tool infra replaces: the tool as sent and each renamed
    /// action or field (`args` holds what they meant); begin records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<Value>,
    /// Capability uses, in order: objects `{cap, target, decision: "allow"|"deny", reason?,
    /// duration_ms, detail?}` as `caps::CapEvent` serialises them (end and call records).
    pub events: Vec<Value>,
    /// How the call ended: `ok`, `error`, `denied` or `timeout` (see [`Outcome`]).
    pub outcome: String,
    /// The error message, when it failed.
    pub error: Option<String>,
    /// How long the call took.
    pub duration_ms: u64,
    /// URIs of artifacts the call stored.
    pub artifacts: Vec<String>,
}

impl AuditEntry {
    /// A one-record event with no action, plugin, events, error or artifacts; fill in the
    /// rest by field.
    pub fn new(trace_id: &str, tool: &str, outcome: Outcome) -> AuditEntry {
        AuditEntry {
            kind: Kind::Call,
            call_id: None,
            trace_id: trace_id.to_string(),
            tool: tool.to_string(),
            action: None,
            plugin: None,
            plugin_sha256: None,
            args: json!({}),
            sent: None,
            events: Vec::new(),
            outcome: outcome.as_str().to_string(),
            error: None,
            duration_ms: 0,
            artifacts: Vec::new(),
        }
    }

    /// The begin record of call `call_id`; set action, plugin and args by field.
    pub fn begin(call_id: &str, trace_id: &str, tool: &str) -> AuditEntry {
        AuditEntry {
            kind: Kind::Begin,
            call_id: Some(call_id.to_string()),
            ..AuditEntry::new(trace_id, tool, Outcome::Ok)
        }
    }

    /// The end record matching this begin, ending with `outcome`.
    pub fn end(&self, outcome: Outcome) -> AuditEntry {
        AuditEntry {
            kind: Kind::End,
            action: self.action.clone(),
            plugin: self.plugin.clone(),
            call_id: self.call_id.clone(),
            ..AuditEntry::new(&self.trace_id, &self.tool, outcome)
        }
    }

    /// The record's fields as written: each kind without the fields that belong to the other.
    fn fields(&self) -> Result<Map<String, Value>> {
        let Value::Object(mut map) =
            serde_json::to_value(self).context("cannot encode an audit entry")?
        else {
            bail!("an audit entry did not encode as a JSON object");
        };
        let drop: &[&str] = match self.kind {
            Kind::Begin => &["outcome", "error", "events", "duration_ms", "artifacts"],
            Kind::End => &["args", "plugin_sha256", "sent"],
            Kind::Call => &[],
        };
        for key in drop {
            map.remove(*key);
        }
        if self.call_id.is_none() {
            map.remove("call_id");
        }
        Ok(map)
    }
}

/// One line of `audit.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When it was written, RFC 3339 UTC.
    pub time: String,
    /// Begin, end or call (`call` for records that predate the field).
    #[serde(default)]
    pub kind: Kind,
    /// Pairs a begin with its end.
    pub call_id: Option<String>,
    /// The call's trace id.
    pub trace_id: String,
    /// The tool called.
    pub tool: String,
    /// The tool's action.
    pub action: Option<String>,
    /// The plugin that ran it.
    pub plugin: Option<String>,
    /// The sha256 of that plugin's wasm.
    pub plugin_sha256: Option<String>,
    /// The redacted arguments (begin and call records).
    #[serde(default)]
    pub args: Value,
    /// Capability uses (end and call records).
    #[serde(default)]
    pub events: Vec<Value>,
    /// How the call ended (end and call records).
    pub outcome: Option<String>,
    /// The error message.
    pub error: Option<String>,
    /// How long the call took (end and call records).
    pub duration_ms: Option<u64>,
    /// Artifact URIs.
    #[serde(default)]
    pub artifacts: Vec<String>,
    /// Hash of the previous record ([`GENESIS`] for the first).
    pub prev: String,
    /// sha256 of `prev` and this record's canonical JSON without `hash`.
    pub hash: String,
}

#[cfg(test)]
mod tests;
