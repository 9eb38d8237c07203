//! How a tool reports a command's outcome, local (`exec`) or remote (`ssh`).

use schemars::JsonSchema;
use serde::Serialize;

use crate::bindings::infra::host::types::ExecResult;
use crate::{Artifact, ToolError};

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
