//! The names of a repository's config keys — what [`super::git::overrides`] neutralises —
//! remembered between runs while nothing git reads them from has changed.
//!
//! Reading them costs a git run before every git run; an agent's `repo` calls run git several
//! times per action on the same repository. An entry is kept only when it can be checked
//! exactly: the repository's config has no `include`/`includeIf` (whose targets could be
//! anywhere), every key comes from the repository's own `config`/`config.worktree` or the
//! host's command-line keys, and no watched file changed in the last [`SETTLE`]. It is used
//! only while every watched path stats the same: the directories from the working directory up
//! to the root with the entries discovery looks for in them (`.git`, `HEAD`, `objects`,
//! `refs`), the git and common directories, and their `config`, `config.worktree` and
//! `commondir` — present or absent; files by device, inode, mode, size, mtime and ctime,
//! directories by identity. Any write to a file sets its ctime to the current time, which no
//! kept stamp can equal, since each is older than [`SETTLE`] when kept; a file created or
//! renamed into place changes presence or inode.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Refusal;
use super::git::{self, HELPER_TIMEOUT, helper};
use super::spawn::{Spec, output};

/// How old every watched stamp must be for an entry to be kept: longer than any filesystem's
/// timestamp granularity, so that a write after the read cannot carry the same stamp.
pub const SETTLE: Duration = Duration::from_secs(2);

/// Most repositories remembered; past it the cache starts over.
const CAPACITY: usize = 256;

/// Most bytes of `rev-parse` output read.
const MAX_REV_PARSE: usize = 64 << 10;

/// What one path looked like: `None` when it did not exist. A directory counts by its identity
/// only (its times move whenever git writes its index or a lock beside it); a file or symlink
/// by its identity, size and times.
type Stamp = Option<(u64, u64, u32, u64, i64, i64, i64, i64)>;

fn stamp(path: &Path) -> Stamp {
    std::fs::symlink_metadata(path).ok().map(|m| {
        if m.is_dir() {
            return (m.dev(), m.ino(), m.mode(), 0, 0, 0, 0, 0);
        }
        (
            m.dev(),
            m.ino(),
            m.mode(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        )
    })
}

/// Whether `s` changed at or after `since` (absent paths never do).
fn recent(s: &Stamp, since: SystemTime) -> bool {
    let Some((.., mtime, mtime_ns, ctime, ctime_ns)) = *s else {
        return false;
    };
    if (mtime, mtime_ns, ctime, ctime_ns) == (0, 0, 0, 0) {
        return false;
    }
    let at = |secs: i64, ns: i64| {
        UNIX_EPOCH
            .checked_add(Duration::new(
                secs.max(0) as u64,
                ns.clamp(0, 999_999_999) as u32,
            ))
            .unwrap_or(UNIX_EPOCH)
    };
    at(mtime, mtime_ns) >= since || at(ctime, ctime_ns) >= since
}

/// Which run an entry answers for: the program, where it runs, its reach and its environment
/// with the per-run home written as `~` (everything else in it is the same for the same call).
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    program: PathBuf,
    cwd: PathBuf,
    scope: String,
    env: Vec<(OsString, OsString)>,
}

struct Entry {
    watched: Vec<(PathBuf, Stamp)>,
    keys: Arc<Vec<String>>,
}

impl Entry {
    fn fresh(&self) -> bool {
        self.watched.iter().all(|(p, s)| stamp(p) == *s)
    }
}

/// Config key names per repository, shared by every run of the server.
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<Key, Entry>>,
}

/// Where a run is, as the cache needs it.
pub struct Where<'a> {
    /// The root the run is confined to (discovery stops there).
    pub root: &'a Path,
    /// The run's own home, which differs per run and is left out of the key.
    pub home: &'a Path,
    /// What else decides what the run can read (root mode, network, …).
    pub scope: String,
}

impl KeyCache {
    /// The names of every config key git sees for `spec` (see [`git::config_keys`]), from the
    /// cache when nothing watched changed.
    pub async fn repo_keys(&self, spec: &Spec, at: &Where<'_>) -> Result<Vec<String>, Refusal> {
        if git::moves_repository(&spec.args) {
            // `-C` or `--bare` move the run elsewhere; the helper follows them, uncached.
            let keys = git::config_keys(spec).await?;
            return Ok(keys.into_iter().map(|k| k.name).collect());
        }
        let key = Key {
            program: spec.program.clone(),
            cwd: spec.cwd.clone(),
            scope: at.scope.clone(),
            env: without_home(spec, at.home),
        };
        {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            match entries.get(&key) {
                Some(e) if e.fresh() => return Ok(e.keys.as_ref().clone()),
                Some(_) => {
                    entries.remove(&key);
                }
                None => {}
            }
        }
        let (keys, entry) = read(spec, at.root).await?;
        if let Some(entry) = entry {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(key, entry);
        }
        Ok(keys)
    }
}

/// `spec`'s environment with the run's home replaced by `~`.
fn without_home(spec: &Spec, home: &Path) -> Vec<(OsString, OsString)> {
    let home = home.to_string_lossy();
    let mut env: Vec<(OsString, OsString)> = spec
        .env
        .vars()
        .map(|(k, v)| {
            let v = v.to_string_lossy().replace(home.as_ref(), "~");
            (k.clone(), OsString::from(v))
        })
        .collect();
    env.sort();
    env
}

