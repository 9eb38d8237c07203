//! The `pipeline` tool: the six flows between HTTP, SFTP and PostgreSQL.
//!
//! A flow is two host calls joined by an artifact reference: the source is read into the
//! artifact store by the host (`http.download`, `ssh.sftp-read`, `postgres.copy-out`) and the
//! destination written from it by the host (`ssh.sftp-write` from the artifact, `http.upload`,
//! `postgres.copy-in`). This plugin only ever holds the URI, so the bytes never enter wasm
//! memory or the agent's context. The write is approved by the host's guard first (`apply:
//! true`, windows, the destination's lock).

mod args;
mod ends;

use std::time::Instant;

use crate::caps::{guard, log};
use infra_sdk::prelude::*;

use args::{Action, Flow, Run};
use ends::{Destination, Source, Written};

const DESCRIPTION: &str = "Data flows streamed by the host between HTTP, SFTP and PostgreSQL: \
the bytes go through the artifact store, never through the plugin or the agent. Actions: \
`describe` (the flows and the fields of each end), `run` (`flow`: http_to_sftp, sftp_to_http, \
http_to_postgres, sftp_to_postgres, postgres_to_sftp, postgres_to_http; `source` and \
`destination` objects — http: url, profile, headers, method (destination: POST/PUT/PATCH); \
sftp: target, path, mode, mkdirs, overwrite; postgres: profile, sql or table, columns, format \
csv/jsonl, header; `max_bytes` caps the source). Without `apply: true` a run answers with its \
plan; with it the host's guard approves the write first. A load into a table is one \
transaction: a bad row fails it, naming the line, and leaves the table as it was. Reports \
bytes, rows, sha256 and duration.";

/// Most bytes of plan shown to the user for approval.
const PLAN_SHOWN: usize = 8 * 1024;

/// The approval a write ran under, as the audit record names it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ApprovalInfo {
    /// The approval's id.
    pub id: String,
    /// `policy` or `user` (a protected target the user approved).
    pub approved_by: String,
    /// The lock held while writing.
    pub lock: String,
}

/// What a run did, or would do.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RunOutput {
    /// The flow.
    pub flow: Flow,
    /// False: this is the plan only (run again with `apply: true`).
    pub applied: bool,
    /// What the flow reads and writes.
    pub plan: Vec<String>,
    /// Bytes moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Rows exported (postgres source) or loaded (postgres destination).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Hex sha256 of the bytes moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Milliseconds from the read's start to the write's end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The artifact the bytes went through (`artifact://…`), readable with the `artifacts` tool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<Artifact>,
    /// What the destination reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<Written>,
    /// The guard's approval of the write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalInfo>,
}

/// One flow as `describe` lists it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FlowInfo {
    /// Its name, as `flow` takes it.
    pub flow: Flow,
    /// The source's kind.
    pub source: &'static str,
    /// The fields `source` takes.
    pub source_fields: &'static [&'static str],
    /// The destination's kind.
    pub destination: &'static str,
    /// The fields `destination` takes.
    pub destination_fields: &'static [&'static str],
}

/// The answer of either action.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Output {
    /// `run`.
    Run(Box<RunOutput>),
    /// `describe`.
    Describe {
        /// Every flow.
        flows: Vec<FlowInfo>,
    },
}

fn describe() -> Output {
    Output::Describe {
        flows: Flow::ALL
            .iter()
            .map(|&flow| {
                let (s, d) = flow.ends();
                FlowInfo {
                    flow,
                    source: s.name(),
                    source_fields: s.fields(false),
                    destination: d.name(),
                    destination_fields: d.fields(true),
                }
            })
            .collect(),
    }
}

fn run(r: Run, ctx: &Ctx) -> Result<RunOutput, ToolError> {
    let (sk, dk) = r.flow.ends();
    let source = Source::parse(&r.source, sk)?;
    let destination = Destination::parse(&r.destination, dk)?;
    // Unset: the most the host allows (it clamps this to `limits.artifact_bytes`).
    let max_bytes = r.max_bytes.unwrap_or(u64::MAX);
    if max_bytes == 0 {
        return Err(ToolError::invalid(
            "max_bytes",
            "give at least 1, or leave it out for the host's limit",
        ));
    }
    let plan = vec![
        format!("1. {}", source.describe()),
        "2. the host streams it into the artifact store (never through the plugin)".to_string(),
        format!("3. {}", destination.describe()),
    ];
    let mut out = RunOutput {
        flow: r.flow,
        applied: false,
        plan,
        bytes: None,
        rows: None,
        sha256: None,
        duration_ms: None,
        via: None,
        destination: None,
        approval: None,
    };
    if r.apply != Some(true) {
        return Ok(out);
    }
    let (kind, target) = destination.guard_target();
    let mut shown = format!("{}:\n{}", r.flow.name(), out.plan.join("\n"));
    if shown.len() > PLAN_SHOWN {
        let mut cut = PLAN_SHOWN;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
    }
    let a = guard::approve(&guard::WriteIntent {
        kind: kind.into(),
        target,
        namespaces: Vec::new(),
        plan: shown,
    })?;
    out.approval = Some(ApprovalInfo {
        id: a.id,
        approved_by: a.approved_by,
        lock: a.lock,
    });
    let start = Instant::now();
    log::progress(
        0.0,
        Some(2.0),
        Some(&format!("reading: {}", source.describe())),
    );
    let read = source.read(ctx.timeout_ms, max_bytes)?;
    log::progress(
        1.0,
        Some(2.0),
        Some(&format!(
            "{} bytes read; writing: {}",
            read.artifact.size,
            destination.describe()
        )),
    );
    let written = destination.write(&read.artifact.uri, source.media_type(), ctx.timeout_ms)?;
    out.applied = true;
    out.duration_ms = Some(start.elapsed().as_millis() as u64);
    out.bytes = Some(read.artifact.size);
    out.rows = written.rows.or(read.rows);
    out.sha256 = Some(read.artifact.sha256.clone());
    out.via = Some(read.artifact.into());
    out.destination = Some(written);
    Ok(out)
}

fn call(a: Action, ctx: &Ctx) -> Result<Output, ToolError> {
    match a {
        Action::Describe {} => Ok(describe()),
        Action::Run(r) => run(*r, ctx).map(|o| Output::Run(Box::new(o))),
    }
}

infra_sdk::plugin!(tools: [
    Tool::new("pipeline", "Pipelines", DESCRIPTION, call).destructive().open_world(),
]);
