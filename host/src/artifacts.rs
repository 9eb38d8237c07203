//! The artifact store: large outputs, downloads and exports, as files under `<state>/artifacts/`.
//!
//! An artifact is a data file named by its id plus a sidecar `<id>.json` with its metadata.
//! Ids follow one strict grammar (`yyyymmddThhmmss-xxxxxxxx` and an optional extension such as
//! `.csv`), checked whenever a URI comes in, so an `artifact://` URI from an agent can only
//! ever name a file directly inside the store's directory.
//!
//! Writes are atomic: data goes to a hidden temp file, is hashed as it streams, and is linked
//! into place only when complete, so a reader never sees half an artifact and a crash leaves
//! at most a temp file, which [`ArtifactStore::open`] sweeps later.

use std::fmt;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// The scheme of artifact URIs.
pub const URI_SCHEME: &str = "artifact://";

/// Media type recorded when the caller gives none.
pub const DEFAULT_MEDIA_TYPE: &str = "application/octet-stream";

/// Longest extension hint, dots included (`tar.gz` is 6).
const MAX_EXTENSION: usize = 16;

/// Temp files of writers that died with their process are removed after this long.
const STALE_TEMP: Duration = Duration::from_secs(24 * 60 * 60);

const TEMP_PREFIX: &str = ".tmp-";

const LIST_ADVICE: &str = "list artifacts with {\"action\":\"list\"}";

/// What went wrong with an artifact, and what to do about it. Store methods return it inside an
/// `anyhow::Error`; `downcast_ref::<ArtifactError>()` tells a missing artifact from a failing disk.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The URI is not one this store could have issued.
    #[error(
        "'{uri}' is not an artifact URI: {reason}; use a URI exactly as a tool returned it, e.g. artifact://20250101T120000-0a1b2c3d.csv, or {LIST_ADVICE}"
    )]
    InvalidUri {
        /// The URI as given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Something the store cannot do, with the reason and the fix.
    #[error("{0}")]
    Invalid(String),
    /// The store's quota (or the one-artifact limit) leaves no room; the message says what to do.
    #[error("{0}")]
    Full(String),
    /// No such artifact.
    #[error("{uri} not found; {LIST_ADVICE}")]
    NotFound {
        /// The URI asked for.
        uri: String,
    },
    /// The file system refused.
    #[error(
        "{what} in {dir}: {source}; check that the directory exists, is writable and has free space"
    )]
    Io {
        /// What the store was doing.
        what: String,
        /// The store's directory.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// A validated artifact id; only [`ArtifactId::parse`] and the store create one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArtifactId(String);

impl ArtifactId {
    /// Checks an id against the grammar `yyyymmddThhmmss-xxxxxxxx[.ext]` (lowercase hex;
    /// `ext` is dot-separated runs of lowercase letters and digits, at most 16 bytes).
    pub fn parse(id: &str) -> Result<ArtifactId, String> {
        let b = id.as_bytes();
        let (base, ext) = match id.find('.') {
            Some(i) => (&b[..i], Some(&id[i + 1..])),
            None => (b, None),
        };
        let digits = |r: &[u8]| r.iter().all(u8::is_ascii_digit);
        let hex = |r: &[u8]| {
            r.iter()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
        };
        if base.len() != 24
            || !digits(&base[..8])
            || base[8] != b'T'
            || !digits(&base[9..15])
            || base[15] != b'-'
            || !hex(&base[16..])
        {
            return Err("the id must look like 20250101T120000-0a1b2c3d".into());
        }
        if let Some(ext) = ext {
            check_extension(ext)?;
        }
        Ok(ArtifactId(id.to_string()))
    }

    /// Parses an `artifact://<id>` URI.
    pub fn from_uri(uri: &str) -> Result<ArtifactId, ArtifactError> {
        let invalid = |reason: String| ArtifactError::InvalidUri {
            uri: uri.to_string(),
            reason,
        };
        let id = uri
            .strip_prefix(URI_SCHEME)
            .ok_or_else(|| invalid(format!("it does not start with {URI_SCHEME}")))?;
        ArtifactId::parse(id).map_err(invalid)
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `artifact://` URI of this id.
    pub fn uri(&self) -> String {
        format!("{URI_SCHEME}{}", self.0)
    }

    fn sidecar_name(&self) -> String {
        format!("{}.json", self.0)
    }
}

impl fmt::Display for ArtifactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_extension(ext: &str) -> Result<(), String> {
    let ok = !ext.is_empty()
        && ext.len() <= MAX_EXTENSION
        && ext.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "extension '{ext}' must be up to {MAX_EXTENSION} lowercase letters and digits, dot-separated (csv, jsonl, tar.gz)"
        ))
    }
}

