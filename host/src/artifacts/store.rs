//! The store's directory: reading, listing, pinning, deleting, and the retention that keeps it
//! within its quota.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{
    ArtifactError, ArtifactId, ArtifactInfo, ArtifactMeta, PIN_SUFFIX, Quota, STALE_TEMP,
    TEMP_PREFIX,
};

/// The store: a directory of artifacts. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    pub(super) dir: PathBuf,
    /// Scrubs each artifact's description (it may quote a URL or a path the agent gave).
    pub(super) redactor: Option<crate::redact::Redactor>,
    pub(super) quota: Quota,
    /// One publisher at a time in this process: retention's accounting must see every artifact
    /// another writer is about to add. (Two infra processes on one store may each add one
    /// before the other's next publish evicts: the quota can be passed by an artifact, briefly.)
    pub(super) publishing: Arc<tokio::sync::Mutex<()>>,
}

/// One stored artifact as retention sees it.
struct Held {
    id: ArtifactId,
    size: u64,
    pinned: bool,
    /// When its data was last written (ids only have whole seconds).
    written: Option<SystemTime>,
}

impl ArtifactStore {
    /// Opens the store at `dir`, creating it, and removes temp files that crashed writers left.
    pub fn open(dir: impl AsRef<Path>) -> anyhow::Result<ArtifactStore> {
        let store = ArtifactStore {
            dir: dir.as_ref().to_path_buf(),
            redactor: None,
            quota: Quota::UNLIMITED,
            publishing: Arc::new(tokio::sync::Mutex::new(())),
        };
        std::fs::create_dir_all(&store.dir)
            .map_err(|e| store.io("cannot create the artifact directory", e))?;
        store.sweep_stale_temps();
        Ok(store)
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The data file of an id, for callers that stream it elsewhere (e.g. an SFTP upload).
    pub fn data_path(&self, id: &ArtifactId) -> PathBuf {
        self.dir.join(id.as_str())
    }

    pub(super) fn io(&self, what: impl Into<String>, source: std::io::Error) -> ArtifactError {
        ArtifactError::Io {
            what: what.into(),
            dir: self.dir.clone(),
            source,
        }
    }

    fn sweep_stale_temps(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            if !entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                continue;
            }
            // Young temp files may belong to a writer in another infra process.
            let stale = entry
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > STALE_TEMP);
            if stale {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// Stores `bytes` as one artifact.
    pub async fn put(&self, bytes: &[u8], meta: ArtifactMeta) -> anyhow::Result<ArtifactInfo> {
        let mut w = self.writer(meta).await?;
        w.write(bytes).await?;
        w.finish().await
    }

    /// The same store, scrubbing every known secret from the metadata it writes. The content is
    /// the writer's to scrub: it streams, and only the caller knows whether it should be.
    pub fn with_redactor(mut self, redactor: crate::redact::Redactor) -> Self {
        self.redactor = Some(redactor);
        self
    }

    /// The same store, holding at most `quota`: a new artifact makes room by removing the oldest
    /// unpinned ones, and is refused (with advice) when it cannot fit.
    pub fn with_quota(mut self, quota: Quota) -> Self {
        self.quota = quota;
        self
    }

    /// The store's limits.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// Every published artifact, oldest first.
    fn held(&self) -> std::io::Result<Vec<Held>> {
        let mut names = std::collections::HashSet::new();
        for entry in std::fs::read_dir(&self.dir)? {
            names.insert(entry?.file_name().to_string_lossy().into_owned());
        }
        let mut held = Vec::new();
        for name in &names {
            let Some(id) = name
                .strip_suffix(".json")
                .and_then(|stem| ArtifactId::parse(stem).ok())
            else {
                continue;
            };
            if !names.contains(id.as_str()) {
                continue;
            }
            let meta = std::fs::metadata(self.data_path(&id)).ok();
            let pinned = names.contains(&format!("{}{PIN_SUFFIX}", id.as_str()));
            held.push(Held {
                size: meta.as_ref().map_or(0, |m| m.len()),
                written: meta.and_then(|m| m.modified().ok()),
                id,
                pinned,
            });
        }
        held.sort_by(|a, b| {
            a.written
                .cmp(&b.written)
                .then_with(|| a.id.as_str().cmp(b.id.as_str()))
        });
        Ok(held)
    }

    /// Removes the oldest unpinned artifacts until one more of `incoming` bytes fits; refuses,
    /// removing nothing, when it cannot fit even then.
    ///
    /// With `evict` false it only checks that the artifact could fit once unpinned ones go.
    pub(super) fn make_room(&self, incoming: u64, evict: bool) -> anyhow::Result<()> {
        let q = self.quota;
        if q == Quota::UNLIMITED {
            return Ok(());
        }
        let held = self
            .held()
            .map_err(|e| self.io("cannot list the artifact directory", e))?;
        let mut bytes: u64 = held.iter().map(|h| h.size).sum();
        let mut count = held.len() as u64;
        let fits = |bytes: u64, count: u64| {
            bytes.saturating_add(incoming) <= q.total_bytes && count < q.count
        };
        if fits(bytes, count) {
            return Ok(());
        }
        let pinned_bytes: u64 = held.iter().filter(|h| h.pinned).map(|h| h.size).sum();
        let pinned_count = held.iter().filter(|h| h.pinned).count() as u64;
        if !fits(pinned_bytes, pinned_count) {
            return Err(ArtifactError::Full(format!(
                "the artifact store is full: a new artifact of {incoming} bytes would not fit even \
                 after removing every unpinned one ({pinned_count} pinned artifacts hold \
                 {pinned_bytes} bytes; [limits] artifacts_quota_bytes = {}, artifacts_quota_count \
                 = {}); delete or unpin artifacts (artifacts delete / unpin), ask for less, or \
                 have the operator raise the quota",
                q.total_bytes, q.count
            ))
            .into());
        }
        if !evict {
            return Ok(());
        }
        for h in held.iter().filter(|h| !h.pinned) {
            if fits(bytes, count) {
                break;
            }
            self.remove_files(&h.id)?;
            bytes -= h.size;
            count -= 1;
            tracing::info!(
                "artifact store over quota: removed the oldest unpinned artifact {}",
                h.id.uri()
            );
        }
        Ok(())
    }

    fn remove_files(&self, id: &ArtifactId) -> anyhow::Result<()> {
        // The sidecar first: without it the artifact is no longer listed or readable.
        for name in [
            id.sidecar_name(),
            id.as_str().to_string(),
            format!("{}{PIN_SUFFIX}", id.as_str()),
        ] {
            match std::fs::remove_file(self.dir.join(&name)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.io(format!("cannot remove {}", id.uri()), e).into()),
            }
        }
        Ok(())
    }

