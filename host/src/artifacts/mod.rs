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

mod id;
mod sink;
mod store;
mod writer;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use id::{ArtifactId, extension_for};
pub use sink::{Measured, ScrubbedSink, SinkError};
pub use store::ArtifactStore;
pub use writer::ArtifactWriter;

/// The scheme of artifact URIs.
pub const URI_SCHEME: &str = "artifact://";

/// Media type recorded when the caller gives none.
pub const DEFAULT_MEDIA_TYPE: &str = "application/octet-stream";

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
mod tests;
