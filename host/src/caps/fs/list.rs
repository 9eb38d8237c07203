//! Listing a directory, depth-first, bounded three ways: `depth` levels, `max-entries` entries
//! (clamped by the host), and the call's deadline. Symlinks are listed, never followed: the walk
//! opens each subdirectory with `O_NOFOLLOW`, so a directory swapped for a symlink mid-walk is
//! skipped, not entered.

use std::path::{Path, PathBuf};
use std::time::Instant;

use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};

use super::access::{self, Access, Place};
use super::errors::io_error;
use super::meta::file_stat;
use super::path::shown;
use crate::caps::CallCtx;
use crate::caps::infra::host::fs::Listing;
use crate::caps::infra::host::types::{CapError, FileStat};

/// Most entries one listing returns, whatever the plugin asks.
pub const MAX_ENTRIES: u32 = 10_000;
/// Entries returned when the plugin asks for 0.
pub const DEFAULT_ENTRIES: u32 = 1_000;
/// Deepest recursion, whatever the plugin asks.
pub const MAX_DEPTH: u32 = 64;
/// Most names read from one directory (they are sorted, so all are held at once).
const MAX_NAMES_PER_DIR: usize = 100_000;

/// `max-entries` as the host applies it.
pub fn clamp_entries(asked: u32) -> usize {
    match asked {
        0 => DEFAULT_ENTRIES as usize,
        n => n.min(MAX_ENTRIES) as usize,
    }
}

/// The walk's state: what it found and the bounds it keeps.
struct Walk {
    entries: Vec<FileStat>,
    max: usize,
    truncated: bool,
    deadline: Instant,
    absolute: bool,
    shown: String,
}

impl Walk {
    /// Lists `dir` (at `rel` under the root), recursing while `depth` > 0.
    fn visit(&mut self, dir: &Dir, rel: &Path, depth: u32) -> Result<(), CapError> {
        let mut names = Vec::new();
        for entry in dir
            .entries()
            .map_err(|e| io_error("listing", &self.shown, e))?
        {
            let entry = entry.map_err(|e| io_error("listing", &self.shown, e))?;
            if names.len() == MAX_NAMES_PER_DIR {
                self.truncated = true;
                break;
            }
            names.push(entry.file_name());
        }
        names.sort();
        for name in names {
            if Instant::now() >= self.deadline {
                return Err(CapError::Timeout(format!(
                    "listing {} ran past the call's deadline; ask for a smaller depth or max_entries, or raise timeout_ms",
                    self.shown
                )));
            }
            if self.entries.len() == self.max {
                self.truncated = true;
                return Ok(());
            }
            let child = if rel == Path::new(".") {
                PathBuf::from(&name)
            } else {
                rel.join(&name)
            };
            // Gone since the directory was read: nothing to list.
            let Ok(m) = dir.symlink_metadata(&name) else {
                continue;
            };
            self.entries
                .push(file_stat(shown(&child, self.absolute), &m));
            if depth > 0 && m.is_dir() {
                let opened = dir.open_with(
                    &name,
                    OpenOptions::new()
                        .read(true)
                        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW),
                );
                // Unreadable, or swapped for a symlink since its stat: listed, not entered.
                if let Ok(sub) = opened {
                    let sub = Dir::from_std_file(sub.into_std());
                    self.visit(&sub, &child, depth - 1)?;
                }
            }
        }
        Ok(())
    }
}

/// Lists `path` under `root`.
pub async fn list_dir(
    call: &CallCtx,
    root: &str,
    path: &str,
    depth: u32,
    max_entries: u32,
) -> Result<Listing, CapError> {
    let max = clamp_entries(max_entries);
    let depth = depth.min(MAX_DEPTH);
    let deadline = call.deadline;
    access::run(call, "list", root, path, Access::Read, |p: Place| {
        access::blocking(move || {
            let dir = p
                .dir
                .open_dir(&p.rel)
                .map_err(|e| io_error("listing", &p.shown, e))?;
            let mut walk = Walk {
                entries: Vec::new(),
                max,
                truncated: false,
                deadline,
                absolute: p.absolute,
                shown: p.shown.clone(),
            };
            walk.visit(&dir, &p.rel, depth)?;
            let detail = format!(
                "{} entries{}",
                walk.entries.len(),
                if walk.truncated { ", truncated" } else { "" }
            );
            Ok((
                Listing {
                    entries: walk.entries,
                    truncated: walk.truncated,
                },
                detail,
            ))
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_clamped_by_the_host() {
        assert_eq!(clamp_entries(0), 1_000);
        assert_eq!(clamp_entries(5), 5);
        assert_eq!(clamp_entries(u32::MAX), 10_000);
    }
}
