//! Appending: the writer thread, group commit, the chain's tail and its recovery.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::recover::recover_tail;
use super::{AuditEntry, AuditRecord, GENESIS, Outcome, canonical_json, record_hash};
use crate::redact::Redactor;

/// Records one batch may hold: bounds the memory and the length of one write.
const MAX_BATCH: usize = 1024;

/// Why an append failed, sorted into what the operator has to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// The disk (or the user's quota) is full.
    DiskFull,
    /// The log or its directory may not be written (or the file system is read-only).
    Permissions,
    /// Any other I/O failure.
    Io,
}

/// A record that could not be made durable, with the cause and what to do about it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct AppendError {
    /// What to fix.
    pub cause: Cause,
    /// The failure and the advice, naming the log.
    pub message: String,
}

impl AppendError {
    /// Sorts a failure to append to the log at `path` by its I/O error and adds advice.
    fn new(path: &Path, e: &anyhow::Error) -> AppendError {
        use std::io::ErrorKind;
        let io = e.chain().find_map(|c| c.downcast_ref::<std::io::Error>());
        let cause = match io {
            Some(io)
                if matches!(io.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded)
                    || io.raw_os_error() == Some(libc::ENOSPC) =>
            {
                Cause::DiskFull
            }
            Some(io)
                if matches!(
                    io.kind(),
                    ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                Cause::Permissions
            }
            _ => Cause::Io,
        };
        let path = path.display();
        let advice = match cause {
            Cause::DiskFull => format!("the disk holding {path} is full: free space on it"),
            Cause::Permissions => format!(
                "check the permissions of {path} and of its directory: the user running infra \
                 must be able to write both, on a file system mounted read-write"
            ),
            Cause::Io => format!("check the disk holding {path}"),
        };
        AppendError {
            cause,
            message: format!("{e:#} — {advice}"),
        }
    }

    /// The writer thread is gone (it panicked): nothing more can be recorded.
    fn writer_gone(path: &Path) -> AppendError {
        AppendError {
            cause: Cause::Io,
            message: format!(
                "the writer of audit log {} has stopped; restart infra",
                path.display()
            ),
        }
    }
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| OffsetDateTime::UNIX_EPOCH.to_string())
}

/// Where the chain stands at the end of the file.
struct ChainState {
    file: File,
    next_seq: u64,
    prev: String,
    /// File length after our last write; `None` forces a re-read of the tail.
    len: Option<u64>,
}

/// A record waiting for the writer, and who waits for it to be durable.
struct Job {
    entry: AuditEntry,
    reply: Option<tokio::sync::oneshot::Sender<Result<AuditRecord, AppendError>>>,
}

