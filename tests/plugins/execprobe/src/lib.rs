//! Test plugin: `execprobe` forwards a raw `exec.run`, `exec.run-all` or `git.push` request,
//! field for field, and returns what the host answered (its error kind and text unchanged). It checks nothing:
//! every refusal a test sees comes from the host.

use crate::caps::exec::{self, Command};
use crate::caps::git::{self, PushRequest};
use crate::caps::types::{ByteSource, CapError, ExecResult, KeyValue};
use infra_sdk::prelude::*;

/// One command of a batch.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Run {
    /// Program name.
    program: String,
    /// Arguments.
    #[serde(default)]
    args: Vec<String>,
    /// Root name.
    root: String,
    /// Working directory relative to the root.
    cwd: Option<String>,
}

/// Arguments: `push` set forwards a push; `batch` set a `run-all`; otherwise a run.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    /// Program name (run).
    #[serde(default)]
    program: String,
    /// Arguments (run).
    #[serde(default)]
    args: Vec<String>,
    /// Root name (run and push).
    #[serde(default)]
    root: String,
    /// Working directory (run) or repository path (push), relative to the root.
    cwd: Option<String>,
    /// Variables (run).
    #[serde(default)]
    env: Vec<(String, String)>,
    /// Standard input as text (run).
    stdin: Option<String>,
    /// Standard input from an artifact URI (run).
    stdin_artifact: Option<String>,
    /// Profile (run and push).
    profile: Option<String>,
    /// Inline output cap (run).
    max_output: Option<u64>,
    /// Timeout in ms (default: the call's).
    timeout_ms: Option<u32>,
    /// Push instead of run: the remote name.
    push: Option<String>,
    /// Push: refspecs.
    #[serde(default)]
    refspecs: Vec<String>,
    /// Push: force.
    #[serde(default)]
    force: bool,
    /// Batch instead of run: the commands of one `run-all` (timeout and output cap as above).
    batch: Option<Vec<Run>>,
}

fn result_json(r: &ExecResult) -> Value {
    json!({
        "exit_code": r.exit_code,
        "signal": r.signal,
        "stdout": String::from_utf8_lossy(&r.stdout),
        "stderr": String::from_utf8_lossy(&r.stderr),
        "stdout_truncated": r.stdout_truncated,
        "stderr_truncated": r.stderr_truncated,
        "stdout_artifact": r.stdout_artifact.as_ref().map(|a| json!({"uri": a.uri, "size": a.size})),
        "stderr_artifact": r.stderr_artifact.as_ref().map(|a| json!({"uri": a.uri, "size": a.size})),
        "duration_ms": r.duration_ms,
    })
}

/// A refusal of one batch command, as `{kind, message}`.
fn cap_error_json(e: &CapError) -> Value {
    let (kind, message) = match e {
        CapError::Denied(m) => ("denied", m),
        CapError::NotFound(m) => ("not_found", m),
        CapError::Invalid(m) => ("invalid", m),
        CapError::Timeout(m) => ("timeout", m),
        CapError::Failed(m) => ("failed", m),
    };
    json!({"kind": kind, "message": message})
}

fn probe(a: Args, ctx: &Ctx) -> Result<Value, ToolError> {
    let timeout_ms = a.timeout_ms.unwrap_or(ctx.timeout_ms);
    if let Some(remote) = a.push {
        let out = git::push(&PushRequest {
            root: a.root,
            path: a.cwd.unwrap_or_else(|| ".".into()),
            remote,
            refspecs: a.refspecs,
            force: a.force,
            profile: a.profile,
            timeout_ms,
        })?;
        return Ok(json!({"url": out.url, "output": result_json(&out.output)}));
    }
    if let Some(batch) = a.batch {
        let cmds: Vec<Command> = batch
            .into_iter()
            .map(|r| Command {
                program: r.program,
                args: r.args,
                root: r.root,
                cwd: r.cwd,
                env: vec![],
                stdin: None,
                profile: None,
                timeout_ms,
                max_output: a.max_output.unwrap_or(64 * 1024),
            })
            .collect();
        let results: Vec<Value> = exec::run_all(&cmds)
            .iter()
            .map(|r| match r {
                Ok(r) => json!({"ok": result_json(r)}),
                Err(e) => json!({"error": cap_error_json(e)}),
            })
            .collect();
        return Ok(json!({"results": results}));
    }
    let stdin = match (a.stdin, a.stdin_artifact) {
        (Some(t), _) => Some(ByteSource::Bytes(t.into_bytes())),
        (None, Some(uri)) => Some(ByteSource::Artifact(uri)),
        (None, None) => None,
    };
    let r = exec::run(&Command {
        program: a.program,
        args: a.args,
        root: a.root,
        cwd: a.cwd,
        env: a
            .env
            .into_iter()
            .map(|(key, value)| KeyValue { key, value })
            .collect(),
        stdin,
        profile: a.profile,
        timeout_ms,
        max_output: a.max_output.unwrap_or(64 * 1024),
    })?;
    Ok(result_json(&r))
}

infra_sdk::plugin!(tools: [Tool::new(
    "execprobe",
    "Exec probe",
    "Forwards a raw exec run or git push request to the host.",
    probe
)
.open_world()]);
