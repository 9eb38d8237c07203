//! Streaming an artifact in: batched, hashed on a blocking thread, published atomically (a temp
//! file linked into place with its sidecar only when complete).

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::AsyncWriteExt;

use super::id::new_id;
use super::{
    ArtifactError, ArtifactId, ArtifactInfo, ArtifactMeta, ArtifactStore, DEFAULT_MEDIA_TYPE,
    TEMP_PREFIX, extension_for,
};

impl ArtifactStore {
    /// Starts a streamed artifact; nothing is visible until [`ArtifactWriter::finish`].
    pub async fn writer(&self, mut meta: ArtifactMeta) -> anyhow::Result<ArtifactWriter> {
        // Refuse at once what could never fit, before the caller streams anything.
        self.make_room(0, false)?;
        if meta.media_type.is_empty() {
            meta.media_type = DEFAULT_MEDIA_TYPE.to_string();
        }
        if let Some(r) = &self.redactor {
            meta.description = r.scrub_str(&meta.description).into_owned();
            meta.trace_id = r.scrub_str(&meta.trace_id).into_owned();
        }
        let tmp = self
            .dir
            .join(format!("{TEMP_PREFIX}{:016x}", rand::random::<u64>()));
        let file = private_file(&tmp)
            .await
            .map_err(|e| self.io("cannot create a temp file for an artifact", e))?
            .into_std()
            .await;
        let (tx, worker) = spawn_sink(file);
        Ok(ArtifactWriter {
            store: self.clone(),
            tmp: Some(tmp),
            buf: Vec::new(),
            tx: Some(tx),
            worker: Some(worker),
            size: 0,
            meta,
        })
    }
}

/// Bytes gathered before they go to the file: streams arrive in small chunks (a row, a TLS
/// record), and one large write per batch keeps the hasher and the file system efficient.
const WRITE_BATCH: usize = 256 * 1024;
/// Batches queued for the sink before `write` waits (bounds the memory a fast source can use).
const QUEUED_BATCHES: usize = 4;

/// Bytes after which the sink asks the kernel to start writing them out, so the `sync_all` that
/// publishing needs finds little left to do on a large artifact.
const WRITEBACK_EVERY: u64 = 8 << 20;

/// Starts (does not wait for) writeback of a byte range; a hint, so failure is ignored.
#[cfg(target_os = "linux")]
fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd as _;
    // SAFETY: a plain syscall on a file descriptor this function borrows for its duration.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &std::fs::File, _: u64, _: u64) {}

/// The blocking side of a writer: writes and hashes each batch on its own thread, so a stream's
/// receiving and scrubbing overlap with its hashing and disk writes.
type Sink = tokio::task::JoinHandle<std::io::Result<(std::fs::File, Sha256)>>;

fn spawn_sink(mut file: std::fs::File) -> (tokio::sync::mpsc::Sender<Vec<u8>>, Sink) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(QUEUED_BATCHES);
    let sink = tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        let mut flushed = 0u64;
        while let Some(batch) = rx.blocking_recv() {
            file.write_all(&batch)?;
            hasher.update(&batch);
            written += batch.len() as u64;
            if written - flushed >= WRITEBACK_EVERY {
                start_writeback(&file, flushed, written - flushed);
                flushed = written;
            }
        }
        Ok((file, hasher))
    });
    (tx, sink)
}

/// A streamed artifact being written; dropping it before [`ArtifactWriter::finish`] discards it.
pub struct ArtifactWriter {
    store: ArtifactStore,
    tmp: Option<PathBuf>,
    buf: Vec<u8>,
    tx: Option<tokio::sync::mpsc::Sender<Vec<u8>>>,
    worker: Option<Sink>,
    size: u64,
    meta: ArtifactMeta,
}

impl fmt::Debug for ArtifactWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArtifactWriter")
            .field("tmp", &self.tmp)
            .field("size", &self.size)
            .finish()
    }
}

impl ArtifactWriter {
    /// Appends bytes (hashed as they pass).
    pub async fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
        if self.tx.is_none() {
            return Err(ArtifactError::Invalid(
                "this artifact writer failed earlier; start a new one".into(),
            )
            .into());
        }
        let limit = self.store.quota.artifact_bytes;
        if self.size.saturating_add(data.len() as u64) > limit {
            return Err(ArtifactError::Full(format!(
                "an artifact may hold at most {limit} bytes ([limits] artifact_bytes); nothing was \
                 stored — ask for less (a range, a filter, a smaller max_bytes) or have the \
                 operator raise the limit"
            ))
            .into());
        }
        self.size += data.len() as u64;
        if self.buf.is_empty() && data.len() >= WRITE_BATCH {
            return self.send(data.to_vec()).await;
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= WRITE_BATCH {
            let batch = std::mem::replace(&mut self.buf, Vec::with_capacity(WRITE_BATCH));
            return self.send(batch).await;
        }
        Ok(())
    }

    async fn send(&mut self, batch: Vec<u8>) -> anyhow::Result<()> {
        let Some(tx) = self.tx.as_ref() else {
            return Ok(());
        };
        if tx.send(batch).await.is_ok() {
            return Ok(());
        }
        // The sink stopped: it failed; its error says why.
        self.tx = None;
        match self.join_sink().await {
            Err(e) => Err(e),
            Ok(_) => Err(ArtifactError::Invalid("the artifact sink stopped early".into()).into()),
        }
    }

