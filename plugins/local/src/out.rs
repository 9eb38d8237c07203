//! What the `local` tool returns.

use infra_sdk::prelude::*;

/// The result of every `local` action; fields appear where the action fills them.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct LocalOutput {
    /// `exec`: how the command ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandOutput>,
    /// `batch`: each command run, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<CommandOutput>>,
    /// `batch`: commands that did not exit 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<u32>,
    /// `batch`: commands not run because an earlier one failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<u32>,
    /// `fs_read`/`fs_write`/`fs_stat`/`fs_mkdir`: the file or directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileInfo>,
    /// `fs_read`: the content, when it fit in `max_bytes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// `fs_read`: how `content` is encoded (`utf8` or `base64`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// `fs_read`: the whole file, when it was larger than `max_bytes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// `fs_list`: the entries, depth-first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<FileInfo>>,
    /// `fs_list`: more entries existed than `max_entries`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries_truncated: Option<bool>,
    /// `fs_rm`: the path named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `fs_rm`: whether something was removed (false only with `force` on a missing path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<bool>,
}