/// An open audit log; share it behind an `Arc`, every method takes `&self`.
pub struct AuditLog {
    chain: Arc<Chain>,
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

/// The file and our view of its chain, used by the writer thread (and by `open`).
struct Chain {
    path: PathBuf,
    redactor: Redactor,
    state: Mutex<ChainState>,
    /// Successful `fdatasync`s of batches: with records, shows how much group commit shares.
    syncs: AtomicU64,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.chain.path)
            .finish()
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued (a cancelled call's end
        // record, say) and stop; waiting for it keeps those records from being lost at exit.
        drop(self.jobs.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl AuditLog {
    /// Opens (or creates) the log and continues its chain, recovering a torn last line.
    pub fn open(path: impl AsRef<Path>, redactor: Redactor) -> Result<AuditLog> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| {
                format!(
                    "cannot create the directory of audit log {}; check the state directory is writable",
                    path.display()
                )
            })?;
        }
        let mut options = OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&path).with_context(|| {
            format!(
                "cannot open audit log {}; check the state directory is writable",
                path.display()
            )
        })?;
        let chain = Arc::new(Chain {
            path,
            redactor,
            state: Mutex::new(ChainState {
                file,
                next_seq: 1,
                prev: GENESIS.to_string(),
                len: None,
            }),
            syncs: AtomicU64::new(0),
        });
        {
            let mut st = chain.lock_state();
            chain.locked(&mut st, |st| chain.catch_up(st))?;
        }
        let (jobs, queue) = mpsc::channel();
        let writer = {
            let chain = chain.clone();
            std::thread::Builder::new()
                .name("infra-audit".into())
                .spawn(move || chain.write_queue(queue))
                .context("starting the audit writer thread")?
        };
        Ok(AuditLog {
            chain,
            jobs: Some(jobs),
            writer: Some(writer),
        })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.chain.path
    }

    /// Batches synced to disk since the log was opened (each covers one or more records).
    pub fn syncs(&self) -> u64 {
        self.chain.syncs.load(Ordering::Relaxed)
    }

    /// Queues one record; the receiver answers once it is durable.
    fn enqueue(
        &self,
        entry: AuditEntry,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<AuditRecord, AppendError>>, AppendError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .as_ref()
            .and_then(|jobs| {
                jobs.send(Job {
                    entry,
                    reply: Some(reply),
                })
                .ok()
            })
            .ok_or_else(|| AppendError::writer_gone(&self.chain.path))?;
        Ok(answer)
    }

    /// Appends one record (scrubbed through the redactor) and returns once it is on disk.
    /// Blocks the thread: from async code use [`AuditLog::append_async`].
    pub fn append(&self, entry: AuditEntry) -> Result<AuditRecord, AppendError> {
        self.enqueue(entry)?
            .blocking_recv()
            .unwrap_or_else(|_| Err(AppendError::writer_gone(&self.chain.path)))
    }

    /// Appends one record and resolves once it is on disk, sharing the sync with every record
    /// appended meanwhile.
    pub async fn append_async(&self, entry: AuditEntry) -> Result<AuditRecord, AppendError> {
        self.enqueue(entry)?
            .await
            .unwrap_or_else(|_| Err(AppendError::writer_gone(&self.chain.path)))
    }

    /// Queues a record without waiting for it (for a `Drop`, which cannot wait); a failure to
    /// write it is logged.
    pub fn submit(&self, entry: AuditEntry) {
        let queued = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(Job { entry, reply: None }).is_ok());
        if !queued {
            tracing::error!(log = %self.chain.path.display(), "the audit writer has stopped; a record was lost");
        }
    }
}

