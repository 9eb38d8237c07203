//! The audit log: hash-chained JSON records of every tool call, in `audit.jsonl`.
//!
//! # Records
//!
//! Every line is one record, canonical JSON (keys sorted, no whitespace). Each carries `seq`
//! (from 1), `time` (RFC 3339 UTC), `kind`, `prev`, the hash of the record before it, and
//! `hash`, the sha256 of `prev` followed by the record's canonical JSON without `hash`.
//! Editing, deleting, inserting or reordering records therefore breaks the chain at a place
//! [`verify`] can name. Deleting records from the *end* leaves a valid shorter chain; keeping
//! a copy of the latest hash elsewhere (a backup, a ticket) is what catches that.
//!
//! A call is two records sharing a `call_id` (unique per call; the agent's `trace_id` may repeat):
//!
//! - `kind: "begin"` — `call_id`, `trace_id`, `tool`, `action`, `plugin`, `plugin_sha256` and the
//!   redacted `args`. It is on disk before the call may use any capability; a call whose begin
//!   cannot be written does not run.
//! - `kind: "end"` — `call_id`, `trace_id`, `tool`, `action`, `plugin`, `outcome` (`ok`, `error`,
//!   `denied`, `timeout`), `error`, `events` (the capability uses, in order, also those of a call
//!   the client cancelled), `artifacts` and `duration_ms`. A call whose end cannot be written is
//!   not reported as a success.
//! - `kind: "call"` — one whole event in one record: a plugin whose `describe` tried to use
//!   capabilities, the recovery of a torn or shrunken log. Records written before begin/end
//!   records existed have no `kind` and read as `call`.
//!
//! A begin without an end is a call that was still running when the log was read, or whose
//! server was killed: [`verify`] lists those by trace id without calling the chain broken.
//! [`list`], [`tail`] and [`stats`] show one entry per call, a begin merged with its end
//! (`outcome: "unended"` when it has none).
//!
//! # Writing
//!
//! One writer thread per open log takes records from a queue and appends all that are waiting
//! as one batch: one `write_all` on an `O_APPEND` file and one `fdatasync` for the whole batch
//! (group commit), so concurrent calls share a sync; each appender waits until its record is
//! durable. A crash leaves at worst a torn last line, which the next [`AuditLog::open`] moves
//! aside and records instead of silently dropping or accepting it. Several infra processes may
//! share one log: an exclusive `flock` around each batch keeps their records in one chain.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::redact::Redactor;

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Records one batch may hold: bounds the memory and the length of one write.
const MAX_BATCH: usize = 1024;

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The tool did its work.
    Ok,
    /// The tool failed.
    Error,
    /// The policy or a flag refused it.
    Denied,
    /// The deadline passed.
    Timeout,
    /// It began and has no end record: still running, or its server was killed. Never
    /// written into a record; [`list`] and [`stats`] show it for such calls.
    Unended,
}

impl Outcome {
    /// The name used in records: `ok`, `error`, `denied`, `timeout` (and `unended` in views).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Denied => "denied",
            Outcome::Timeout => "timeout",
            Outcome::Unended => "unended",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ok" => Ok(Outcome::Ok),
            "error" => Ok(Outcome::Error),
            "denied" => Ok(Outcome::Denied),
            "timeout" => Ok(Outcome::Timeout),
            "unended" => Ok(Outcome::Unended),
            other => Err(format!(
                "'{other}' is not an outcome; use one of ok, error, denied, timeout, unended"
            )),
        }
    }
}

/// What a record stands for (see the module doc for the fields of each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A call about to run, written before it may use any capability.
    Begin,
    /// How that call ended.
    End,
    /// A whole event in one record (and every record written before begin/end existed).
    #[default]
    Call,
}

/// What the caller knows about a call; [`AuditLog::append`] adds seq, time and the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Begin, end, or a one-record event.
    pub kind: Kind,
    /// Pairs a begin with its end; unique per call.
    pub call_id: Option<String>,
    /// The call's trace id.
    pub trace_id: String,
    /// The tool called.
    pub tool: String,
    /// The tool's action, if it has actions.
    pub action: Option<String>,
    /// The plugin that ran it, for plugin tools.
    pub plugin: Option<String>,
    /// The sha256 of that plugin's wasm (begin and call records).
    pub plugin_sha256: Option<String>,
    /// The call's arguments, already redacted by the caller (they are scrubbed again anyway);
    /// begin and call records.
    pub args: Value,
    /// Capability uses, in order: objects `{cap, target, decision: "allow"|"deny", reason?,
    /// duration_ms, detail?}` as `caps::CapEvent` serialises them (end and call records).
    pub events: Vec<Value>,
    /// How the call ended: `ok`, `error`, `denied` or `timeout` (see [`Outcome`]).
    pub outcome: String,
    /// The error message, when it failed.
    pub error: Option<String>,
    /// How long the call took.
    pub duration_ms: u64,
    /// URIs of artifacts the call stored.
    pub artifacts: Vec<String>,
}

impl AuditEntry {
    /// A one-record event with no action, plugin, events, error or artifacts; fill in the
    /// rest by field.
    pub fn new(trace_id: &str, tool: &str, outcome: Outcome) -> AuditEntry {
        AuditEntry {
            kind: Kind::Call,
            call_id: None,
            trace_id: trace_id.to_string(),
            tool: tool.to_string(),
            action: None,
            plugin: None,
            plugin_sha256: None,
            args: json!({}),
            events: Vec::new(),
            outcome: outcome.as_str().to_string(),
            error: None,
            duration_ms: 0,
            artifacts: Vec::new(),
        }
    }

    /// The begin record of call `call_id`; set action, plugin and args by field.
    pub fn begin(call_id: &str, trace_id: &str, tool: &str) -> AuditEntry {
        AuditEntry {
            kind: Kind::Begin,
            call_id: Some(call_id.to_string()),
            ..AuditEntry::new(trace_id, tool, Outcome::Ok)
        }
    }

    /// The end record matching this begin, ending with `outcome`.
    pub fn end(&self, outcome: Outcome) -> AuditEntry {
        AuditEntry {
            kind: Kind::End,
            action: self.action.clone(),
            plugin: self.plugin.clone(),
            call_id: self.call_id.clone(),
            ..AuditEntry::new(&self.trace_id, &self.tool, outcome)
        }
    }

    /// The record's fields as written: each kind without the fields that belong to the other.
    fn fields(&self) -> Result<Map<String, Value>> {
        let Value::Object(mut map) =
            serde_json::to_value(self).context("cannot encode an audit entry")?
        else {
            bail!("an audit entry did not encode as a JSON object");
        };
        let drop: &[&str] = match self.kind {
            Kind::Begin => &["outcome", "error", "events", "duration_ms", "artifacts"],
            Kind::End => &["args", "plugin_sha256"],
            Kind::Call => &[],
        };
        for key in drop {
            map.remove(*key);
        }
        if self.call_id.is_none() {
            map.remove("call_id");
        }
        Ok(map)
    }
}