    /// Deletes an artifact (pinned or not).
    pub async fn delete(&self, uri: &str) -> anyhow::Result<ArtifactInfo> {
        let id = ArtifactId::from_uri(uri)?;
        let info = self.info_of(&id).await?;
        let _one = self.publishing.lock().await;
        self.remove_files(&id)?;
        Ok(info)
    }

    /// Pins (`true`) or unpins an artifact: retention never removes a pinned one.
    pub async fn pin(&self, uri: &str, pinned: bool) -> anyhow::Result<ArtifactInfo> {
        let id = ArtifactId::from_uri(uri)?;
        let mut info = self.info_of(&id).await?;
        let marker = self.dir.join(format!("{}{PIN_SUFFIX}", id.as_str()));
        let done = if pinned {
            std::fs::write(&marker, b"")
        } else {
            std::fs::remove_file(&marker).or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
        };
        done.map_err(|e| self.io(format!("cannot change the pin of {uri}"), e))?;
        info.pinned = pinned;
        Ok(info)
    }

    /// What the store holds against its quota.
    pub fn usage(&self) -> anyhow::Result<Value> {
        let held = self
            .held()
            .map_err(|e| self.io("cannot list the artifact directory", e))?;
        let q = self.quota;
        let limit = |v: u64| if v == u64::MAX { Value::Null } else { v.into() };
        Ok(serde_json::json!({
            "count": held.len(),
            "bytes": held.iter().map(|h| h.size).sum::<u64>(),
            "pinned": held.iter().filter(|h| h.pinned).count(),
            "quota_bytes": limit(q.total_bytes),
            "quota_count": limit(q.count),
            "artifact_bytes": limit(q.artifact_bytes),
        }))
    }

