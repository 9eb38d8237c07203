//! One lock per (kind, target), shared by every infra process on the state directory: a file
//! `<state>/locks/<kind>@<target>.lock` (0600) created with `O_EXCL`, holding its holder as JSON
//! (trace id, plugin, tool, pid, host, started, expires), so a refusal can name who holds it.
//!
//! Taking, taking over and releasing happen under an `flock` on `<state>/locks/.mutex`: without
//! it two processes that both judge a lock stale could each remove it and each believe they own
//! the new one. A lock is stale when it expired or its holder's process is gone on this machine;
//! it is then taken over and the caller learns whose it was, for the audit record. A holder
//! that crashed between creating the file and writing it (it did so under the mutex, so nobody
//! saw it half-written) leaves a file that does not parse: stale too.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest file name the lock of a target gets before its name is hashed instead.
const MAX_NAME: usize = 200;

/// Who holds a lock, as the lock file records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Identifies this holding; release removes the file only while it still holds this id.
    pub id: String,
    /// The kind of target (`kubernetes`, `terraform`, …).
    pub kind: String,
    /// The target's name.
    pub target: String,
    /// The holding call's trace id.
    pub trace_id: String,
    /// The plugin that asked.
    pub plugin: String,
    /// The tool it ran.
    pub tool: String,
    /// The holding infra process.
    pub pid: u32,
    /// The machine that process runs on: a pid means nothing elsewhere.
    pub host: String,
    /// When it was taken, seconds since the epoch.
    pub started: u64,
    /// When it counts as abandoned, seconds since the epoch.
    pub expires: u64,
}

impl Holder {
    /// The holder as a refusal names it.
    pub fn describe(&self) -> String {
        format!(
            "plugin '{}' (tool {}, trace {}, pid {} on {})",
            self.plugin, self.tool, self.trace_id, self.pid, self.host
        )
    }

    /// Why this holder no longer counts, if it does not: expired, or its process is gone.
    fn stale(&self, now: u64, this_host: &str) -> Option<String> {
        if now >= self.expires {
            return Some(format!("it expired {} s ago", now - self.expires));
        }
        if self.host == this_host && !process_alive(self.pid) {
            return Some(format!("its process {} is gone", self.pid));
        }
        None
    }
}

/// What taking a lock came to.
#[derive(Debug)]
pub enum Taken {
    /// The lock was free; it is ours now.
    Fresh(Lock),
    /// The lock was stale; it is ours now. The old holder (when its file could be read) and why
    /// it was stale.
    TakenOver(Lock, Option<Holder>, String),
    /// Someone else holds it.
    Held(Holder),
}

/// The directory of lock files.
#[derive(Debug, Clone)]
pub struct Locks {
    dir: PathBuf,
}

impl Locks {
    /// Locks under `dir` (created 0700 when first used).
    pub fn new(dir: PathBuf) -> Self {
        Locks { dir }
    }

    /// Where the lock files are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the lock of `holder.kind` / `holder.target` for `holder`, unless a live holder
    /// has it.
    pub fn take(&self, holder: &Holder) -> std::io::Result<Taken> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let _mutex = self.mutex()?;
        let path = self.dir.join(file_name(&holder.kind, &holder.target));
        let mut previous = None;
        match create(&path, holder) {
            Ok(()) => return Ok(Taken::Fresh(Lock::new(path, holder))),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let why = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Holder>(&bytes) {
                Ok(old) => match old.stale(now(), &holder.host) {
                    None => return Ok(Taken::Held(old)),
                    Some(why) => {
                        previous = Some(old);
                        why
                    }
                },
                Err(_) => "its file does not hold a holder (a crash while taking it)".to_string(),
            },
            // Released between our create and our read: impossible under the mutex, but then
            // the lock is simply free.
            Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        create(&path, holder)?;
        let lock = Lock::new(path, holder);
        Ok(match why.is_empty() {
            true => Taken::Fresh(lock),
            false => Taken::TakenOver(lock, previous, why),
        })
    }

    /// The exclusive flock every change to the directory happens under.
    fn mutex(&self) -> std::io::Result<File> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(self.dir.join(".mutex"))?;
        loop {
            // SAFETY: flock on a descriptor this function owns; no memory is involved.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(file);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// A lock this process holds; released (its file removed, if still ours) when dropped.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    id: String,
    released: bool,
}

impl Lock {
    fn new(path: PathBuf, holder: &Holder) -> Self {
        Lock {
            path,
            id: holder.id.clone(),
            released: false,
        }
    }

    /// The lock file's name, as approvals and audit events name the lock.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Removes the lock file if it is still ours (a holder that outlived its expiry may have
    /// been taken over; its file is then someone else's). Returns whether it was ours.
    pub fn release(&mut self) -> std::io::Result<bool> {
        self.released = true;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let _mutex = Locks::new(dir.to_path_buf()).mutex()?;
        let ours = std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Holder>(&b).ok())
            .is_some_and(|h| h.id == self.id);
        if ours {
            std::fs::remove_file(&self.path)?;
        }
        Ok(ours)
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if !self.released
            && let Err(e) = self.release()
        {
            tracing::warn!(lock = %self.path.display(), error = %e, "could not release a guard lock; it expires by itself");
        }
    }
}

