//! How a tool reports a file's metadata, local (`fs`) or remote (`ssh` SFTP).

use schemars::JsonSchema;
use serde::Serialize;

use crate::bindings::infra::host::types::{FileKind, FileStat};

/// Metadata of a path, as a tool result shows it.
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

impl From<FileStat> for FileInfo {
    fn from(s: FileStat) -> Self {
        Self {
            path: s.path,
            kind: match s.kind {
                FileKind::File => "file",
                FileKind::Directory => "directory",
                FileKind::Symlink => "symlink",
                FileKind::Other => "other",
            }
            .into(),
            size: s.size,
            mode: format!("{:o}", s.mode & 0o7777),
            mtime: s.mtime,
        }
    }
}