/// What the caller knows about an artifact it is about to store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArtifactMeta {
    /// MIME type; empty means [`DEFAULT_MEDIA_TYPE`].
    pub media_type: String,
    /// The tool that produced it.
    pub tool: String,
    /// The call's trace id.
    pub trace_id: String,
    /// A line saying what it holds.
    pub description: String,
}

/// The extension an id gets for a media type, so a saved artifact opens in the right program.
/// Only this fixed table feeds ids: a media type from a remote server never reaches a path.
pub fn extension_for(media_type: &str) -> Option<&'static str> {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(match essence.as_str() {
        "text/csv" => "csv",
        "application/json" => "json",
        "application/x-ndjson"
        | "application/jsonl"
        | "application/jsonlines"
        | "application/x-jsonlines" => "jsonl",
        "text/plain" => "txt",
        "text/markdown" => "md",
        "text/html" => "html",
        "application/xml" | "text/xml" => "xml",
        "application/yaml" | "application/x-yaml" | "text/yaml" => "yaml",
        "application/sql" => "sql",
        "application/gzip" | "application/x-gzip" => "gz",
        "application/x-tar" => "tar",
        "application/zip" => "zip",
        "application/pdf" => "pdf",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        _ => return None,
    })
}

/// A stored artifact, as its sidecar `<id>.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactInfo {
    /// `artifact://<id>`.
    pub uri: String,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex sha256 of the content.
    pub sha256: String,
    /// MIME type.
    pub media_type: String,
    /// When it was stored, RFC 3339 UTC.
    pub created: String,
    /// The tool that produced it.
    pub tool: String,
    /// The call's trace id.
    pub trace_id: String,
    /// What it holds.
    pub description: String,
    /// Kept through retention until unpinned or deleted (not stored in the sidecar: the
    /// `<id>.pin` marker says it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pinned: bool,
}

impl ArtifactInfo {
    /// The id inside [`ArtifactInfo::uri`].
    pub fn id(&self) -> Option<ArtifactId> {
        ArtifactId::from_uri(&self.uri).ok()
    }
}

/// How much the store may hold (`[limits]` of the policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Most bytes of one artifact.
    pub artifact_bytes: u64,
    /// Most bytes of all artifacts together.
    pub total_bytes: u64,
    /// Most artifacts.
    pub count: u64,
}

impl Quota {
    /// No limits (tests and the demo's throw-away stores).
    pub const UNLIMITED: Quota = Quota {
        artifact_bytes: u64::MAX,
        total_bytes: u64::MAX,
        count: u64::MAX,
    };
}

/// The suffix of the empty marker file that pins an artifact (kept through retention).
const PIN_SUFFIX: &str = ".pin";