/// One line of `audit.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When it was written, RFC 3339 UTC.
    pub time: String,
    /// Begin, end or call (`call` for records that predate the field).
    #[serde(default)]
    pub kind: Kind,
    /// Pairs a begin with its end.
    pub call_id: Option<String>,
    /// The call's trace id.
    pub trace_id: String,
    /// The tool called.
    pub tool: String,
    /// The tool's action.
    pub action: Option<String>,
    /// The plugin that ran it.
    pub plugin: Option<String>,
    /// The sha256 of that plugin's wasm.
    pub plugin_sha256: Option<String>,
    /// The redacted arguments (begin and call records).
    #[serde(default)]
    pub args: Value,
    /// Capability uses (end and call records).
    #[serde(default)]
    pub events: Vec<Value>,
    /// How the call ended (end and call records).
    pub outcome: Option<String>,
    /// The error message.
    pub error: Option<String>,
    /// How long the call took (end and call records).
    pub duration_ms: Option<u64>,
    /// Artifact URIs.
    #[serde(default)]
    pub artifacts: Vec<String>,
    /// Hash of the previous record ([`GENESIS`] for the first).
    pub prev: String,
    /// sha256 of `prev` and this record's canonical JSON without `hash`.
    pub hash: String,
}

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

/// JSON with object keys sorted (by bytes) at every depth and no whitespace.
///
/// Written out by hand because `serde_json::Map` keeps insertion order when any crate in the
/// build enables `preserve_order`, and the hash must not depend on the build.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => push_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_string(k, out);
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
    }
}

fn push_json_string(s: &str, out: &mut String) {
    // Serialising a &str cannot fail; the fallback keeps this total without a panic.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string()));
}

/// The chain hash of a record object (its `hash` key, if any, is ignored).
pub fn record_hash(record: &Value) -> String {
    let prev = record.get("prev").and_then(Value::as_str).unwrap_or("");
    let canonical = match record {
        Value::Object(map) if map.contains_key("hash") => {
            let mut map = map.clone();
            map.remove("hash");
            canonical_json(&Value::Object(map))
        }
        other => canonical_json(other),
    };
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(canonical.as_bytes());
    hex::encode(hasher.finalize())
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

struct Tail {
    next_seq: u64,
    prev: String,
    len: u64,
}

struct Torn {
    bytes: u64,
    sha256: String,
    moved_to: PathBuf,
}

/// The seq and hash of a line, if it is a chain record.
fn chain_fields(line: &[u8]) -> Option<(u64, String)> {
    let v: Value = serde_json::from_slice(line).ok()?;
    let seq = v.get("seq")?.as_u64()?;
    let hash = v.get("hash")?.as_str()?;
    (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then(|| (seq, hash.into()))
}

/// Finds the end of the chain. A last line that lacks its newline, or that ends in a newline
/// but is not a record, is torn: its bytes are moved to `<log>.torn-<unix time>` and the file
/// is cut back to the last complete record.
fn recover_tail(file: &mut File, path: &Path) -> Result<(Tail, Option<Torn>)> {
    let len = file.metadata()?.len();
    let damaged = |what: &str| {
        anyhow::anyhow!(
            "audit log {} is damaged: {what}; run `infra audit verify` to see where, then move the \
             file aside to start a new chain",
            path.display()
        )
    };
    let mut keep = rfind_byte(file, len, b'\n')?.map_or(0, |p| p + 1);
    let mut last = None;
    if keep > 0 {
        let start = rfind_byte(file, keep - 1, b'\n')?.map_or(0, |p| p + 1);
        let line = read_range(file, start, keep - 1)?;
        match chain_fields(&line) {
            Some(fields) => last = Some(fields),
            // A torn write is a prefix of a JSON line, never whole JSON: a JSON line that is
            // not a record was put there, which is for `verify` to report, not for us to hide.
            None if serde_json::from_slice::<Value>(&line).is_ok() => {
                return Err(damaged("its last line is JSON but not an audit record"));
            }
            None if keep == len => {
                // No unterminated tail, but the final line is not a record: the torn write
                // happened to end in a newline. That line is the torn part.
                keep = start;
                if keep > 0 {
                    let start = rfind_byte(file, keep - 1, b'\n')?.map_or(0, |p| p + 1);
                    let line = read_range(file, start, keep - 1)?;
                    last = Some(
                        chain_fields(&line)
                            .ok_or_else(|| damaged("its last two lines are not audit records"))?,
                    );
                }
            }
            None => {
                return Err(damaged(
                    "the line before its torn end is not an audit record",
                ));
            }
        }
    }
    let torn = if keep < len {
        let bytes = read_range(file, keep, len)?;
        let moved_to = write_torn_file(path, &bytes)?;
        file.set_len(keep).with_context(|| {
            format!(
                "cannot cut the torn end off audit log {}; check it is writable",
                path.display()
            )
        })?;
        file.sync_all()?;
        Some(Torn {
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
            moved_to,
        })
    } else {
        None
    };
    let (next_seq, prev) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_string()),
    };
    Ok((
        Tail {
            next_seq,
            prev,
            len: keep,
        },
        torn,
    ))
}

fn write_torn_file(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let unix = OffsetDateTime::now_utc().unix_timestamp();
    let base = format!("{}.torn-{unix}", path.display());
    for n in 0..1000 {
        let candidate = PathBuf::from(if n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&candidate) {
            Ok(mut f) => {
                f.write_all(bytes)?;
                f.sync_all()?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot save the torn end of the audit log to {}; check the directory is writable",
                        candidate.display()
                    )
                });
            }
        }
    }
    bail!(
        "cannot find a free name for the torn end of audit log {}; remove old {base}-* files",
        path.display()
    )
}

/// Position of the last `byte` in `file[..end]`.
fn rfind_byte(file: &mut File, end: u64, byte: u8) -> Result<Option<u64>> {
    const CHUNK: u64 = 64 * 1024;
    let mut hi = end;
    let mut buf = vec![0u8; CHUNK as usize];
    while hi > 0 {
        let lo = hi.saturating_sub(CHUNK);
        let n = (hi - lo) as usize;
        file.seek(SeekFrom::Start(lo))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == byte) {
            return Ok(Some(lo + i as u64));
        }
        hi = lo;
    }
    Ok(None)
}

fn read_range(file: &mut File, start: u64, end: u64) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; (end - start) as usize];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut buf)?;
    Ok(buf)
}

/// The result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The log verified.
    pub path: PathBuf,
    /// Complete lines in the log (a torn last line not counted).
    pub records: u64,
    /// The chain is intact: no record was edited, deleted, inserted or reordered.
    pub ok: bool,
    /// The first place the chain breaks.
    pub first_broken: Option<Broken>,
    /// A torn last line: an interrupted write, not tampering.
    pub torn_tail: Option<TornTail>,
    /// Calls with a begin record and no end record, oldest first: still running, or their
    /// server was killed. Not tampering, and not counted against `ok`.
    pub unended: Vec<Unended>,
}

/// A call that began and has no end record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unended {
    /// The call's trace id.
    pub trace_id: String,
    /// The pairing id its end record would carry.
    pub call_id: String,
    /// The tool called.
    pub tool: String,
    /// The tool's action.
    pub action: Option<String>,
    /// The begin record's seq.
    pub seq: Option<u64>,
    /// Its 1-based line.
    pub line: u64,
    /// When it began.
    pub time: String,
}

/// Unended calls a report names one by one; the rest are counted.
const UNENDED_SHOWN: usize = 10;

