//! Small state files that several infra processes rewrite (`known_hosts.json`, `jobs.json`).
//!
//! Two servers on one state directory are normal (an editor and a terminal each start one), so
//! an in-process lock is not enough: each change is a read-modify-write under an exclusive
//! `flock` on `<file>.lock`, re-reading the file inside the lock, and the new content replaces
//! the old through a temporary file of a unique name (`O_EXCL`, mode 0600) renamed over it, so
//! a crash leaves the old or the new file and never half of one. Readers need no lock: a
//! rename is atomic.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// An exclusive lock on a state file, held until dropped (the kernel releases it with the
/// descriptor, also when the process dies).
pub struct Locked {
    path: PathBuf,
    _lock: File,
}

impl Locked {
    /// Waits for the exclusive lock on `path` (through `<path>.lock`, created 0600).
    pub fn acquire(path: &Path) -> std::io::Result<Locked> {
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(lock_path(path))?;
        loop {
            // SAFETY: flock on a descriptor this function owns; no memory is involved.
            if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } == 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        Ok(Locked {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// The file's current content; `None` when it does not exist.
    pub fn read(&self) -> std::io::Result<Option<String>> {
        match std::fs::read_to_string(&self.path) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the file with `content` (written and synced to a fresh temporary file first).
    pub fn replace(&self, content: &[u8]) -> std::io::Result<()> {
        let (tmp, mut file) = self.temp_file()?;
        let written = file
            .write_all(content)
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// A new file beside the target, with a random name no other writer can share or pre-plant.
    fn temp_file(&self) -> std::io::Result<(PathBuf, File)> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        loop {
            let tmp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
            {
                Ok(f) => return Ok((tmp, f)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_os_string();
    p.push(".lock");
    PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_atomically_with_private_files_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let l = Locked::acquire(&path).unwrap();
        assert_eq!(l.read().unwrap(), None);
        l.replace(b"one").unwrap();
        l.replace(b"two").unwrap();
        assert_eq!(l.read().unwrap().as_deref(), Some("two"));
        drop(l);
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["state.json", "state.json.lock"]);
        for n in names {
            let mode = std::fs::metadata(dir.path().join(&n))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{n} is {mode:o}");
        }
    }

    #[test]
    fn the_lock_excludes_other_holders_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let held = Locked::acquire(&path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        let waiter = std::thread::spawn(move || {
            let l = Locked::acquire(&p).unwrap();
            tx.send(()).unwrap();
            drop(l);
        });
        // flock locks belong to the open file description: a second open in this process
        // waits like another process would.
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(200))
                .is_err(),
            "the second holder got the lock while the first held it"
        );
        drop(held);
        rx.recv_timeout(std::time::Duration::from_secs(30))
            .expect("the lock is free once dropped");
        waiter.join().unwrap();
    }
}