/// The store: a directory of artifacts. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    dir: PathBuf,
    /// Scrubs each artifact's description (it may quote a URL or a path the agent gave).
    redactor: Option<crate::redact::Redactor>,
    quota: Quota,
    /// One publisher at a time in this process: retention's accounting must see every artifact
    /// another writer is about to add. (Two infra processes on one store may each add one
    /// before the other's next publish evicts: the quota can be passed by an artifact, briefly.)
    publishing: Arc<tokio::sync::Mutex<()>>,
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

    fn io(&self, what: impl Into<String>, source: std::io::Error) -> ArtifactError {
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
    fn make_room(&self, incoming: u64, evict: bool) -> anyhow::Result<()> {
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
        let id = ArtifactId::from_uri(uri)?;
        let mut file = self.open_data(&id).await?;
        let size = file
            .metadata()
            .await
            .map_err(|e| self.io(format!("cannot stat {uri}"), e))?
            .len();
        self.read_at(&mut file, uri, offset, len, size).await
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
        let id = ArtifactId::from_uri(uri)?;
        let mut file = self.open_data(&id).await?;
        let size = file
            .metadata()
            .await
            .map_err(|e| self.io(format!("cannot stat {uri}"), e))?
            .len();
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

fn new_id(now: OffsetDateTime, extension: Option<&str>) -> ArtifactId {
    let mut id = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}-{:08x}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        rand::random::<u32>()
    );
    if let Some(ext) = extension {
        id.push('.');
        id.push_str(ext);
    }
    ArtifactId(id)
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

/// A preview of (possibly binary) output of at most `max` bytes, never splitting a UTF-8
/// character, ending in `…` when cut.
pub fn preview(bytes: &[u8], max: usize) -> String {
    const MORE: &str = "…";
    let mut cut = bytes.len() > max;
    let budget = if cut {
        max.saturating_sub(MORE.len())
    } else {
        max
    };
    let mut end = bytes.len().min(budget);
    // If the cut lands inside a character, step back to that character's first byte; binary
    // data may have no first byte nearby, so look back at most the 3 bytes a character spans.
    if end < bytes.len() {
        let mut back = end;
        while back > 0 && end - back < 3 && bytes[back] & 0xC0 == 0x80 {
            back -= 1;
        }
        if bytes[back] & 0xC0 != 0x80 {
            end = back;
        }
    }
    let mut text = String::from_utf8_lossy(&bytes[..end]).into_owned();
    // Replacement characters are wider than the bytes they replace, so binary data can
    // outgrow the budget here and must be cut (and marked) after all.
    if text.len() > budget {
        cut = true;
        let mut at = max.saturating_sub(MORE.len()).min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
    }
    if cut && max >= MORE.len() {
        text.push_str(MORE);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temporary directory removed on drop.
    struct TempDir(tempfile::TempDir);

    impl TempDir {
        fn new(_tag: &str) -> TempDir {
            TempDir(tempfile::tempdir().unwrap())
        }
    }

    fn kind(e: &anyhow::Error) -> &ArtifactError {
        e.downcast_ref()
            .unwrap_or_else(|| panic!("not an ArtifactError: {e:#}"))
    }

    fn meta(media_type: &str) -> ArtifactMeta {
        ArtifactMeta {
            media_type: media_type.into(),
            tool: "psql".into(),
            trace_id: "t-1".into(),
            description: "export of users".into(),
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn put_and_read_back_with_sha256_and_sidecar() {
        let dir = TempDir::new("put");
        let store = ArtifactStore::open(dir.0.path().join("artifacts")).unwrap();
        let data = b"id,name\n1,ada\n2,grace\n";
        let info = store
            .put(data, meta("Text/CSV; charset=utf-8"))
            .await
            .unwrap();
        assert_eq!(info.size, data.len() as u64);
        assert_eq!(info.sha256, hex::encode(Sha256::digest(data)));
        assert!(
            info.uri.starts_with(URI_SCHEME) && info.uri.ends_with(".csv"),
            "{}",
            info.uri
        );
        let id = info.id().unwrap();
        assert_eq!(id.as_str().len(), 24 + 4);
        OffsetDateTime::parse(&info.created, &Rfc3339).unwrap();
        assert_eq!(info.media_type, "Text/CSV; charset=utf-8");

        assert_eq!(store.info(&info.uri).await.unwrap(), info);
        assert_eq!(store.head(&info.uri, 1 << 20).await.unwrap(), data);
        let sidecar: ArtifactInfo =
            serde_json::from_slice(&std::fs::read(store.dir().join(format!("{id}.json"))).unwrap())
                .unwrap();
        assert_eq!(sidecar, info);
        assert_eq!(
            names(store.dir()),
            [id.to_string(), format!("{id}.json")],
            "no temp files left"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for name in names(store.dir()) {
                let mode = std::fs::metadata(store.dir().join(&name))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o077, 0, "{name} must be private, is {mode:o}");
            }
        }

        let (mut file, i2) = store.reader(&info.uri).await.unwrap();
        let mut all = Vec::new();
        file.read_to_end(&mut all).await.unwrap();
        assert_eq!((all.as_slice(), i2), (&data[..], info));

        let plain = store.put(b"", ArtifactMeta::default()).await.unwrap();
        assert_eq!(plain.media_type, DEFAULT_MEDIA_TYPE);
        assert_eq!(plain.size, 0);
        assert!(!plain.uri.contains('.'));
    }

    #[tokio::test]
    async fn streaming_50_mib_has_the_right_size_and_sha256() {
        let dir = TempDir::new("stream");
        let store = ArtifactStore::open(dir.0.path()).unwrap();
        let mut w = store
            .writer(meta("application/octet-stream"))
            .await
            .unwrap();
        let mut expect = Sha256::new();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let chunk_len = 64 * 1024 + 13; // odd size, so chunks do not align with anything
        let total = 50 * 1024 * 1024;
        let mut chunk = vec![0u8; chunk_len];
        let mut written = 0;
        while written < total {
            let n = chunk_len.min(total - written);
            for b in &mut chunk[..n] {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            w.write(&chunk[..n]).await.unwrap();
            expect.update(&chunk[..n]);
            written += n;
        }
        assert_eq!(w.written(), total as u64);
        assert!(
            store.list(10).await.unwrap().is_empty(),
            "nothing is visible before finish"
        );
        let info = w.finish().await.unwrap();
        assert_eq!(info.size, total as u64);
        assert_eq!(info.sha256, hex::encode(expect.finalize()));
        let on_disk = std::fs::read(store.data_path(&info.id().unwrap())).unwrap();
        assert_eq!(on_disk.len(), total);
        assert_eq!(hex::encode(Sha256::digest(&on_disk)), info.sha256);
    }

    #[tokio::test]
    async fn dropping_an_unfinished_writer_leaves_nothing() {
        let dir = TempDir::new("drop");
        let store = ArtifactStore::open(dir.0.path()).unwrap();
        let mut w = store.writer(meta("")).await.unwrap();
        w.write(b"partial download").await.unwrap();
        assert_eq!(
            names(dir.0.path()).len(),
            1,
            "the temp file exists while writing"
        );
        drop(w);
        assert!(names(dir.0.path()).is_empty(), "{:?}", names(dir.0.path()));
        assert!(store.list(10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn ranges_heads_tails_and_lines() {
        let dir = TempDir::new("ranges");
        let store = ArtifactStore::open(dir.0.path()).unwrap();
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let uri = store.put(&data, meta("")).await.unwrap().uri;
        assert_eq!(store.read_range(&uri, 10, 5).await.unwrap(), &data[10..15]);
        assert_eq!(
            store.read_range(&uri, 990, 100).await.unwrap(),
            &data[990..]
        );
        assert!(store.read_range(&uri, 1000, 10).await.unwrap().is_empty());
        assert!(
            store
                .read_range(&uri, u64::MAX, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(store.read_range(&uri, 0, 0).await.unwrap().is_empty());
        assert_eq!(store.head(&uri, 3).await.unwrap(), &data[..3]);
        assert_eq!(store.tail(&uri, 3).await.unwrap(), &data[997..]);
        assert_eq!(store.tail(&uri, 5000).await.unwrap(), data);

        let text = "one\ntwo\nthree\nfour\nfive\n";
        let uri = store
            .put(text.as_bytes(), meta("text/plain"))
            .await
            .unwrap()
            .uri;
        assert_eq!(store.lines_head(&uri, 2, 1000).await.unwrap(), "one\ntwo\n");
        assert_eq!(store.lines_head(&uri, 0, 1000).await.unwrap(), "");
        assert_eq!(store.lines_head(&uri, 99, 1000).await.unwrap(), text);
        assert_eq!(
            store.lines_head(&uri, 3, 6).await.unwrap(),
            "one\n",
            "byte cap wins"
        );
        assert_eq!(
            store.lines_tail(&uri, 2, 1000).await.unwrap(),
            "four\nfive\n"
        );
        assert_eq!(store.lines_tail(&uri, 0, 1000).await.unwrap(), "");
        assert_eq!(store.lines_tail(&uri, 99, 1000).await.unwrap(), text);
        assert_eq!(
            store.lines_tail(&uri, 99, 12).await.unwrap(),
            "four\nfive\n",
            "a cut line is left out"
        );
        assert_eq!(
            store.lines_tail(&uri, 2, 3).await.unwrap(),
            "ve\n",
            "a lone cut line is shown in part"
        );
        assert_eq!(
            store.lines_head(&uri, 1, 2).await.unwrap(),
            "on",
            "a lone cut line is shown in part"
        );
        let uri = store.put(b"a\nb", meta("")).await.unwrap().uri;
        assert_eq!(store.lines_tail(&uri, 1, 100).await.unwrap(), "b");
        assert_eq!(
            store.lines_head(&uri, 5, 100).await.unwrap(),
            "a\nb",
            "the unterminated last line counts"
        );
    }

    #[tokio::test]
    async fn list_is_newest_first_and_skips_strays() {
        let dir = TempDir::new("list");
        let store = ArtifactStore::open(dir.0.path()).unwrap();
        let mut uris = Vec::new();
        for i in 0..4 {
            uris.push(
                store
                    .put(format!("{i}").as_bytes(), meta(""))
                    .await
                    .unwrap()
                    .uri,
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        // Strays: a foreign file, a sidecar without data, a damaged sidecar, a JSON artifact.
        std::fs::write(dir.0.path().join("notes.txt"), "x").unwrap();
        std::fs::write(dir.0.path().join("20250101T000000-00000000.json"), "{}").unwrap();
        std::fs::write(dir.0.path().join("20250101T000000-11111111"), "data").unwrap();
        std::fs::write(
            dir.0.path().join("20250101T000000-11111111.json"),
            "not json",
        )
        .unwrap();
        let json_artifact = store
            .put(b"{\"uri\":\"artifact://x\"}", meta("application/json"))
            .await
            .unwrap();
        uris.push(json_artifact.uri);
        let listed: Vec<String> = store
            .list(100)
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.uri)
            .collect();
        let mut want = uris.clone();
        want.reverse();
        assert_eq!(listed, want);
        assert_eq!(store.list(2).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn hostile_uris_cannot_leave_the_directory() {
        let dir = TempDir::new("traversal");
        let store = ArtifactStore::open(dir.0.path().join("artifacts")).unwrap();
        // A file just outside the store that a traversal would reach.
        std::fs::write(dir.0.path().join("secret.txt"), "top secret").unwrap();
        std::fs::write(dir.0.path().join("secret.txt.json"), "{}").unwrap();
        let good = "20250101T120000-0a1b2c3d";
        for uri in [
            "artifact://../secret.txt",
            "artifact://..",
            "artifact://.",
            "artifact://",
            "artifact:///etc/passwd",
            "artifact://%2e%2e/secret.txt",
            &format!("artifact://{good}/../../secret.txt"),
            &format!("artifact://{good}/.."),
            &format!("artifact://{good}.csv/../x"),
            &format!("artifact://{good}..csv"),
            &format!("artifact://{good}."),
            &format!("artifact://{good}.c\\v"),
            &format!("artifact://{good}\0"),
            &format!("artifact://{good} "),
            &format!("artifact://{good}.ABC"),
            "artifact://20250101T120000-0A1B2C3D",
            "artifact://20250101T120000-0a1b2c3",
            "artifact://20250101T120000-0a1b2c3d0",
            "artifact://2025010xT120000-0a1b2c3d",
            &format!("artifact://{good}.aaaaaaaaaaaaaaaaa"),
            "file:///etc/passwd",
            "/etc/passwd",
            good,
        ] {
            let err = store.info(uri).await.unwrap_err();
            assert!(
                matches!(kind(&err), ArtifactError::InvalidUri { .. }),
                "{uri:?}: {err}"
            );
            assert!(err.to_string().contains("{\"action\":\"list\"}"), "{err}");
            let err = store.read_range(uri, 0, 100).await.unwrap_err();
            assert!(
                matches!(kind(&err), ArtifactError::InvalidUri { .. }),
                "{uri:?}"
            );
            let err = store.tail(uri, 100).await.unwrap_err();
            assert!(
                matches!(kind(&err), ArtifactError::InvalidUri { .. }),
                "{uri:?}"
            );
            assert!(store.reader(uri).await.is_err(), "{uri:?}");
        }
        // A well-formed URI that names nothing is "not found", with advice.
        let err = store.info(&format!("artifact://{good}")).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("artifact://{good} not found; list artifacts with {{\"action\":\"list\"}}")
        );
        let err = store
            .head(&format!("artifact://{good}.csv"), 10)
            .await
            .unwrap_err();
        assert!(matches!(kind(&err), ArtifactError::NotFound { .. }));
        // A hostile media type (a remote server's Content-Type) never reaches the file name.
        for media_type in ["../../x", "text/csv/../../x", "a/b; ext=../x", "\0"] {
            let info = store.put(b"x", meta(media_type)).await.unwrap();
            let id = info.id().unwrap();
            assert!(!id.as_str().contains('.'), "{media_type:?} gave {id}");
            assert_eq!(store.data_path(&id).parent(), Some(store.dir()));
            assert_eq!(
                info.media_type, media_type,
                "recorded as given, used for nothing"
            );
        }
    }

    #[tokio::test]
    async fn a_sidecar_naming_another_artifact_is_not_trusted() {
        let dir = TempDir::new("forged");
        let store = ArtifactStore::open(dir.0.path()).unwrap();
        let real = store.put(b"real", meta("")).await.unwrap();
        let fake = "20250101T000000-deadbeef";
        std::fs::write(dir.0.path().join(fake), "data").unwrap();
        // The fake's sidecar is a copy of the real one, so it names the real URI.
        std::fs::write(
            dir.0.path().join(format!("{fake}.json")),
            serde_json::to_vec(&real).unwrap(),
        )
        .unwrap();
        let err = store.info(&format!("artifact://{fake}")).await.unwrap_err();
        assert!(matches!(kind(&err), ArtifactError::NotFound { .. }));
        assert_eq!(store.list(10).await.unwrap(), vec![real]);
    }

    #[test]
    fn preview_is_utf8_safe_and_bounded() {
        assert_eq!(preview(b"hello", 10), "hello");
        assert_eq!(preview(b"hello world", 8), "hello…");
        let text = "ééééé".as_bytes(); // 10 bytes
        for max in 0..12 {
            let p = preview(text, max);
            assert!(p.len() <= max, "max {max}: {p:?} is {} bytes", p.len());
            assert!(
                !p.contains('\u{FFFD}'),
                "max {max}: a character was split: {p:?}"
            );
        }
        assert_eq!(preview(text, 7), "éé…");
        let binary: Vec<u8> = (0..=255u8).collect();
        for max in [0, 1, 3, 4, 10, 100, 300] {
            let p = preview(&binary, max);
            assert!(p.len() <= max, "max {max}: {} bytes", p.len());
        }
        // Continuation bytes with no lead byte do not make the cut walk back without end.
        let p = preview(&[0x80; 50], 20);
        assert!(p.len() <= 20);
        assert_eq!(preview("日本語のテキスト".as_bytes(), 10), "日本…");
    }

    #[test]
    fn media_types_map_to_extensions() {
        assert_eq!(extension_for("text/csv"), Some("csv"));
        assert_eq!(
            extension_for("Application/JSON; charset=utf-8"),
            Some("json")
        );
        assert_eq!(extension_for("application/x-ndjson"), Some("jsonl"));
        assert_eq!(extension_for("application/octet-stream"), None);
        assert_eq!(extension_for(""), None);
        for ext in [
            "csv", "json", "jsonl", "txt", "md", "html", "xml", "yaml", "sql", "gz", "tar", "zip",
            "pdf", "png", "jpg",
        ] {
            check_extension(ext).unwrap();
        }
    }

    #[tokio::test]
    async fn stale_temp_files_are_swept_on_open_and_fresh_ones_kept() {
        let dir = TempDir::new("sweep");
        let stale = dir.0.path().join(".tmp-0000000000000001");
        let fresh = dir.0.path().join(".tmp-0000000000000002");
        std::fs::write(&stale, "crashed writer").unwrap();
        std::fs::write(&fresh, "live writer").unwrap();
        let old = SystemTime::now() - STALE_TEMP - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(old)
            .unwrap();
        ArtifactStore::open(dir.0.path()).unwrap();
        assert!(!stale.exists());
        assert!(fresh.exists());
    }

    #[test]
    fn ids_parse_strictly() {
        for ok in [
            "20250101T120000-0a1b2c3d",
            "20250101T120000-0a1b2c3d.csv",
            "20250101T120000-0a1b2c3d.tar.gz",
            "20250101T120000-0a1b2c3d.jsonl",
        ] {
            let id = ArtifactId::parse(ok).unwrap();
            assert_eq!(ArtifactId::from_uri(&id.uri()).unwrap(), id);
        }
        assert!(ArtifactId::parse("20250101T120000-0a1b2c3d.tar.").is_err());
        assert!(ArtifactId::parse("20250101T120000-0a1b2c3d.-x").is_err());
        assert!(ArtifactId::parse("20250101t120000-0a1b2c3d").is_err());
        assert!(ArtifactId::parse("20250101T120000_0a1b2c3d").is_err());
    }

    fn quota(total_bytes: u64, count: u64) -> Quota {
        Quota {
            artifact_bytes: 1000,
            total_bytes,
            count,
        }
    }

    #[tokio::test]
    async fn retention_removes_the_oldest_unpinned_first() {
        let dir = TempDir::new("quota");
        let store = ArtifactStore::open(dir.0.path())
            .unwrap()
            .with_quota(quota(300, 100));
        let a = store.put(&[b'a'; 100], meta("")).await.unwrap();
        let b = store.put(&[b'b'; 100], meta("")).await.unwrap();
        let c = store.put(&[b'c'; 100], meta("")).await.unwrap();
        store.pin(&a.uri, true).await.unwrap();
        // Full: the next one removes b (a is older but pinned).
        let d = store.put(&[b'd'; 100], meta("")).await.unwrap();
        assert!(
            store.info(&a.uri).await.unwrap().pinned,
            "a is kept, pinned"
        );
        assert!(
            store.info(&b.uri).await.is_err(),
            "b, the oldest unpinned, went"
        );
        assert!(store.info(&c.uri).await.is_ok() && store.info(&d.uri).await.is_ok());
        let usage = store.usage().unwrap();
        assert_eq!(
            (usage["count"].as_u64(), usage["bytes"].as_u64()),
            (Some(3), Some(300))
        );
        assert_eq!(usage["pinned"], 1);
    }

    #[tokio::test]
    async fn the_count_quota_holds_too() {
        let dir = TempDir::new("count");
        let store = ArtifactStore::open(dir.0.path())
            .unwrap()
            .with_quota(quota(u64::MAX - 1, 2));
        let a = store.put(b"1", meta("")).await.unwrap();
        store.put(b"2", meta("")).await.unwrap();
        store.put(b"3", meta("")).await.unwrap();
        assert!(store.info(&a.uri).await.is_err(), "the oldest went");
        assert_eq!(store.list(10).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn what_cannot_fit_is_refused_and_removes_nothing() {
        let dir = TempDir::new("full");
        let store = ArtifactStore::open(dir.0.path())
            .unwrap()
            .with_quota(quota(250, 100));
        let a = store.put(&[b'a'; 100], meta("")).await.unwrap();
        let b = store.put(&[b'b'; 100], meta("")).await.unwrap();
        store.pin(&a.uri, true).await.unwrap();
        store.pin(&b.uri, true).await.unwrap();
        let e = store.put(&[b'c'; 100], meta("")).await.unwrap_err();
        assert!(matches!(kind(&e), ArtifactError::Full(_)), "{e:#}");
        let text = format!("{e:#}");
        assert!(
            text.contains("unpin") && text.contains("artifacts_quota_bytes"),
            "{text}"
        );
        assert!(store.info(&a.uri).await.is_ok() && store.info(&b.uri).await.is_ok());
        // One artifact over the per-artifact limit is refused as it streams.
        store.pin(&b.uri, false).await.unwrap();
        let mut w = store.writer(meta("")).await.unwrap();
        let e = w.write(&[0u8; 1001]).await.unwrap_err();
        assert!(format!("{e:#}").contains("artifact_bytes"), "{e:#}");
        drop(w);
        assert!(
            names(dir.0.path())
                .iter()
                .all(|n| !n.starts_with(TEMP_PREFIX))
        );
    }

    #[tokio::test]
    async fn delete_removes_data_sidecar_and_pin() {
        let dir = TempDir::new("delete");
        let store = ArtifactStore::open(dir.0.path()).unwrap();
        let a = store.put(b"bye", meta("text/plain")).await.unwrap();
        store.pin(&a.uri, true).await.unwrap();
        store.delete(&a.uri).await.unwrap();
        assert!(names(dir.0.path()).is_empty(), "{:?}", names(dir.0.path()));
        assert!(
            store.delete(&a.uri).await.is_err(),
            "a second delete: not found"
        );
        assert!(store.delete("artifact://../../etc/passwd").await.is_err());
    }

    proptest::proptest! {
        /// No string an agent sends parses to an id that names anything but a plain file
        /// directly inside the store.
        #[test]
        fn no_parsed_id_leaves_the_store(s in "[0-9a-zA-Z./\\\\:%-]{0,40}|20250101T120000-[0-9a-f]{8}[./a-z0-9%]{0,12}") {
            if let Ok(id) = ArtifactId::parse(&s) {
                let dir = Path::new("/store");
                let path = ArtifactStore {
                    dir: dir.to_path_buf(),
                    redactor: None,
                    quota: Quota::UNLIMITED,
                    publishing: Default::default(),
                }
                .data_path(&id);
                proptest::prop_assert_eq!(path.parent(), Some(dir));
                proptest::prop_assert!(!s.contains('/') && !s.contains("..") && !s.starts_with('.'));
                proptest::prop_assert!(ArtifactId::from_uri(&id.uri()).is_ok());
            }
        }
    }
}