/// Where and how the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broken {
    /// 1-based line number.
    pub line: u64,
    /// The record's `seq`, when it has one.
    pub seq: Option<u64>,
    /// What is wrong.
    pub reason: BrokenReason,
}

/// Why a record does not fit the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BrokenReason {
    /// The line is not JSON.
    NotJson,
    /// The line is JSON but lacks a chain field.
    NotARecord {
        /// The missing or malformed field.
        field: String,
    },
    /// Its hash does not match its content: it was edited.
    Edited,
    /// Records between the previous one and this were removed.
    Deleted {
        /// First missing seq.
        from: u64,
        /// Last missing seq.
        to: u64,
    },
    /// This record came early: the one expected here is further down.
    Reordered {
        /// The seq expected here.
        expected: u64,
        /// The line that holds it.
        found_at_line: u64,
    },
    /// The seq repeats or goes back: a record was copied or inserted.
    SeqBackwards {
        /// The seq expected here.
        expected: u64,
    },
    /// The seq is right but `prev` is not the previous record's hash: a record before it was
    /// inserted or replaced with a recomputed hash.
    NotChained,
    /// `prev` chains but the seq is wrong: the seq was changed and the hash recomputed.
    SeqChanged {
        /// The seq expected here.
        expected: u64,
    },
}

/// A torn last line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TornTail {
    /// 1-based line number.
    pub line: u64,
    /// Its length in bytes.
    pub bytes: u64,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.first_broken {
            None => write!(
                f,
                "audit log {path}: {} records, chain intact",
                self.records
            )?,
            Some(b) => {
                let rec = match b.seq {
                    Some(seq) => format!("record {seq} (line {})", b.line),
                    None => format!("line {}", b.line),
                };
                let what = match &b.reason {
                    BrokenReason::NotJson => {
                        format!("{rec} is not JSON — the log was altered or damaged")
                    }
                    BrokenReason::NotARecord { field } => format!(
                        "{rec} is not an audit record (no valid '{field}') — the log was altered"
                    ),
                    BrokenReason::Edited => format!(
                        "{rec} was edited: its hash does not match its content — the log was altered after it was written"
                    ),
                    BrokenReason::Deleted { from, to } if from == to => format!(
                        "{rec} does not follow the record before it: record {from} is missing — it was deleted from the log"
                    ),
                    BrokenReason::Deleted { from, to } => format!(
                        "{rec} does not follow the record before it: records {from} to {to} are missing — they were deleted from the log"
                    ),
                    BrokenReason::Reordered {
                        expected,
                        found_at_line,
                    } => format!(
                        "{rec} stands where record {expected} belongs (that record is at line {found_at_line}) — records were reordered"
                    ),
                    BrokenReason::SeqBackwards { expected } => format!(
                        "{rec} repeats or goes back in sequence (record {expected} belongs here) — a record was copied or inserted"
                    ),
                    BrokenReason::NotChained => format!(
                        "{rec} does not chain to the record before it: its prev is not that record's hash — a record was inserted or replaced before it"
                    ),
                    BrokenReason::SeqChanged { expected } => format!(
                        "{rec} should be record {expected}: its seq was changed and its hash recomputed — the log was altered"
                    ),
                };
                write!(
                    f,
                    "audit log {path}: {what}; the {} lines before it verify — compare the log with a backup",
                    b.line - 1
                )?;
            }
        }
        if let Some(t) = &self.torn_tail {
            write!(
                f,
                "; its last line (line {}, {} bytes) is torn — a write was interrupted (crash or full disk), \
                 which is not tampering; infra moves it aside the next time it opens the log",
                t.line, t.bytes
            )?;
        }
        if !self.unended.is_empty() {
            let n = self.unended.len();
            let calls = if n == 1 { "call" } else { "calls" };
            write!(
                f,
                "; {n} {calls} began and never ended — infra was killed during them, or they are \
                 still running (this is not tampering; their effects may have happened without \
                 a record of how they ended): "
            )?;
            for (i, u) in self.unended.iter().take(UNENDED_SHOWN).enumerate() {
                let what = match &u.action {
                    Some(a) => format!("{} {a}", u.tool),
                    None => u.tool.clone(),
                };
                let at = match u.seq {
                    Some(seq) => format!("record {seq}"),
                    None => format!("line {}", u.line),
                };
                let sep = if i == 0 { "" } else { ", " };
                write!(
                    f,
                    "{sep}trace {} ({what}, {at}, began {})",
                    u.trace_id, u.time
                )?;
            }
            if n > UNENDED_SHOWN {
                write!(f, " and {} more", n - UNENDED_SHOWN)?;
            }
        }
        Ok(())
    }
}

/// Reads the complete lines of a log, calling `each(line_number, bytes)`; returns the torn
/// unterminated last line, if any, as (line number, length).
fn for_each_line(path: &Path, mut each: impl FnMut(u64, &[u8])) -> Result<Option<(u64, u64)>> {
    let file = File::open(path).with_context(|| {
        format!(
            "cannot read audit log {}; it is created by the first tool call — check INFRA_HOME points at the right state directory",
            path.display()
        )
    })?;
    // Records are appended whole under an exclusive lock, so the length read under a shared
    // lock ends on a record boundary even while another process appends.
    file.lock_shared()
        .with_context(|| format!("cannot lock audit log {}", path.display()))?;
    let len = file.metadata()?.len();
    let _ = file.unlock();
    let mut reader = BufReader::new(file.take(len));
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        line_no += 1;
        if buf.last() != Some(&b'\n') {
            return Ok(Some((line_no, n as u64)));
        }
        buf.pop();
        each(line_no, &buf);
    }
}

