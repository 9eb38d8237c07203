//! How a tool reports a command's outcome, local (`exec`) or remote (`ssh`).

use schemars::JsonSchema;
use serde::Serialize;

use crate::bindings::infra::host::types::ExecResult;
use crate::{Artifact, ErrorKind, ToolError};

/// How one command ended, local (`exec`) or remote (`ssh`).
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct CommandOutput {
    /// The command line.
    pub command: String,
    /// Exit code, when it exited.
    pub exit_code: Option<i32>,
    /// Signal name, when it was killed by one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Standard output (UTF-8, invalid bytes replaced), at most `max_output` bytes.
    pub stdout: String,
    /// Standard error, at most `max_output` bytes.
    pub stderr: String,
    /// Stdout was longer than `max_output`; the whole of it is in `stdout_artifact`.
    pub stdout_truncated: bool,
    /// Stderr was longer than `max_output`; the whole of it is in `stderr_artifact`.
    pub stderr_truncated: bool,
    /// The full stdout, when truncated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout_artifact: Option<Artifact>,
    /// The full stderr, when truncated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_artifact: Option<Artifact>,
    /// Milliseconds the command ran.
    pub elapsed_ms: u64,
    /// `batch`: why the command has no outcome (timed out, connection lost), when it has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CommandOutput {
    /// Shapes the host's result.
    pub fn new(command: &str, r: ExecResult) -> Self {
        Self {
            command: command.to_string(),
            exit_code: r.exit_code,
            signal: r.signal,
            stdout: String::from_utf8_lossy(&r.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&r.stderr).into_owned(),
            stdout_truncated: r.stdout_truncated,
            stderr_truncated: r.stderr_truncated,
            stdout_artifact: r.stdout_artifact.map(Into::into),
            stderr_artifact: r.stderr_artifact.map(Into::into),
            elapsed_ms: r.duration_ms,
            error: None,
        }
    }

    /// A command the host could not see to the end: `error` says why.
    pub fn failed(command: &str, error: &ToolError) -> Self {
        Self {
            command: command.to_string(),
            error: Some(format!("{}: {}", error.kind, error.message)),
            ..Self::default()
        }
    }
}

/// What a batch of commands did.
#[derive(Debug, Default)]
pub struct Batch {
    /// Each command run, in order.
    pub results: Vec<CommandOutput>,
    /// Commands that did not exit 0.
    pub failed: u32,
    /// Commands not run because an earlier one failed.
    pub skipped: u32,
}

/// Runs `commands` in order with `run`, stopping at the first failure when `stop_on_error`;
/// `done(n, total)` is told after each. A refusal before anything ran (denied, not found,
/// invalid) is the whole call's answer; a later failure (a timeout, a lost connection) becomes
/// that command's result, so the results of the commands that ran are never discarded.
/// `shown` names a command in its result.
pub fn batch<C>(
    commands: &[C],
    stop_on_error: bool,
    shown: impl Fn(&C) -> String,
    mut run: impl FnMut(&C) -> Result<CommandOutput, ToolError>,
    mut done: impl FnMut(usize, usize),
) -> Result<Batch, ToolError> {
    // The schema asks for at least one command; serde alone does not.
    if commands.is_empty() {
        return Err(ToolError::invalid(
            "commands",
            "missing: `batch` needs a non-empty `commands` list",
        ));
    }
    let mut out = Batch::default();
    for c in commands {
        let r = match run(c) {
            Ok(r) => r,
            Err(e)
                if out.results.is_empty()
                    && matches!(
                        e.kind,
                        ErrorKind::Denied | ErrorKind::NotFound | ErrorKind::Invalid
                    ) =>
            {
                return Err(e);
            }
            Err(e) => CommandOutput::failed(&shown(c), &e),
        };
        let ok = r.exit_code == Some(0);
        out.results.push(r);
        done(out.results.len(), commands.len());
        if !ok {
            out.failed += 1;
            if stop_on_error {
                break;
            }
        }
    }
    out.skipped = (commands.len() - out.results.len()) as u32;
    Ok(out)
}