    /// The metadata of one artifact.
    pub async fn info(&self, uri: &str) -> anyhow::Result<ArtifactInfo> {
        let id = ArtifactId::from_uri(uri)?;
        self.info_of(&id).await
    }

    async fn info_of(&self, id: &ArtifactId) -> anyhow::Result<ArtifactInfo> {
        let not_found = || ArtifactError::NotFound { uri: id.uri() };
        let text = match tokio::fs::read(self.dir.join(id.sidecar_name())).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found().into()),
            Err(e) => {
                return Err(self
                    .io(format!("cannot read the metadata of {}", id.uri()), e)
                    .into());
            }
        };
        let info: ArtifactInfo = serde_json::from_slice(&text).map_err(|e| {
            ArtifactError::Invalid(format!(
                "the metadata of {} in {} is damaged ({e}); remove {} and its .json to drop it",
                id.uri(),
                self.dir.display(),
                id
            ))
        })?;
        // A sidecar that names another artifact is not this artifact's metadata.
        if info.uri != id.uri() {
            return Err(not_found().into());
        }
        match tokio::fs::metadata(self.data_path(id)).await {
            Ok(m) if m.is_file() => Ok(ArtifactInfo {
                pinned: self
                    .dir
                    .join(format!("{}{PIN_SUFFIX}", id.as_str()))
                    .exists(),
                ..info
            }),
            _ => Err(not_found().into()),
        }
    }

    /// Up to `limit` artifacts, newest first.
    pub async fn list(&self, limit: usize) -> anyhow::Result<Vec<ArtifactInfo>> {
        let mut entries = tokio::fs::read_dir(&self.dir)
            .await
            .map_err(|e| self.io("cannot list the artifact directory", e))?;
        let mut found = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| self.io("cannot list the artifact directory", e))?
        {
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|stem| ArtifactId::parse(stem).ok())
            else {
                continue;
            };
            // Skip, rather than fail the listing on, a damaged or foreign file.
            if let Ok(info) = self.info_of(&id).await {
                let created = OffsetDateTime::parse(&info.created, &Rfc3339).ok();
                found.push((created, info));
            }
        }
        found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.uri.cmp(&a.1.uri)));
        Ok(found.into_iter().take(limit).map(|(_, i)| i).collect())
    }

    /// Opens an artifact's content for reading, with its metadata.
    pub async fn reader(&self, uri: &str) -> anyhow::Result<(tokio::fs::File, ArtifactInfo)> {
        let id = ArtifactId::from_uri(uri)?;
        let info = self.info_of(&id).await?;
        let file = self.open_data(&id).await?;
        Ok((file, info))
    }

    async fn open_data(&self, id: &ArtifactId) -> anyhow::Result<tokio::fs::File> {
        match tokio::fs::File::open(self.data_path(id)).await {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(ArtifactError::NotFound { uri: id.uri() }.into())
            }
            Err(e) => Err(self.io(format!("cannot open {}", id.uri()), e).into()),
        }
    }

    /// Up to `len` bytes from `offset`; fewer at the end, none past it. The caller caps `len`.
    pub async fn read_range(&self, uri: &str, offset: u64, len: u64) -> anyhow::Result<Vec<u8>> {
        let (mut file, size) = self.open_sized(uri).await?;
        self.read_at(&mut file, uri, offset, len, size).await
    }

    /// The data file of `uri`, opened, with its size.
    async fn open_sized(&self, uri: &str) -> anyhow::Result<(tokio::fs::File, u64)> {
        let id = ArtifactId::from_uri(uri)?;
        let file = self.open_data(&id).await?;
        let size = file
            .metadata()
            .await
            .map_err(|e| self.io(format!("cannot stat {uri}"), e))?
            .len();
        Ok((file, size))
    }

    async fn read_at(
        &self,
        file: &mut tokio::fs::File,
        uri: &str,
        offset: u64,
        len: u64,
        size: u64,
    ) -> anyhow::Result<Vec<u8>> {
        if offset >= size || len == 0 {
            return Ok(Vec::new());
        }
        // Never allocate more than the artifact holds, whatever `len` the caller passed.
        let want = (size - offset).min(len) as usize;
        let mut buf = vec![0u8; want];
        file.seek(SeekFrom::Start(offset))
            .await
            .map_err(|e| self.io(format!("cannot seek in {uri}"), e))?;
        let mut got = 0;
        while got < want {
            let n = file
                .read(&mut buf[got..])
                .await
                .map_err(|e| self.io(format!("cannot read {uri}"), e))?;
            if n == 0 {
                break;
            }
            got += n;
        }
        buf.truncate(got);
        Ok(buf)
    }

    /// The first `bytes` bytes.
    pub async fn head(&self, uri: &str, bytes: u64) -> anyhow::Result<Vec<u8>> {
        self.read_range(uri, 0, bytes).await
    }

    /// The last `bytes` bytes.
    pub async fn tail(&self, uri: &str, bytes: u64) -> anyhow::Result<Vec<u8>> {
        Ok(self.tail_window(uri, bytes).await?.1)
    }

    async fn tail_window(&self, uri: &str, bytes: u64) -> anyhow::Result<(u64, Vec<u8>)> {
        let (mut file, size) = self.open_sized(uri).await?;
        let offset = size.saturating_sub(bytes);
        let data = self.read_at(&mut file, uri, offset, bytes, size).await?;
        Ok((offset, data))
    }

    /// The first `n` lines, reading at most `max_bytes` (invalid UTF-8 shown as U+FFFD). A line
    /// cut by that cap is left out, unless it is the only one, which is shown in part.
    pub async fn lines_head(&self, uri: &str, n: usize, max_bytes: u64) -> anyhow::Result<String> {
        if n == 0 {
            return Ok(String::new());
        }
        let id = ArtifactId::from_uri(uri)?;
        let mut file = self.open_data(&id).await?;
        let size = file
            .metadata()
            .await
            .map_err(|e| self.io(format!("cannot stat {uri}"), e))?
            .len();
        let data = self.read_at(&mut file, uri, 0, max_bytes, size).await?;
        let newlines: Vec<usize> = data
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1)
            .take(n)
            .collect();
        let reached_end = data.len() as u64 == size;
        let end = if newlines.len() == n || reached_end {
            newlines.get(n - 1).copied().unwrap_or(data.len())
        } else {
            newlines.last().copied().unwrap_or(data.len())
        };
        Ok(String::from_utf8_lossy(&data[..end]).into_owned())
    }

    /// The last `n` lines, reading at most the last `max_bytes` (a line cut by that window is
    /// left out rather than shown in part).
    pub async fn lines_tail(&self, uri: &str, n: usize, max_bytes: u64) -> anyhow::Result<String> {
        let (offset, data) = self.tail_window(uri, max_bytes).await?;
        let mut start = 0;
        if offset > 0 {
            // Leave out the line the window cut, unless it is all there is.
            let scan = data.strip_suffix(b"\n").unwrap_or(&data);
            start = scan.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
        }
        let body = &data[start..];
        // The final newline ends the last line; it does not start an empty one.
        let scan = body.strip_suffix(b"\n").unwrap_or(body);
        let from = if n == 0 {
            body.len()
        } else {
            scan.iter()
                .enumerate()
                .rev()
                .filter(|(_, b)| **b == b'\n')
                .nth(n - 1)
                .map_or(0, |(i, _)| i + 1)
        };
        Ok(String::from_utf8_lossy(&body[from..]).into_owned())
    }
}