impl Chain {
    /// The writer thread: appends whatever is queued as one batch with one sync, answers each
    /// waiter, repeats until the log is dropped.
    fn write_queue(&self, queue: mpsc::Receiver<Job>) {
        while let Ok(first) = queue.recv() {
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            let (entries, replies): (Vec<_>, Vec<_>) =
                jobs.into_iter().map(|j| (j.entry, j.reply)).unzip();
            let written = {
                let mut st = self.lock_state();
                self.locked(&mut st, |st| {
                    self.catch_up(st)?;
                    self.write_batch(st, entries)
                })
            };
            match written {
                Ok(records) => {
                    for (record, reply) in records.into_iter().zip(replies) {
                        if let Some(reply) = reply {
                            let _ = reply.send(serde_json::from_value(record).map_err(|e| {
                                AppendError {
                                    cause: Cause::Io,
                                    message: format!(
                                        "cannot decode the audit record just written: {e}"
                                    ),
                                }
                            }));
                        }
                    }
                }
                Err(e) => {
                    let err = AppendError::new(&self.path, &e);
                    tracing::error!("could not append to the audit log: {err}");
                    for reply in replies.into_iter().flatten() {
                        let _ = reply.send(Err(err.clone()));
                    }
                }
            }
        }
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, ChainState> {
        self.state.lock().unwrap_or_else(|poisoned| {
            // A panic mid-append may have left our idea of the tail stale; re-read it.
            let mut st = poisoned.into_inner();
            st.len = None;
            st
        })
    }

    /// Runs `f` holding the cross-process lock on the file.
    fn locked<T>(
        &self,
        st: &mut ChainState,
        f: impl FnOnce(&mut ChainState) -> Result<T>,
    ) -> Result<T> {
        st.file.lock().with_context(|| {
            format!(
                "cannot lock audit log {}; check the file system supports flock",
                self.path.display()
            )
        })?;
        let result = f(st);
        // Unlocking cannot meaningfully fail for a file we hold; closing would release it too.
        let _ = st.file.unlock();
        result
    }

    /// Brings our view of the chain up to date with the file, which another process may have
    /// appended to, or which a crash may have left with a torn last line.
    fn catch_up(&self, st: &mut ChainState) -> Result<()> {
        let len = st
            .file
            .metadata()
            .context("cannot stat the audit log")?
            .len();
        if st.len == Some(len) {
            return Ok(());
        }
        let shrunk_from = st.len.filter(|&known| len < known);
        let (tail, torn) = recover_tail(&mut st.file, &self.path)?;
        st.next_seq = tail.next_seq;
        st.prev = tail.prev;
        st.len = Some(tail.len);
        if let Some(torn) = torn {
            tracing::warn!(
                log = %self.path.display(),
                bytes = torn.bytes,
                sha256 = %torn.sha256,
                moved_to = %torn.moved_to.display(),
                "audit log ended in a torn record; moved it aside and recorded that in the chain"
            );
            let mut entry = AuditEntry::new(&recovery_trace_id(), "audit", Outcome::Error);
            entry.action = Some("recover".into());
            entry.args = json!({
                "torn_bytes": torn.bytes,
                "torn_sha256": torn.sha256,
                "moved_to": torn.moved_to.display().to_string(),
            });
            entry.error = Some(format!(
                "the audit log ended in a torn record of {} bytes (sha256 {}), moved to {}: a write \
                 was interrupted (crash or full disk); inspect that file, nothing was dropped",
                torn.bytes,
                torn.sha256,
                torn.moved_to.display()
            ));
            self.write_batch(st, vec![entry])?;
        }
        if let Some(before) = shrunk_from {
            tracing::warn!(log = %self.path.display(), before, now = len, "audit log shrank while open");
            let mut entry = AuditEntry::new(&recovery_trace_id(), "audit", Outcome::Error);
            entry.action = Some("recover".into());
            entry.args = json!({"bytes_before": before, "bytes_now": len});
            entry.error = Some(format!(
                "the audit log shrank from {before} to {len} bytes while infra had it open: records \
                 were removed from its end; compare it with a backup"
            ));
            self.write_batch(st, vec![entry])?;
        }
        Ok(())
    }

    /// Chains, writes and syncs `entries` as one unit: all of them are durable, or none is in
    /// the file (a partial write is cut back off, so the next batch does not glue onto it).
    fn write_batch(&self, st: &mut ChainState, entries: Vec<AuditEntry>) -> Result<Vec<Value>> {
        let mut seq = st.next_seq;
        let mut prev = st.prev.clone();
        let mut text = String::new();
        let mut records = Vec::with_capacity(entries.len());
        for entry in entries {
            let mut value = Value::Object(entry.fields()?);
            // The caller redacted the args already; secrets registered since, or hiding in an
            // error message or event detail, are caught here, before anything is hashed.
            self.redactor.scrub_value(&mut value);
            let Value::Object(mut record) = value else {
                bail!("an audit entry did not encode as a JSON object");
            };
            record.insert("seq".into(), json!(seq));
            record.insert("time".into(), json!(now_rfc3339()));
            record.insert("prev".into(), json!(prev));
            let mut record = Value::Object(record);
            let hash = record_hash(&record);
            record["hash"] = json!(hash);
            text.push_str(&canonical_json(&record));
            text.push('\n');
            records.push(record);
            seq += 1;
            prev = hash;
        }
        let before = st.len;
        let undo = |st: &mut ChainState| {
            if let Some(len) = before {
                let _ = st.file.set_len(len);
            }
            st.len = None;
        };
        let written = st
            .file
            .write_all(text.as_bytes())
            .and_then(|()| st.file.flush());
        if let Err(e) = written {
            undo(st);
            return Err(e)
                .with_context(|| format!("cannot append to audit log {}", self.path.display()));
        }
        if let Err(e) = st.file.sync_data() {
            // The kernel may have dropped the pages it could not write: what is in the file
            // now is unknown, so take the batch back off and report it as not written.
            undo(st);
            return Err(e)
                .with_context(|| format!("cannot sync audit log {} to disk", self.path.display()));
        }
        self.syncs.fetch_add(1, Ordering::Relaxed);
        st.len = before.map(|l| l + text.len() as u64);
        st.next_seq = seq;
        st.prev = prev;
        Ok(records)
    }
}

fn recovery_trace_id() -> String {
    format!(
        "audit-recover-{}",
        OffsetDateTime::now_utc().unix_timestamp()
    )
}