/// Walks the chain of the log at `path` and reports the first break and any torn tail.
pub fn verify(path: impl AsRef<Path>) -> Result<VerifyReport> {
    let path = path.as_ref();
    let mut records = 0u64;
    let mut expected_seq = 1u64;
    let mut expected_prev = GENESIS.to_string();
    let mut first_broken: Option<Broken> = None;
    // A seq that jumped ahead is a deletion unless the missing record turns up later.
    let mut looking_for: Option<u64> = None;
    let mut last_line_bad: Option<(u64, u64)> = None;
    let mut open = Pairing::default();
    let torn = for_each_line(path, |line_no, bytes| {
        records += 1;
        last_line_bad = None;
        let parsed: Option<Value> = serde_json::from_slice(bytes).ok();
        if let Some(v) = &parsed {
            open.see(line_no, v);
        }
        if let (Some(want), Some(v)) = (looking_for, &parsed)
            && v.get("seq").and_then(Value::as_u64) == Some(want)
            && let Some(b) = first_broken.as_mut()
        {
            b.reason = BrokenReason::Reordered {
                expected: want,
                found_at_line: line_no,
            };
            looking_for = None;
        }
        let Some(v) = parsed else {
            last_line_bad = Some((line_no, bytes.len() as u64 + 1));
            if first_broken.is_none() {
                first_broken = Some(Broken {
                    line: line_no,
                    seq: None,
                    reason: BrokenReason::NotJson,
                });
            }
            return;
        };
        if first_broken.is_some() {
            return;
        }
        let seq = v.get("seq").and_then(Value::as_u64);
        let broken = |reason| Broken {
            line: line_no,
            seq,
            reason,
        };
        let field = |name: &str| {
            v.get(name)
                .and_then(Value::as_str)
                .filter(|h| h.len() == 64)
        };
        let (Some(seq_n), Some(prev), Some(hash)) = (seq, field("prev"), field("hash")) else {
            let missing = match (seq, field("prev")) {
                (None, _) => "seq",
                (_, None) => "prev",
                _ => "hash",
            };
            first_broken = Some(broken(BrokenReason::NotARecord {
                field: missing.into(),
            }));
            return;
        };
        let reason = if record_hash(&v) != hash {
            Some(BrokenReason::Edited)
        } else if prev != expected_prev {
            Some(if seq_n > expected_seq {
                looking_for = Some(expected_seq);
                BrokenReason::Deleted {
                    from: expected_seq,
                    to: seq_n - 1,
                }
            } else if seq_n < expected_seq {
                BrokenReason::SeqBackwards {
                    expected: expected_seq,
                }
            } else {
                BrokenReason::NotChained
            })
        } else if seq_n != expected_seq {
            Some(BrokenReason::SeqChanged {
                expected: expected_seq,
            })
        } else {
            None
        };
        match reason {
            Some(reason) => first_broken = Some(broken(reason)),
            None => {
                expected_seq = seq_n + 1;
                expected_prev = hash.to_string();
            }
        }
    })?;
    let mut torn_tail = torn.map(|(line, bytes)| TornTail { line, bytes });
    // A terminated but unparseable last line is a torn write that happened to end in a
    // newline, not tampering in the middle of the log.
    if torn_tail.is_none()
        && let Some((line, bytes)) = last_line_bad
    {
        if first_broken.as_ref().is_some_and(|b| b.line == line) {
            first_broken = None;
        }
        records -= 1;
        torn_tail = Some(TornTail { line, bytes });
    }
    let unended = open
        .into_unended()
        .map(|(line, begin)| {
            let s = |k: &str| begin.get(k).and_then(Value::as_str).map(str::to_string);
            Unended {
                trace_id: s("trace_id").unwrap_or_default(),
                call_id: s("call_id").unwrap_or_default(),
                tool: s("tool").unwrap_or_default(),
                action: s("action"),
                seq: begin.get("seq").and_then(Value::as_u64),
                line,
                time: s("time").unwrap_or_default(),
            }
        })
        .collect();
    Ok(VerifyReport {
        path: path.to_path_buf(),
        records,
        ok: first_broken.is_none(),
        first_broken,
        torn_tail,
        unended,
    })
}

/// Pairs begin records with their ends while the log is read, in order.
#[derive(Default)]
struct Pairing {
    /// Begins waiting for their end, by call id: (line, record).
    open: HashMap<String, (u64, Value)>,
}

impl Pairing {
    /// Takes in one record; returns the begin that `v` ends, or `v` itself when it is not
    /// part of a pair (a `call` record, an end whose begin is not in the log).
    fn see(&mut self, line: u64, v: &Value) -> Option<Paired> {
        let kind = v.get("kind").and_then(Value::as_str);
        let id = v.get("call_id").and_then(Value::as_str);
        match (kind, id) {
            (Some("begin"), Some(id)) => {
                self.open.insert(id.to_string(), (line, v.clone()));
                None
            }
            (Some("end"), Some(id)) => Some(match self.open.remove(id) {
                Some((_, begin)) => Paired::Ended(begin),
                None => Paired::Alone,
            }),
            _ => Some(Paired::Alone),
        }
    }

    /// The begins left without an end, oldest first: (line, record).
    fn into_unended(self) -> impl Iterator<Item = (u64, Value)> {
        let mut rest: Vec<(u64, Value)> = self.open.into_values().collect();
        rest.sort_by_key(|(line, _)| *line);
        rest.into_iter()
    }
}

/// What a record completes, as [`Pairing::see`] tells it.
enum Paired {
    /// This end record closes that begin record.
    Ended(Value),
    /// The record stands for itself.
    Alone,
}

/// The one entry [`list`] shows for a call: its begin with the end's fields added (`seq` and
/// `time` are the begin's; `end_seq` and `end_time` the end's), or a begin alone with
/// `outcome: "unended"`. Chain fields are left out: they belong to records, not to calls.
fn call_view(begin: Value, end: Option<&Value>) -> Value {
    let Value::Object(mut view) = begin else {
        return begin;
    };
    for key in ["prev", "hash", "kind"] {
        view.remove(key);
    }
    match end {
        Some(end) => {
            for key in ["outcome", "error", "events", "duration_ms", "artifacts"] {
                if let Some(v) = end.get(key) {
                    view.insert(key.into(), v.clone());
                }
            }
            view.insert(
                "end_seq".into(),
                end.get("seq").cloned().unwrap_or(Value::Null),
            );
            view.insert(
                "end_time".into(),
                end.get("time").cloned().unwrap_or(Value::Null),
            );
        }
        None => {
            view.insert("outcome".into(), json!(Outcome::Unended.as_str()));
        }
    }
    Value::Object(view)
}

/// Walks the log one call at a time (see [`call_view`]), calling `each(seq, entry)` with the
/// seq that orders it (the begin's); ended calls come when their end is read, unended ones
/// at the end. Lines that are not JSON are skipped; [`verify`] is the tool that reports them.
fn for_each_call(path: &Path, mut each: impl FnMut(u64, Value)) -> Result<()> {
    let mut pairing = Pairing::default();
    let seq_of = |v: &Value| v.get("seq").and_then(Value::as_u64).unwrap_or(0);
    for_each_line(path, |line, bytes| {
        let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
            return;
        };
        match pairing.see(line, &v) {
            None => {}
            Some(Paired::Ended(begin)) => each(seq_of(&begin), call_view(begin, Some(&v))),
            Some(Paired::Alone) => each(seq_of(&v), v),
        }
    })?;
    for (_, begin) in pairing.into_unended() {
        each(seq_of(&begin), call_view(begin, None));
    }
    Ok(())
}

/// Which records [`list`] returns; every field that is set must match. Fields are strings as
/// an agent sends them; [`list`] refuses ones it cannot use, saying how to write them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this trace id.
    pub trace_id: Option<String>,
    /// Only this tool.
    pub tool: Option<String>,
    /// Only this outcome: `ok`, `error`, `denied` or `timeout`.
    pub outcome: Option<String>,
    /// Only records at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Only records before this RFC 3339 time.
    pub until: Option<String>,
}

/// A [`Filter`] with its fields checked and parsed.
struct Matcher<'a> {
    trace_id: Option<&'a str>,
    tool: Option<&'a str>,
    outcome: Option<Outcome>,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
}

impl Filter {
    fn matcher(&self) -> Result<Matcher<'_>> {
        let time = |field: &str, value: &Option<String>| -> Result<Option<OffsetDateTime>> {
            value
                .as_deref()
                .map(|t| {
                    OffsetDateTime::parse(t, &Rfc3339).map_err(|_| {
                        anyhow::anyhow!(
                            "{field} '{t}' is not an RFC 3339 time; write it like 2025-01-31T09:00:00Z"
                        )
                    })
                })
                .transpose()
        };
        let outcome = self
            .outcome
            .as_deref()
            .map(Outcome::from_str)
            .transpose()
            .map_err(|e| anyhow::anyhow!("outcome {e}"))?;
        Ok(Matcher {
            trace_id: self.trace_id.as_deref(),
            tool: self.tool.as_deref(),
            outcome,
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
        })
    }
}

