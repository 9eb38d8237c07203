//! What the `ssh` tool returns (a command's outcome is the SDK's `CommandOutput`).

use infra_sdk::prelude::*;

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
