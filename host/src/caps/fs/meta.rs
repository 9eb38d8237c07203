//! A file's metadata as `types.wit`'s `file-stat` carries it.

use cap_std::fs::{Metadata, MetadataExt};

use crate::caps::infra::host::types::{FileKind, FileStat};

/// The stat of `path` from `m` (taken without following a final symlink where that matters).
pub fn file_stat(path: String, m: &Metadata) -> FileStat {
    let t = m.file_type();
    FileStat {
        path,
        kind: if t.is_symlink() {
            FileKind::Symlink
        } else if t.is_dir() {
            FileKind::Directory
        } else if t.is_file() {
            FileKind::File
        } else {
            FileKind::Other
        },
        size: m.len(),
        mode: m.mode() & 0o7777,
        mtime: u64::try_from(m.mtime()).unwrap_or(0),
    }
}