    async fn join_sink(&mut self) -> anyhow::Result<(std::fs::File, Sha256)> {
        let worker = self.worker.take().ok_or_else(|| {
            ArtifactError::Invalid("this artifact writer failed earlier; start a new one".into())
        })?;
        match worker.await {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(e)) => Err(self.store.io("cannot write an artifact", e).into()),
            Err(e) => {
                Err(ArtifactError::Invalid(format!("the artifact sink panicked: {e}")).into())
            }
        }
    }

    /// Bytes written so far, so callers can enforce their caps while streaming.
    pub fn written(&self) -> u64 {
        self.size
    }

    /// Syncs the data, gives it its id and publishes it with its metadata.
    pub async fn finish(mut self) -> anyhow::Result<ArtifactInfo> {
        let store = self.store.clone();
        if self.tx.is_none() {
            return Err(ArtifactError::Invalid(
                "this artifact writer failed earlier; start a new one".into(),
            )
            .into());
        }
        let rest = std::mem::take(&mut self.buf);
        if !rest.is_empty() {
            self.send(rest).await?;
        }
        // Closing the channel ends the sink once it has written everything queued.
        self.tx = None;
        let (file, hasher) = self.join_sink().await?;
        tokio::task::spawn_blocking(move || file.sync_all())
            .await
            .map_err(|e| ArtifactError::Invalid(format!("the artifact sync panicked: {e}")))?
            .map_err(|e| store.io("cannot sync an artifact to disk", e))?;
        let tmp = self.tmp.clone().unwrap_or_default();
        let sha256 = hex::encode(hasher.finalize());
        let publishing = store.publishing.clone();
        let _one = publishing.lock().await;
        store.make_room(self.size, true)?;
        let now = OffsetDateTime::now_utc();
        let created = now.format(&Rfc3339).unwrap_or_default();

        // The random part makes collisions rare; linking (which refuses to overwrite) makes
        // them harmless: on a clash a new id is drawn.
        for _ in 0..16 {
            let id = new_id(now, extension_for(&self.meta.media_type));
            let data_path = store.data_path(&id);
            if !publish(&tmp, &data_path)
                .await
                .map_err(|e| store.io(format!("cannot store {}", id.uri()), e))?
            {
                continue;
            }
            let info = ArtifactInfo {
                uri: id.uri(),
                size: self.size,
                sha256: sha256.clone(),
                media_type: self.meta.media_type.clone(),
                created: created.clone(),
                tool: self.meta.tool.clone(),
                trace_id: self.meta.trace_id.clone(),
                description: self.meta.description.clone(),
                pinned: false,
            };
            match write_sidecar(&store, &id, &info).await {
                Ok(true) => {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    self.tmp = None;
                    return Ok(info);
                }
                Ok(false) => {
                    let _ = tokio::fs::remove_file(&data_path).await;
                }
                Err(e) => {
                    let _ = tokio::fs::remove_file(&data_path).await;
                    return Err(e);
                }
            }
        }
        Err(ArtifactError::Invalid(format!(
            "cannot find a free artifact id in {}; remove stray files there",
            store.dir.display()
        ))
        .into())
    }
}

impl Drop for ArtifactWriter {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            // Removing an open file is fine on Unix; a write still in flight lands in the
            // unlinked inode and disappears with it.
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Creates a new file only its owner can read: artifacts hold command output and query results,
/// which are often as sensitive as the systems they came from. Links keep the mode.
async fn private_file(path: &Path) -> std::io::Result<tokio::fs::File> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).await
}

/// Puts `from` at `to` unless `to` exists; `Ok(false)` means it exists.
async fn publish(from: &Path, to: &Path) -> std::io::Result<bool> {
    match tokio::fs::hard_link(from, to).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        // File systems without hard links: check, then rename (a race needs the same random id
        // in the same second).
        Err(_) => {
            if tokio::fs::try_exists(to).await? {
                return Ok(false);
            }
            let copy = from.with_extension("link");
            tokio::fs::copy(from, &copy).await?;
            tokio::fs::rename(&copy, to).await?;
            Ok(true)
        }
    }
}

async fn write_sidecar(
    store: &ArtifactStore,
    id: &ArtifactId,
    info: &ArtifactInfo,
) -> anyhow::Result<bool> {
    let json = serde_json::to_vec_pretty(info).map_err(|e| {
        ArtifactError::Invalid(format!("cannot encode the metadata of {}: {e}", id.uri()))
    })?;
    let tmp = store
        .dir
        .join(format!("{TEMP_PREFIX}{:016x}.json", rand::random::<u64>()));
    let io = |e| store.io(format!("cannot write the metadata of {}", id.uri()), e);
    let mut f = private_file(&tmp).await.map_err(io)?;
    let written = async {
        f.write_all(&json).await?;
        f.sync_all().await
    }
    .await;
    drop(f);
    let result = match written {
        Ok(()) => publish(&tmp, &store.dir.join(id.sidecar_name()))
            .await
            .map_err(io),
        Err(e) => Err(io(e)),
    };
    let _ = tokio::fs::remove_file(&tmp).await;
    Ok(result?)
}
