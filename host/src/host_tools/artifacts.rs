//! `artifacts`: list stored outputs and read them by range.

use base64::Engine as _;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::HostView;
use crate::artifacts::ArtifactInfo;
use crate::error_kind::ErrorKind;
use crate::failure::Failure;

pub const DESCRIPTION: &str = "Stored outputs (artifact:// URIs): `list` newest first (with the \
store's usage against its quota); `get` a byte range (offset, length); `head`/`tail` the first/last \
bytes; `pin`/`unpin` (the oldest unpinned artifacts are removed when the store is full); `delete`. \
Every answer carries size and sha256.";

/// Largest range returned inline.
const MAX_INLINE: u64 = 256 * 1024;

/// Arguments of `artifacts`: the action, with the fields only that action takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
#[schemars(extend("additionalProperties" = false))]
pub enum Args {
    /// Artifacts, newest first.
    List {
        /// How many (default 50).
        limit: Option<usize>,
    },
    /// A byte range.
    Get {
        /// The `artifact://` URI.
        uri: String,
        /// First byte (default 0).
        offset: Option<u64>,
        /// Bytes to return (default 16384, at most 262144).
        length: Option<u64>,
    },
    /// The first `length` bytes.
    Head {
        /// The `artifact://` URI.
        uri: String,
        /// Bytes to return (default 16384, at most 262144).
        length: Option<u64>,
    },
    /// The last `length` bytes.
    Tail {
        /// The `artifact://` URI.
        uri: String,
        /// Bytes to return (default 16384, at most 262144).
        length: Option<u64>,
    },
    /// Keep it when the store makes room.
    Pin {
        /// The `artifact://` URI.
        uri: String,
    },
    /// Let the store remove it when it makes room (oldest first).
    Unpin {
        /// The `artifact://` URI.
        uri: String,
    },
    /// Remove it now.
    Delete {
        /// The `artifact://` URI.
        uri: String,
    },
}

/// Where a read starts.
enum Start {
    /// At this byte.
    Offset(u64),
    /// `length` bytes before the end.
    End,
}

pub async fn run(host: &HostView<'_>, args: Args) -> Result<Value, Failure> {
    let store = &host.shared.artifacts;
    let (uri, start, length) = match args {
        Args::List { limit } => {
            let list = store.list(limit.unwrap_or(50)).await?;
            return Ok(json!({ "items": list, "usage": store.usage()? }));
        }
        Args::Pin { uri } => return changed("pinned", store.pin(&uri, true).await),
        Args::Unpin { uri } => return changed("unpinned", store.pin(&uri, false).await),
        Args::Delete { uri } => return changed("deleted", store.delete(&uri).await),
        Args::Get {
            uri,
            offset,
            length,
        } => (uri, Start::Offset(offset.unwrap_or(0)), length),
        Args::Head { uri, length } => (uri, Start::Offset(0), length),
        Args::Tail { uri, length } => (uri, Start::End, length),
    };
    let info = store.info(&uri).await.map_err(not_found)?;
    let length = length.unwrap_or(16 * 1024).min(MAX_INLINE);
    let offset = match start {
        Start::Offset(o) => o,
        Start::End => info.size.saturating_sub(length),
    };
    let bytes = store.read_range(&uri, offset, length).await?;
    let end = offset + bytes.len() as u64;
    let mut out = json!({
        "uri": info.uri, "size": info.size, "sha256": info.sha256, "media_type": info.media_type,
        "offset": offset, "length": bytes.len(), "more": end < info.size,
    });
    match String::from_utf8(bytes) {
        Ok(text) => out["text"] = json!(text),
        // A range may cut a UTF-8 character: give base64 so nothing is lost.
        Err(e) => {
            out["base64"] = json!(base64::engine::general_purpose::STANDARD.encode(e.as_bytes()))
        }
    }
    Ok(out)
}

/// The answer to `pin`, `unpin` or `delete`: `what` done, to which artifact.
fn changed(what: &str, done: anyhow::Result<ArtifactInfo>) -> Result<Value, Failure> {
    let info = done.map_err(not_found)?;
    Ok(json!({ what: true, "uri": info.uri, "size": info.size, "sha256": info.sha256 }))
}

/// A store error naming an artifact it cannot find.
fn not_found(e: anyhow::Error) -> Failure {
    Failure::new(ErrorKind::NotFound, format!("{e:#}"))
}