impl Matcher<'_> {
    fn matches(&self, v: &Value) -> bool {
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        if self.trace_id.is_some_and(|t| s("trace_id") != Some(t))
            || self.tool.is_some_and(|t| s("tool") != Some(t))
            || self
                .outcome
                .is_some_and(|o| s("outcome") != Some(o.as_str()))
        {
            return false;
        }
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let Some(time) = s("time").and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()) else {
            return false;
        };
        self.since.is_none_or(|since| time >= since) && self.until.is_none_or(|until| time < until)
    }
}

/// Calls matching `filter`, one entry per call (see [`call_view`]), newest first by when
/// they began, at most `limit`.
pub fn list(path: impl AsRef<Path>, filter: &Filter, limit: usize) -> Result<Vec<Value>> {
    let matcher = filter.matcher()?;
    if limit == 0 {
        return Ok(Vec::new());
    }
    // Calls complete out of order; keeping the `limit` latest-begun bounds the memory.
    let mut found: BTreeMap<u64, Value> = BTreeMap::new();
    for_each_call(path.as_ref(), |seq, v| {
        if matcher.matches(&v) {
            found.insert(seq, v);
            if found.len() > limit {
                found.pop_first();
            }
        }
    })?;
    Ok(found.into_values().rev().collect())
}

/// The last `n` records, oldest first, as `tail` shows lines.
pub fn tail(path: impl AsRef<Path>, n: usize) -> Result<Vec<Value>> {
    let mut newest_first = list(path, &Filter::default(), n)?;
    newest_first.reverse();
    Ok(newest_first)
}