/// Reads the keys, and an entry to keep when they can be checked exactly later. A config that
/// cannot be kept (includes, keys from elsewhere, no repository) costs the one read it always
/// cost; one that can is read again between two stats of everything watched, so that nothing —
/// not even a directory swapped whole — changed while it was read.
async fn read(spec: &Spec, root: &Path) -> Result<(Vec<String>, Option<Entry>), Refusal> {
    let names = |keys: &[git::ConfigKey]| keys.iter().map(|k| k.name.clone()).collect::<Vec<_>>();
    let first = git::config_keys(spec).await?;
    if first.is_empty() || !first.iter().all(keepable) {
        return Ok((names(&first), None));
    }
    let Some(watched) = watch_list(spec, root).await else {
        return Ok((names(&first), None));
    };
    let started = SystemTime::now();
    let before: Vec<Stamp> = watched.iter().map(|p| stamp(p)).collect();
    let keys = names(&git::config_keys(spec).await?);
    let after: Vec<Stamp> = watched.iter().map(|p| stamp(p)).collect();
    let settled = started.checked_sub(SETTLE).unwrap_or(UNIX_EPOCH);
    let kept =
        before == after && !after.iter().any(|s| recent(s, settled)) && keys == names(&first);
    let entry = kept.then(|| Entry {
        watched: watched.into_iter().zip(after).collect(),
        keys: Arc::new(keys.clone()),
    });
    Ok((keys, entry))
}

/// Whether a key can be checked later by stat alone: not an include (whose target could be
/// anywhere), and from the repository's own config files or the host's command-line keys.
fn keepable(key: &git::ConfigKey) -> bool {
    let lower = key.name.to_ascii_lowercase();
    !lower.starts_with("include.") && !lower.starts_with("includeif.") && own_origin(&key.origin)
}

/// Whether a key came from the repository's own config files or the host's command-line keys.
fn own_origin(origin: &[u8]) -> bool {
    if origin == b"command line:" {
        return true;
    }
    origin.strip_prefix(b"file:").is_some_and(|path| {
        Path::new(std::ffi::OsStr::from_bytes(path))
            .file_name()
            .is_some_and(|n| n == "config" || n == "config.worktree")
    })
}

/// The paths an entry for `spec` watches, or `None` when git finds no repository there.
async fn watch_list(spec: &Spec, root: &Path) -> Option<Vec<PathBuf>> {
    let dirs = helper(
        spec,
        &[
            "rev-parse",
            "--path-format=absolute",
            "--absolute-git-dir",
            "--git-common-dir",
        ],
    );
    let (status, out) = output(&dirs, MAX_REV_PARSE, HELPER_TIMEOUT).await.ok()?;
    if !status.success() {
        return None;
    }
    let text = String::from_utf8(out).ok()?;
    let mut lines = text.lines();
    let git_dir = PathBuf::from(lines.next()?);
    let common_dir = PathBuf::from(lines.next()?);
    let mut watched = Vec::new();
    let mut dir = spec.cwd.as_path();
    loop {
        // What discovery looks for in each directory: a `.git` (directory or gitfile), or the
        // directory itself being a repository (HEAD, objects, refs).
        watched.push(dir.to_path_buf());
        for entry in [".git", "HEAD", "objects", "refs"] {
            watched.push(dir.join(entry));
        }
        if dir == root {
            break;
        }
        dir = dir.parent()?;
    }
    for d in [&git_dir, &common_dir] {
        watched.push(d.clone());
        for f in ["config", "config.worktree", "commondir"] {
            watched.push(d.join(f));
        }
    }
    Some(watched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_changes_the_stamp_and_a_recent_stamp_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config");
        assert_eq!(stamp(&f), None);
        std::fs::write(&f, "[core]\n").unwrap();
        let one = stamp(&f);
        assert!(one.is_some());
        assert!(recent(&one, SystemTime::now() - SETTLE));
        assert!(!recent(&one, SystemTime::now() + Duration::from_secs(1)));
        // Same size: the ctime still moves.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&f, "[bare]\n").unwrap();
        assert_ne!(stamp(&f), one);
        // A directory is its identity: files written in it do not change it.
        let d = stamp(dir.path());
        std::fs::write(dir.path().join("index.lock"), "x").unwrap();
        std::fs::rename(dir.path().join("index.lock"), dir.path().join("index")).unwrap();
        assert_eq!(stamp(dir.path()), d);
        assert!(!recent(&d, UNIX_EPOCH));
    }

    #[test]
    fn only_the_repository_config_and_the_command_line_are_own_origins() {
        assert!(own_origin(b"command line:"));
        assert!(own_origin(b"file:.git/config"));
        assert!(own_origin(b"file:/srv/r/.git/worktrees/w/config.worktree"));
        assert!(!own_origin(b"file:/etc/gitconfig.d/evil"));
        assert!(!own_origin(b"blob:HEAD:.gitmodules"));
        assert!(!own_origin(b"standard input:"));
    }
}
