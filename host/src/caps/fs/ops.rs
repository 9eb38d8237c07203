//! The small operations: stat (never following a final symlink), mkdir (with parents) and
//! remove (a file, a symlink or an empty directory; a tree only when asked; never the root).

use super::access::{self, Access, Place};
use super::errors::io_error;
use super::meta::file_stat;
use super::path::is_root;
use crate::caps::CallCtx;
use crate::caps::infra::host::types::{CapError, FileStat};

/// Stats `path` under `root` without following a final symlink.
pub async fn stat(call: &CallCtx, root: &str, path: &str) -> Result<FileStat, CapError> {
    let asked = path.to_string();
    access::run(call, "stat", root, path, Access::Read, |p: Place| {
        access::blocking(move || {
            let m = p
                .dir
                .symlink_metadata(&p.rel)
                .map_err(|e| io_error("stat", &p.shown, e))?;
            let st = file_stat(asked, &m);
            let detail = format!("{:?}, {} bytes", st.kind, st.size);
            Ok((st, detail))
        })
    })
    .await
}

/// Creates `path` under `root` and its missing parents.
pub async fn mkdir(call: &CallCtx, root: &str, path: &str) -> Result<(), CapError> {
    access::run(call, "mkdir", root, path, Access::Write, |p: Place| {
        access::blocking(move || {
            p.dir.create_dir_all(&p.rel).map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => CapError::Invalid(format!(
                    "path: {} exists and is not a directory; choose another path",
                    p.shown
                )),
                _ => io_error("creating directory", &p.shown, e),
            })?;
            Ok(((), "created".to_string()))
        })
    })
    .await
}

/// Removes `path` under `root`: a file, a symlink (not what it points to), an empty directory,
/// or with `recursive` a whole tree (whose symlinks are removed, never followed).
pub async fn remove(
    call: &CallCtx,
    root: &str,
    path: &str,
    recursive: bool,
) -> Result<(), CapError> {
    access::run(call, "remove", root, path, Access::Write, |p: Place| {
        access::blocking(move || {
            if is_root(&p.rel) {
                return Err(CapError::Invalid(format!(
                    "path: {} is the root itself, which cannot be removed; name something inside it",
                    p.shown
                )));
            }
            let m = p
                .dir
                .symlink_metadata(&p.rel)
                .map_err(|e| io_error("removing", &p.shown, e))?;
            let removed = if m.is_dir() && recursive {
                p.dir.remove_dir_all(&p.rel)
            } else if m.is_dir() {
                p.dir.remove_dir(&p.rel)
            } else {
                p.dir.remove_file(&p.rel)
            };
            removed.map_err(|e| io_error("removing", &p.shown, e))?;
            let what = if m.is_dir() { "directory" } else { "entry" };
            Ok(((), format!("removed {what}")))
        })
    })
    .await
}