/// Creates the lock file exclusively and writes the holder, synced.
fn create(path: &Path, holder: &Holder) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    let text = serde_json::to_vec(holder).map_err(std::io::Error::other)?;
    let written = file.write_all(&text).and_then(|()| file.sync_all());
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}

/// `<kind>@<target>.lock`, every byte outside `[A-Za-z0-9_.-]` written as `%XX`, so no name
/// leads out of the directory; hashed when too long for a file name.
pub fn file_name(kind: &str, target: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => (b as char).to_string(),
                b'.' => ".".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let name = format!("{}@{}.lock", enc(kind), enc(target));
    if name.len() <= MAX_NAME && !name.starts_with('.') {
        return name;
    }
    let digest = Sha256::digest(format!("{kind}\0{target}").as_bytes());
    format!("h-{}.lock", hex::encode(&digest[..16]))
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// This machine's name, for telling whether a holder's pid can be checked here.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Whether process `pid` exists on this machine (a process of another user counts as alive).
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is delivered.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn holder(id: &str, pid: u32, expires: u64) -> Holder {
        Holder {
            id: id.into(),
            kind: "kubernetes".into(),
            target: "prod".into(),
            trace_id: format!("t-{id}"),
            plugin: "k8s".into(),
            tool: "k8s".into(),
            pid,
            host: host_name(),
            started: now(),
            expires,
        }
    }

    fn me(id: &str) -> Holder {
        holder(id, std::process::id(), now() + 60)
    }

    #[test]
    fn a_held_lock_refuses_a_second_holder_and_is_free_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let locks = Locks::new(dir.path().join("locks"));
        let Taken::Fresh(mut first) = locks.take(&me("a")).unwrap() else {
            panic!("free lock not taken")
        };
        let path = dir.path().join("locks").join(first.name());
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let on_disk: Holder = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(on_disk, me("a").clone_with(&on_disk));
        match locks.take(&me("b")).unwrap() {
            Taken::Held(h) => assert_eq!(h.id, "a"),
            other => panic!("second holder got {other:?}"),
        }
        assert!(first.release().unwrap());
        assert!(!path.exists());
        assert!(matches!(locks.take(&me("b")).unwrap(), Taken::Fresh(_)));
    }

    #[test]
    fn expired_and_dead_holders_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let locks = Locks::new(dir.path().to_path_buf());
        let old = locks
            .take(&holder("old", std::process::id(), now() - 5))
            .unwrap();
        std::mem::forget(old);
        match locks.take(&me("new")).unwrap() {
            Taken::TakenOver(_, Some(prev), why) => {
                assert_eq!(prev.id, "old");
                assert!(why.contains("expired"), "{why}");
            }
            other => panic!("expired lock: {other:?}"),
        }
        let dir = tempfile::tempdir().unwrap();
        let locks = Locks::new(dir.path().to_path_buf());
        // A pid far above pid_max exists on no Linux machine.
        std::mem::forget(
            locks
                .take(&holder("dead", 999_999_999, now() + 600))
                .unwrap(),
        );
        match locks.take(&me("new")).unwrap() {
            Taken::TakenOver(_, Some(prev), why) => {
                assert_eq!(prev.id, "dead");
                assert!(why.contains("gone"), "{why}");
            }
            other => panic!("dead holder: {other:?}"),
        }
    }

    #[test]
    fn a_lock_taken_over_is_not_removed_by_its_old_holder() {
        let dir = tempfile::tempdir().unwrap();
        let locks = Locks::new(dir.path().to_path_buf());
        let Taken::Fresh(mut old) = locks
            .take(&holder("old", std::process::id(), now() - 1))
            .unwrap()
        else {
            panic!()
        };
        let Taken::TakenOver(new, ..) = locks.take(&me("new")).unwrap() else {
            panic!()
        };
        assert!(
            !old.release().unwrap(),
            "the old holder's release leaves the new lock"
        );
        assert!(dir.path().join(new.name()).exists());
        drop(new);
        assert!(!dir.path().join(file_name("kubernetes", "prod")).exists());
    }

    #[test]
    fn names_stay_inside_the_directory() {
        assert_eq!(file_name("kubernetes", "prod"), "kubernetes@prod.lock");
        assert_eq!(
            file_name("git", "../../etc/x"),
            "git@..%2F..%2Fetc%2Fx.lock"
        );
        assert_eq!(file_name("a@b", "c"), "a%40b@c.lock");
        assert!(file_name(".hidden", "x").starts_with("h-"));
        assert!(file_name("k", &"x".repeat(300)).starts_with("h-"));
        assert!(!file_name("k", "a/b").contains('/'));
    }

    impl Holder {
        /// `self` with `other`'s clock fields, for comparing what was written.
        fn clone_with(mut self, other: &Holder) -> Holder {
            self.started = other.started;
            self.expires = other.expires;
            self
        }
    }
}