/// Counts of calls by tool and by outcome (`unended` included), denied capability events,
/// total, first and last time.
pub fn stats(path: impl AsRef<Path>) -> Result<Value> {
    let mut total = 0u64;
    let mut by_tool: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_outcome: BTreeMap<String, u64> = BTreeMap::new();
    let mut denied_events = 0u64;
    let mut first_time: Option<(OffsetDateTime, String)> = None;
    let mut last_time: Option<(OffsetDateTime, String)> = None;
    for_each_call(path.as_ref(), |_, v| {
        total += 1;
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
        *by_tool.entry(s("tool")).or_default() += 1;
        *by_outcome.entry(s("outcome")).or_default() += 1;
        denied_events += v.get("events").and_then(Value::as_array).map_or(0, |evs| {
            evs.iter()
                .filter(|e| e.get("decision").and_then(Value::as_str) == Some("deny"))
                .count() as u64
        });
        for key in ["time", "end_time"] {
            let Some(text) = v.get(key).and_then(Value::as_str) else {
                continue;
            };
            let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) else {
                continue;
            };
            if first_time.as_ref().is_none_or(|(f, _)| t < *f) {
                first_time = Some((t, text.to_string()));
            }
            if last_time.as_ref().is_none_or(|(l, _)| t > *l) {
                last_time = Some((t, text.to_string()));
            }
        }
    })?;
    Ok(json!({
        "total": total,
        "by_tool": by_tool,
        "by_outcome": by_outcome,
        "denied_events": denied_events,
        "first_time": first_time.map(|(_, t)| t),
        "last_time": last_time.map(|(_, t)| t),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A temporary directory removed on drop.
    struct TempDir(tempfile::TempDir);

    impl TempDir {
        fn new(_tag: &str) -> TempDir {
            TempDir(tempfile::tempdir().unwrap())
        }

        fn log(&self) -> PathBuf {
            self.0.path().join("audit.jsonl")
        }
    }

    fn entry(i: u64) -> AuditEntry {
        let mut e = AuditEntry::new(&format!("trace-{}", i % 3), "http", Outcome::Ok);
        e.action = Some("request".into());
        e.plugin = Some("http".into());
        e.plugin_sha256 = Some("ab".repeat(32));
        e.args = json!({"url": format!("https://example.com/{i}"), "n": i, "nested": {"z": 1, "a": [1, 2.5, null]}});
        let decision = if i.is_multiple_of(4) { "deny" } else { "allow" };
        e.events = vec![json!({
            "cap": "http",
            "target": "example.com:443",
            "decision": decision,
            "duration_ms": 3,
            "detail": "200",
        })];
        e.duration_ms = i;
        e
    }

    fn rfc3339(t: OffsetDateTime) -> String {
        t.format(&Rfc3339).unwrap()
    }

    fn write_chain(path: &Path, n: u64) {
        let log = AuditLog::open(path, Redactor::new()).unwrap();
        for i in 1..=n {
            log.append(entry(i)).unwrap();
        }
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn write_lines(path: &Path, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(path, text).unwrap();
    }

    fn broken(path: &Path) -> Broken {
        let r = verify(path).unwrap();
        assert!(!r.ok, "tampering must be detected: {r}");
        assert!(r.torn_tail.is_none(), "tampering is not a torn tail: {r}");
        r.first_broken.unwrap()
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_without_whitespace() {
        let mut inner = serde_json::Map::new();
        inner.insert("b".into(), json!(1));
        inner.insert("a".into(), json!("x\"y\n"));
        let mut outer = serde_json::Map::new();
        outer.insert(
            "z".into(),
            json!([Value::Object(inner), null, true, -1, 2.5]),
        );
        outer.insert("é".into(), json!({}));
        outer.insert("A".into(), json!([]));
        let text = canonical_json(&Value::Object(outer));
        assert_eq!(
            text,
            r#"{"A":[],"z":[{"a":"x\"y\n","b":1},null,true,-1,2.5],"é":{}}"#
        );
        // Parsing back and canonicalising again is stable, whatever order the map keeps.
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(canonical_json(&back), text);
    }

    #[test]
    fn a_chain_of_appends_verifies() {
        let dir = TempDir::new("chain");
        let path = dir.log();
        let log = AuditLog::open(&path, Redactor::new()).unwrap();
        let first = log.append(entry(1)).unwrap();
        assert_eq!(first.seq, 1);
        assert_eq!(first.prev, GENESIS);
        let second = log.append(entry(2)).unwrap();
        assert_eq!(second.seq, 2);
        assert_eq!(second.prev, first.hash);
        for i in 3..=20 {
            log.append(entry(i)).unwrap();
        }
        let r = verify(&path).unwrap();
        assert!(
            r.ok && r.first_broken.is_none() && r.torn_tail.is_none(),
            "{r}"
        );
        assert_eq!(r.records, 20);
        assert!(r.to_string().contains("20 records, chain intact"), "{r}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o077,
                0,
                "the audit log must be private, is {mode:o}"
            );
        }
        // Every line is canonical JSON, hashes recompute, times parse.
        for line in lines(&path) {
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(canonical_json(&v), line);
            assert_eq!(record_hash(&v), v["hash"]);
            OffsetDateTime::parse(v["time"].as_str().unwrap(), &Rfc3339).unwrap();
        }
        // Reopening continues the chain.
        drop(log);
        let log = AuditLog::open(&path, Redactor::new()).unwrap();
        assert_eq!(log.append(entry(21)).unwrap().seq, 21);
        assert!(verify(&path).unwrap().ok);
    }

    #[test]
    fn editing_a_field_is_detected_at_that_record() {
        let dir = TempDir::new("edit");
        let path = dir.log();
        write_chain(&path, 10);
        let mut ls = lines(&path);
        ls[6] = ls[6].replace("\"outcome\":\"ok\"", "\"outcome\":\"error\"");
        write_lines(&path, &ls);
        let b = broken(&path);
        assert_eq!(
            (b.line, b.seq, &b.reason),
            (7, Some(7), &BrokenReason::Edited)
        );
        let text = verify(&path).unwrap().to_string();
        assert!(
            text.contains("record 7 (line 7) was edited: its hash does not match its content — the log was altered after it was written"),
            "{text}"
        );
    }

    #[test]
    fn editing_with_a_recomputed_hash_is_detected_at_the_next_record() {
        let dir = TempDir::new("rehash");
        let path = dir.log();
        write_chain(&path, 6);
        let mut ls = lines(&path);
        let mut v: Value = serde_json::from_str(&ls[2]).unwrap();
        v["tool"] = json!("innocent");
        v["hash"] = json!(record_hash(&v));
        ls[2] = canonical_json(&v);
        write_lines(&path, &ls);
        let b = broken(&path);
        assert_eq!(
            (b.line, b.seq, &b.reason),
            (4, Some(4), &BrokenReason::NotChained)
        );
    }

    #[test]
    fn deleting_a_record_is_detected() {
        let dir = TempDir::new("delete");
        let path = dir.log();
        write_chain(&path, 10);
        let mut ls = lines(&path);
        ls.remove(4); // record 5
        write_lines(&path, &ls);
        let b = broken(&path);
        assert_eq!(b.line, 5);
        assert_eq!(b.seq, Some(6));
        assert_eq!(b.reason, BrokenReason::Deleted { from: 5, to: 5 });
        let text = verify(&path).unwrap().to_string();
        assert!(
            text.contains("record 5 is missing — it was deleted"),
            "{text}"
        );
        assert_eq!(verify(&path).unwrap().records, 9);

        // Deleting the first record is caught too: the new first line does not start the chain.
        let mut ls = lines(&path);
        ls.remove(0);
        write_lines(&path, &ls);
        let b = broken(&path);
        assert_eq!((b.line, b.seq), (1, Some(2)));
        assert_eq!(b.reason, BrokenReason::Deleted { from: 1, to: 1 });
    }

    #[test]
    fn reordering_two_records_is_detected() {
        let dir = TempDir::new("reorder");
        let path = dir.log();
        write_chain(&path, 10);
        let mut ls = lines(&path);
        ls.swap(3, 4); // records 4 and 5
        write_lines(&path, &ls);
        let b = broken(&path);
        assert_eq!((b.line, b.seq), (4, Some(5)));
        assert_eq!(
            b.reason,
            BrokenReason::Reordered {
                expected: 4,
                found_at_line: 5
            }
        );
        let text = verify(&path).unwrap().to_string();
        assert!(text.contains("record 5 (line 4) stands where record 4 belongs (that record is at line 5) — records were reordered"), "{text}");
    }

    #[test]
    fn a_forged_line_with_a_recomputed_hash_is_detected() {
        let dir = TempDir::new("forge");
        let path = dir.log();
        write_chain(&path, 8);
        let ls = lines(&path);
        let template: Value = serde_json::from_str(&ls[3]).unwrap();

        // Forged with a self-consistent hash but a made-up prev: named at the forged line.
        let mut forged = template.clone();
        forged["seq"] = json!(5);
        forged["tool"] = json!("ssh");
        forged["prev"] = json!("11".repeat(32));
        forged["hash"] = json!(record_hash(&forged));
        let mut tampered = ls.clone();
        tampered.insert(4, canonical_json(&forged));
        write_lines(&path, &tampered);
        let b = broken(&path);
        assert_eq!(
            (b.line, b.seq, &b.reason),
            (5, Some(5), &BrokenReason::NotChained)
        );

        // Forged with the right prev too: the real record after it no longer chains.
        let mut forged = template;
        forged["seq"] = json!(5);
        forged["tool"] = json!("ssh");
        forged["prev"] = serde_json::from_str::<Value>(&ls[3]).unwrap()["hash"].clone();
        forged["hash"] = json!(record_hash(&forged));
        let mut tampered = ls.clone();
        tampered.insert(4, canonical_json(&forged));
        write_lines(&path, &tampered);
        let b = broken(&path);
        assert_eq!(b.line, 6, "the line after the forgery");
        assert_eq!(b.reason, BrokenReason::SeqBackwards { expected: 6 });

        // Garbage and non-records in the middle are named, not skipped.
        let mut tampered = ls.clone();
        tampered.insert(2, "{not json".into());
        write_lines(&path, &tampered);
        assert_eq!(
            (broken(&path).line, broken(&path).reason),
            (3, BrokenReason::NotJson)
        );
        let mut tampered = ls;
        tampered.insert(2, r#"{"seq":3,"note":"hi"}"#.into());
        write_lines(&path, &tampered);
        let b = broken(&path);
        assert_eq!(b.line, 3);
        assert!(matches!(b.reason, BrokenReason::NotARecord { .. }), "{b:?}");
    }

    #[test]
    fn a_torn_tail_is_reported_as_torn_not_as_tampering() {
        let dir = TempDir::new("torn");
        let path = dir.log();
        write_chain(&path, 5);
        let full = std::fs::read(&path).unwrap();
        // Cut the last record in the middle, as a crash during its write would.
        let cut = full.len() - 40;
        std::fs::write(&path, &full[..cut]).unwrap();
        let r = verify(&path).unwrap();
        assert!(r.ok, "{r}");
        assert!(r.first_broken.is_none());
        assert_eq!(r.records, 4);
        let torn = r.torn_tail.clone().unwrap();
        assert_eq!(torn.line, 5);
        let last_start = full[..full.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .unwrap()
            + 1;
        let last_len = (full.len() - last_start) as u64;
        assert_eq!(torn.bytes, last_len - 40);
        assert!(r.to_string().contains("(line 5, "), "{r}");
        assert!(
            r.to_string().contains("is torn — a write was interrupted"),
            "{r}"
        );

        // A torn write that happens to end in a newline is still torn, not tampering.
        let mut damaged = full[..cut].to_vec();
        damaged.push(b'\n');
        std::fs::write(&path, &damaged).unwrap();
        let r = verify(&path).unwrap();
        assert!(r.ok && r.first_broken.is_none(), "{r}");
        assert_eq!(r.torn_tail.map(|t| t.line), Some(5));
    }

    #[test]
    fn reopening_after_a_torn_tail_moves_it_aside_and_records_it() {
        let dir = TempDir::new("recover");
        let path = dir.log();
        write_chain(&path, 5);
        let full = std::fs::read(&path).unwrap();
        let cut = full.len() - 25;
        std::fs::write(&path, &full[..cut]).unwrap();
        let last_nl = full[..cut].iter().rposition(|&b| b == b'\n').unwrap() + 1;
        let torn_bytes = full[last_nl..cut].to_vec();

        let log = AuditLog::open(&path, Redactor::new()).unwrap();
        let r = verify(&path).unwrap();
        assert!(r.ok && r.torn_tail.is_none(), "{r}");
        assert_eq!(r.records, 5, "4 intact records and the recovery record");
        let recovery: Value = serde_json::from_str(&lines(&path)[4]).unwrap();
        assert_eq!(recovery["seq"], 5);
        assert_eq!(recovery["tool"], "audit");
        assert_eq!(recovery["outcome"], "error");
        let sha = hex::encode(Sha256::digest(&torn_bytes));
        let moved_to = recovery["args"]["moved_to"].as_str().unwrap().to_string();
        let error = recovery["error"].as_str().unwrap();
        assert!(
            error.contains(&format!("{} bytes", torn_bytes.len())),
            "{error}"
        );
        assert!(error.contains(&sha) && error.contains(&moved_to), "{error}");
        assert!(moved_to.contains("audit.jsonl.torn-"), "{moved_to}");
        assert_eq!(
            std::fs::read(&moved_to).unwrap(),
            torn_bytes,
            "the torn bytes are kept"
        );

        let next = log.append(entry(6)).unwrap();
        assert_eq!(next.seq, 6);
        assert_eq!(next.prev, recovery["hash"]);
        assert!(verify(&path).unwrap().ok);
    }

    #[test]
    fn reopening_after_a_newline_terminated_torn_line_recovers_it() {
        let dir = TempDir::new("recover-nl");
        let path = dir.log();
        write_chain(&path, 3);
        let mut text = std::fs::read(&path).unwrap();
        text.extend_from_slice(b"{\"seq\":4,\"tim\n");
        std::fs::write(&path, &text).unwrap();
        let _log = AuditLog::open(&path, Redactor::new()).unwrap();
        let r = verify(&path).unwrap();
        assert!(r.ok && r.torn_tail.is_none(), "{r}");
        assert_eq!(r.records, 4);
        assert_eq!(tail(&path, 1).unwrap()[0]["tool"], "audit");
    }

    #[test]
    fn a_log_damaged_before_its_end_is_refused_on_open() {
        let dir = TempDir::new("damaged");
        let path = dir.log();
        write_chain(&path, 3);
        let mut text = std::fs::read(&path).unwrap();
        text.extend_from_slice(b"garbage line\n{\"torn");
        std::fs::write(&path, &text).unwrap();
        let err = AuditLog::open(&path, Redactor::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is damaged") && err.contains("infra audit verify"),
            "{err}"
        );
        // A whole JSON line cannot come from a torn write, so it is not moved aside as one.
        let mut text = std::fs::read(&path).unwrap();
        text.truncate(text.len() - "garbage line\n{\"torn".len());
        text.extend_from_slice(b"{\"seq\":4}\n");
        std::fs::write(&path, &text).unwrap();
        let err = AuditLog::open(&path, Redactor::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("JSON but not an audit record"), "{err}");
        assert!(!verify(&path).unwrap().ok, "verify calls it tampering too");
    }

    #[test]
    fn concurrent_appends_form_one_valid_chain() {
        let dir = TempDir::new("threads");
        let path = dir.log();
        let log = Arc::new(AuditLog::open(&path, Redactor::new()).unwrap());
        // A second handle on the same file stands in for a second infra process.
        let other = Arc::new(AuditLog::open(&path, Redactor::new()).unwrap());
        let handles: Vec<_> = (0..6)
            .map(|t| {
                let log = if t % 2 == 0 {
                    log.clone()
                } else {
                    other.clone()
                };
                std::thread::spawn(move || {
                    for i in 0..25 {
                        log.append(entry(t * 100 + i)).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let r = verify(&path).unwrap();
        assert!(r.ok && r.torn_tail.is_none(), "{r}");
        assert_eq!(r.records, 150);
        let seqs: Vec<u64> = lines(&path)
            .iter()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(seqs, (1..=150).collect::<Vec<_>>());
    }

    #[test]
    fn a_shrunken_log_is_recorded_not_silently_continued() {
        let dir = TempDir::new("shrink");
        let path = dir.log();
        let log = AuditLog::open(&path, Redactor::new()).unwrap();
        for i in 1..=4 {
            log.append(entry(i)).unwrap();
        }
        let mut ls = lines(&path);
        ls.truncate(2);
        write_lines(&path, &ls);
        let rec = log.append(entry(5)).unwrap();
        assert_eq!(rec.seq, 4, "after the recovery record (seq 3)");
        let all = tail(&path, 10).unwrap();
        assert_eq!(all[2]["tool"], "audit");
        assert!(all[2]["error"].as_str().unwrap().contains("shrank"));
        assert!(verify(&path).unwrap().ok);
    }

    #[test]
    fn a_registered_secret_never_reaches_the_file() {
        let dir = TempDir::new("secret");
        let path = dir.log();
        let redactor = Redactor::new();
        let log = AuditLog::open(&path, redactor.clone()).unwrap();
        redactor.add("hunter2-prod-pass");
        let mut e = entry(1);
        e.args = json!({"cmd": "mysql -phunter2-prod-pass", "hunter2-prod-pass": 1, "password": "other"});
        e.error = Some("login failed for hunter2-prod-pass".into());
        e.events[0]["reason"] = json!("saw hunter2-prod-pass");
        e.events[0]["detail"] = json!({"echo": ["hunter2-prod-pass"]});
        e.trace_id = "trace-hunter2-prod-pass".into();
        let rec = log.append(e).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("hunter2-prod-pass"), "{text}");
        assert!(
            !text.contains("other"),
            "values under secret keys are hidden"
        );
        assert_eq!(rec.args["cmd"], "mysql -p[REDACTED]");
        assert!(
            verify(&path).unwrap().ok,
            "scrubbing happens before hashing"
        );
    }

    #[test]
    fn list_tail_and_stats_answer_queries() {
        let dir = TempDir::new("query");
        let path = dir.log();
        let log = AuditLog::open(&path, Redactor::new()).unwrap();
        let start = OffsetDateTime::now_utc() - time::Duration::seconds(1);
        for i in 1..=9 {
            let mut e = entry(i);
            if i.is_multiple_of(3) {
                e.tool = "ssh".into();
                e.outcome = Outcome::Denied.to_string();
            }
            log.append(e).unwrap();
        }
        let all = list(&path, &Filter::default(), 100).unwrap();
        assert_eq!(all.len(), 9);
        assert_eq!(all[0]["seq"], 9, "newest first");
        let two = list(&path, &Filter::default(), 2).unwrap();
        assert_eq!(
            two.iter()
                .map(|v| v["seq"].as_u64().unwrap())
                .collect::<Vec<_>>(),
            [9, 8]
        );
        let ssh = Filter {
            tool: Some("ssh".into()),
            ..Default::default()
        };
        assert_eq!(list(&path, &ssh, 100).unwrap().len(), 3);
        let denied = Filter {
            outcome: Some("denied".into()),
            trace_id: Some("trace-0".into()),
            ..Default::default()
        };
        let d = list(&path, &denied, 100).unwrap();
        assert_eq!(
            d.iter()
                .map(|v| v["seq"].as_u64().unwrap())
                .collect::<Vec<_>>(),
            [9, 6, 3]
        );
        let future = Filter {
            since: Some(rfc3339(
                OffsetDateTime::now_utc() + time::Duration::hours(1),
            )),
            ..Default::default()
        };
        assert!(list(&path, &future, 100).unwrap().is_empty());
        let window = Filter {
            since: Some(rfc3339(start)),
            until: Some(rfc3339(
                OffsetDateTime::now_utc() + time::Duration::seconds(1),
            )),
            ..Default::default()
        };
        assert_eq!(list(&path, &window, 100).unwrap().len(), 9);
        for (bad, says) in [
            (
                Filter {
                    since: Some("yesterday".into()),
                    ..Default::default()
                },
                "since 'yesterday' is not an RFC 3339 time",
            ),
            (
                Filter {
                    until: Some("2025-01-01".into()),
                    ..Default::default()
                },
                "until '2025-01-01' is not an RFC 3339 time",
            ),
            (
                Filter {
                    outcome: Some("failed".into()),
                    ..Default::default()
                },
                "use one of ok, error, denied, timeout",
            ),
        ] {
            let err = list(&path, &bad, 10).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
        assert!(list(&path, &Filter::default(), 0).unwrap().is_empty());

        let t = tail(&path, 3).unwrap();
        assert_eq!(
            t.iter()
                .map(|v| v["seq"].as_u64().unwrap())
                .collect::<Vec<_>>(),
            [7, 8, 9]
        );

        let s = stats(&path).unwrap();
        assert_eq!(s["total"], 9);
        assert_eq!(s["by_tool"]["http"], 6);
        assert_eq!(s["by_tool"]["ssh"], 3);
        assert_eq!(s["by_outcome"]["denied"], 3);
        assert_eq!(s["denied_events"], 2, "events of entries 4 and 8");
        assert_eq!(s["first_time"], all[8]["time"]);
        assert_eq!(s["last_time"], all[0]["time"]);
        assert!(
            "maybe"
                .parse::<Outcome>()
                .unwrap_err()
                .contains("ok, error, denied, timeout")
        );
    }

    /// A begin and its end, as the router writes them.
    fn call(log: &AuditLog, id: &str, trace: &str, outcome: Option<Outcome>) {
        let mut begin = AuditEntry::begin(id, trace, "http");
        begin.action = Some("request".into());
        begin.args = json!({"url": "https://example.com/"});
        let end = begin.end(outcome.unwrap_or(Outcome::Ok));
        log.append(begin).unwrap();
        if let Some(outcome) = outcome {
            let mut end = end;
            end.outcome = outcome.to_string();
            end.events = vec![json!({"cap": "http", "decision": "deny", "target": "x"})];
            end.duration_ms = 7;
            log.append(end).unwrap();
        }
    }

    #[test]
    fn begin_and_end_records_carry_their_own_fields_and_pair_by_call_id() {
        let dir = TempDir::new("pairs");
        let path = dir.log();
        let log = AuditLog::open(&path, Redactor::new()).unwrap();
        call(&log, "c-1", "same-trace", Some(Outcome::Ok));
        call(&log, "c-2", "same-trace", Some(Outcome::Denied));
        let ls: Vec<Value> = lines(&path)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(ls[0]["kind"], "begin");
        assert!(ls[0].get("outcome").is_none() && ls[0].get("events").is_none());
        assert_eq!(ls[0]["args"]["url"], "https://example.com/");
        assert_eq!(ls[1]["kind"], "end");
        assert!(
            ls[1].get("args").is_none(),
            "the args are in the begin only"
        );
        assert_eq!(ls[1]["call_id"], "c-1");

        // One entry per call, a reused trace id notwithstanding.
        let all = list(&path, &Filter::default(), 10).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0]["call_id"], "c-2", "newest first");
        assert_eq!(all[0]["outcome"], "denied");
        assert_eq!(all[0]["seq"], 3);
        assert_eq!(all[0]["end_seq"], 4);
        assert_eq!(all[1]["args"]["url"], "https://example.com/");
        assert_eq!(all[1]["events"][0]["cap"], "http");
        let s = stats(&path).unwrap();
        assert_eq!(s["total"], 2);
        assert_eq!(s["by_outcome"]["ok"], 1);
        assert_eq!(s["denied_events"], 2);
        let r = verify(&path).unwrap();
        assert!(r.ok && r.unended.is_empty(), "{r}");
    }

    #[test]
    fn a_begin_without_an_end_is_named_by_verify_list_and_stats_without_breaking_the_chain() {
        let dir = TempDir::new("unended");
        let path = dir.log();
        let log = AuditLog::open(&path, Redactor::new()).unwrap();
        call(&log, "c-1", "done", Some(Outcome::Ok));
        call(&log, "c-2", "killed-midway", None);
        call(&log, "c-3", "done-later", Some(Outcome::Error));
        let r = verify(&path).unwrap();
        assert!(r.ok && r.first_broken.is_none(), "{r}");
        assert_eq!(r.records, 5);
        assert_eq!(r.unended.len(), 1);
        assert_eq!(r.unended[0].trace_id, "killed-midway");
        assert_eq!(r.unended[0].seq, Some(3));
        let text = r.to_string();
        assert!(text.contains("chain intact"), "{text}");
        assert!(
            text.contains("1 call began and never ended")
                && text.contains("trace killed-midway (http request, record 3")
                && text.contains("not tampering"),
            "{text}"
        );
        let unended = Filter {
            outcome: Some("unended".into()),
            ..Default::default()
        };
        let found = list(&path, &unended, 10).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["trace_id"], "killed-midway");
        assert_eq!(stats(&path).unwrap()["by_outcome"]["unended"], 1);
    }

    #[test]
    fn concurrent_appenders_share_syncs() {
        let dir = TempDir::new("group");
        let path = dir.log();
        let log = Arc::new(AuditLog::open(&path, Redactor::new()).unwrap());
        let start = Arc::new(std::sync::Barrier::new(64));
        let handles: Vec<_> = (0..64)
            .map(|t| {
                let (log, start) = (log.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    for i in 0..4 {
                        let rec = log.append(entry(t * 10 + i)).unwrap();
                        // Durable on return: the record is in the file already.
                        assert!(
                            std::fs::read_to_string(log.path())
                                .unwrap()
                                .contains(&rec.hash)
                        );
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let r = verify(&path).unwrap();
        assert!(r.ok, "{r}");
        assert_eq!(r.records, 256);
        assert!(
            log.syncs() < 256,
            "64 appenders at once share syncs: {} syncs for 256 records",
            log.syncs()
        );
    }

    #[test]
    fn a_record_queued_by_submit_is_written_before_the_log_closes() {
        let dir = TempDir::new("submit");
        let path = dir.log();
        let log = AuditLog::open(&path, Redactor::new()).unwrap();
        log.submit(entry(1));
        drop(log);
        assert_eq!(verify(&path).unwrap().records, 1);
    }

    #[test]
    fn verifying_a_missing_log_says_where_it_looked() {
        let dir = TempDir::new("missing");
        let err = verify(dir.log()).unwrap_err().to_string();
        assert!(
            err.contains("audit.jsonl") && err.contains("INFRA_HOME"),
            "{err}"
        );
    }
}
