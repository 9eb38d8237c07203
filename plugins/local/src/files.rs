//! The `fs_*` actions: files anywhere on the machine, through the host's `fs` capability on the
//! root `/` (absolute paths), which it allows only with `unsafe = true` and INFRA_UNSAFE_LOCAL=1.

use crate::caps::fs::{self, WriteOptions};
use crate::caps::types::CapError;
use infra_sdk::prelude::*;

use crate::args::{Encoding, absolute};
use crate::exec::ROOT;
use crate::out::LocalOutput;

/// Default bytes of a file returned inline.
const INLINE_MAX: u64 = 64 * 1024;
/// Default entries of a listing.
const LIST_MAX: u32 = 1000;
/// Default depth of a recursive listing.
const LIST_DEPTH: u32 = 8;

/// `fs_read`: the content inline when it fits, else the artifact the host stored it in.
pub fn read(
    path: &str,
    max_bytes: Option<u64>,
    encoding: Option<Encoding>,
) -> Result<LocalOutput, ToolError> {
    let r = fs::read(
        ROOT,
        absolute("path", path)?,
        max_bytes.unwrap_or(INLINE_MAX),
    )?;
    let encoding = encoding.unwrap_or_default();
    let content = r.data.map(|d| match encoding {
        Encoding::Utf8 => String::from_utf8_lossy(&d).into_owned(),
        Encoding::Base64 => infra_sdk::encode_base64(&d),
    });
    Ok(LocalOutput {
        encoding: content.as_ref().map(|_| {
            match encoding {
                Encoding::Utf8 => "utf8",
                Encoding::Base64 => "base64",
            }
            .to_string()
        }),
        content,
        artifact: r.artifact.map(Into::into),
        file: Some(r.stat.into()),
        ..LocalOutput::default()
    })
}

/// `fs_write`: writes atomically; refuses an existing file unless `overwrite`.
pub fn write(
    path: &str,
    content: crate::caps::types::ByteSource,
    mode: Option<u32>,
    mkdirs: bool,
    overwrite: bool,
) -> Result<LocalOutput, ToolError> {
    let stat = fs::write(
        ROOT,
        absolute("path", path)?,
        &content,
        WriteOptions {
            mode,
            mkdirs,
            overwrite,
        },
    )?;
    Ok(LocalOutput {
        file: Some(stat.into()),
        ..LocalOutput::default()
    })
}

/// `fs_list`: the directory's entries, `max_depth` levels deep when `recursive`.
pub fn list(
    path: &str,
    recursive: bool,
    max_depth: Option<u32>,
    max_entries: Option<u32>,
) -> Result<LocalOutput, ToolError> {
    let depth = if recursive {
        max_depth.unwrap_or(LIST_DEPTH)
    } else {
        0
    };
    let l = fs::list_dir(
        ROOT,
        absolute("path", path)?,
        depth,
        max_entries.unwrap_or(LIST_MAX),
    )?;
    Ok(LocalOutput {
        entries: Some(l.entries.into_iter().map(FileInfo::from).collect()),
        entries_truncated: Some(l.truncated),
        ..LocalOutput::default()
    })
}

/// `fs_stat`: metadata of the path, a final symlink not followed.
pub fn stat(path: &str) -> Result<LocalOutput, ToolError> {
    Ok(LocalOutput {
        file: Some(fs::stat(ROOT, absolute("path", path)?)?.into()),
        ..LocalOutput::default()
    })
}

/// `fs_mkdir`: the directory and its missing parents; returns its metadata.
pub fn mkdir(path: &str) -> Result<LocalOutput, ToolError> {
    let path = absolute("path", path)?;
    fs::mkdir(ROOT, path)?;
    stat(path)
}

/// `fs_rm`: removes the path; with `force` a missing path is an answer, not an error.
pub fn rm(path: &str, recursive: bool, force: bool) -> Result<LocalOutput, ToolError> {
    let removed = match fs::remove(ROOT, absolute("path", path)?, recursive) {
        Ok(()) => true,
        Err(CapError::NotFound(_)) if force => false,
        Err(e) => return Err(e.into()),
    };
    Ok(LocalOutput {
        path: Some(path.to_string()),
        removed: Some(removed),
        ..LocalOutput::default()
    })
}
