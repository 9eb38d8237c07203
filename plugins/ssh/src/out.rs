//! What the `ssh` tool returns.

use crate::caps::ssh::ExecResult;
use infra_sdk::prelude::*;

/// How one remote command ended.
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

/// A background command, started.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct JobInfo {
    /// Job id for the `jobs` host tool.
    pub id: String,
    /// The command line.
    pub command: String,
    /// Remote pid, also the job's process group and session id.
    pub pid: u32,
    /// Remote directory with the job's stdout, stderr and exit status.
    pub dir: String,
    /// What to do next.
    pub next: String,
}

/// Metadata of a remote path.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FileInfo {
    /// The path.
    pub path: String,
    /// `file`, `directory`, `symlink` or `other`.
    pub kind: String,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits as octal text, e.g. "644".
    pub mode: String,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
}

/// The result of every `ssh` action; fields appear where the action fills them.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct SshOutput {
    /// The target used.
    pub target: String,
    /// `exec`: how the command ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandOutput>,
    /// `exec_detached`: the job started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<JobInfo>,
    /// `batch`: each command run, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<CommandOutput>>,
    /// `batch`: commands that did not exit 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<u32>,
    /// `batch`: commands not run because an earlier one failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<u32>,
    /// `system_info`: facts about the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<Value>,
    /// `check_host`: connected and ran `true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reachable: Option<bool>,
    /// `check_host`: round trip, connection included when a new one was needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// `check_host`: why it is not reachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// `sftp_list`: the entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<FileInfo>>,
    /// `sftp_stat`/`sftp_upload`/`deploy_file`: the remote file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileInfo>,
    /// `sftp_download`: the stored copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// `deploy_file`: whether the remote content changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<bool>,
    /// `deploy_file`: sha256 of the content, verified on the target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// `deploy_file`: the restart command's outcome, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<CommandOutput>,
    /// Monitoring actions: the parsed data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}
