//! Writing a file atomically: the content goes to a temporary file beside the target (same
//! directory handle, so the same file system), is synced, gets its mode, and is renamed over
//! the target — or, without `overwrite`, linked to it, which fails if the target exists, so a
//! file that appears meanwhile is never replaced. Readers see the old file or the new one,
//! never half of either; a failure leaves no temporary file behind.

use std::path::{Path, PathBuf};

use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use tokio::io::AsyncWriteExt;

use super::access::{self, Access, Place};
use super::errors::io_error;
use super::meta::file_stat;
use super::path::is_root;
use crate::caps::CallCtx;
use crate::caps::infra::host::fs::WriteOptions;
use crate::caps::infra::host::types::{ByteSource, CapError, FileStat};

/// Mode of a new file when the plugin gives none.
const DEFAULT_MODE: u32 = 0o644;

/// The permission bits a plugin may ask for: no setuid or setgid.
const MODE_ALLOWED: u32 = 0o1777;

/// Checks `mode` (the field `mode`): permission bits and the sticky bit only.
pub fn checked_mode(mode: Option<u32>) -> Result<u32, CapError> {
    let mode = mode.unwrap_or(DEFAULT_MODE);
    if mode & !MODE_ALLOWED != 0 {
        return Err(CapError::Invalid(format!(
            "mode: {mode:#o} has bits beyond {MODE_ALLOWED:#o} (setuid, setgid or not a mode at all); give permission bits such as 0o644 or 0o755"
        )));
    }
    Ok(mode)
}

/// A temporary file beside the target, removed when dropped unless it was published.
struct Temp {
    dir: Dir,
    rel: PathBuf,
    published: bool,
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.published {
            let _ = self.dir.remove_file(&self.rel);
        }
    }
}

/// The name of a fresh temporary file beside `rel`, hidden and unlikely to clash.
fn temp_name(rel: &Path) -> PathBuf {
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Keep the name short enough whatever the target's length (NAME_MAX is 255).
    let name: String = name.chars().take(64).collect();
    let tmp = format!(".{name}.infra-tmp-{:016x}", rand::random::<u64>());
    match rel.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.join(tmp),
        _ => PathBuf::from(tmp),
    }
}

/// Puts the finished temp file at `rel` only if nothing is there: a hard link, which the kernel
/// refuses over an existing name, so a file created meanwhile is never replaced. On a file
/// system without hard links, a check and a rename (`Ok(true)`: the temp file is gone).
fn place_new(dir: &Dir, tmp: &Path, rel: &Path) -> std::io::Result<bool> {
    match dir.hard_link(tmp, dir, rel) {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists || super::errors::is_escape(&e) => {
            Err(e)
        }
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EPERM | libc::EOPNOTSUPP | libc::EMLINK)
            ) =>
        {
            if dir.symlink_metadata(rel).is_ok() {
                return Err(std::io::ErrorKind::AlreadyExists.into());
            }
            dir.rename(tmp, dir, rel).map(|()| true)
        }
        Err(e) => Err(e),
    }
}

/// Writes `content` to `path` under `root`.
pub async fn write(
    call: &CallCtx,
    root: &str,
    path: &str,
    content: ByteSource,
    options: WriteOptions,
) -> Result<FileStat, CapError> {
    let mode = checked_mode(options.mode)?;
    let asked = path.to_string();
    access::run(
        call,
        "write",
        root,
        path,
        Access::Write,
        |p: Place| async move {
            if is_root(&p.rel) {
                return Err(CapError::Invalid(format!(
                    "path: {} is the root itself; name a file inside it",
                    p.shown
                )));
            }
            let mut src = call.byte_source("content", content).await?;
            let shown = p.shown.clone();
            let dir = p
                .dir
                .try_clone()
                .map_err(|e| io_error("writing", &shown, e))?;
            let rel = p.rel.clone();
            let (file, temp) = access::blocking(move || {
                if let Some(parent) = rel.parent().filter(|d| !d.as_os_str().is_empty()) {
                    if options.mkdirs {
                        dir.create_dir_all(parent)
                            .map_err(|e| io_error("creating the directory of", &shown, e))?;
                    } else if !dir
                        .try_exists(parent)
                        .map_err(|e| io_error("writing", &shown, e))?
                    {
                        return Err(CapError::NotFound(format!(
                            "the directory of {shown} does not exist; set mkdirs: true to create it"
                        )));
                    }
                }
                let tmp = temp_name(&rel);
                let file = dir
                    .open_with(
                        &tmp,
                        OpenOptions::new().write(true).create_new(true).mode(0o600),
                    )
                    .map_err(|e| io_error("writing", &shown, e))?;
                let temp = Temp {
                    dir,
                    rel: tmp,
                    published: false,
                };
                Ok((file.into_std(), temp))
            })
            .await?;
            let mut file = tokio::fs::File::from_std(file);
            let written = async {
                let n = tokio::io::copy(&mut src, &mut file).await?;
                file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
                    .await?;
                file.flush().await?;
                file.sync_all().await?;
                Ok::<u64, std::io::Error>(n)
            }
            .await
            .map_err(|e| io_error("writing", &p.shown, e))?;
            drop(file);
            let overwrite = options.overwrite;
            access::blocking(move || {
                let mut temp = temp;
                let placed = if overwrite {
                    p.dir.rename(&temp.rel, &p.dir, &p.rel)
                } else {
                    place_new(&p.dir, &temp.rel, &p.rel).map(|renamed| temp.published = renamed)
                };
                placed.map_err(|e| match e.kind() {
                    std::io::ErrorKind::AlreadyExists => CapError::Invalid(format!(
                        "overwrite: {} already exists; set overwrite: true to replace it",
                        p.shown
                    )),
                    _ => io_error("writing", &p.shown, e),
                })?;
                if overwrite {
                    temp.published = true;
                }
                drop(temp);
                let m = p
                    .dir
                    .symlink_metadata(&p.rel)
                    .map_err(|e| io_error("writing", &p.shown, e))?;
                Ok((file_stat(asked, &m), format!("{written} bytes")))
            })
            .await
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_permission_bits_only() {
        assert_eq!(checked_mode(None).unwrap(), 0o644);
        assert_eq!(checked_mode(Some(0o755)).unwrap(), 0o755);
        for bad in [0o4755, 0o2755, 0o100644] {
            assert!(
                matches!(checked_mode(Some(bad)), Err(CapError::Invalid(m)) if m.starts_with("mode: ")),
                "{bad:o}"
            );
        }
    }

    #[test]
    fn temp_files_sit_beside_the_target_hidden() {
        let t = temp_name(Path::new("a/b/c.txt"));
        assert_eq!(t.parent(), Some(Path::new("a/b")));
        assert!(
            t.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".c.txt.infra-tmp-")
        );
        let t = temp_name(Path::new(&"x".repeat(250)));
        assert!(t.to_string_lossy().len() < 100);
    }
}
