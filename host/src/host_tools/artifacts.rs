//! `artifacts`: list stored outputs and read them by range.

use base64::Engine as _;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::HostView;
use crate::error_kind::ErrorKind;
use crate::failure::Failure;

pub const DESCRIPTION: &str = "Stored outputs (artifact:// URIs): `list` newest first (with the \
store's usage against its quota); `get` a byte range (offset, length); `head`/`tail` the first/last \
bytes; `pin`/`unpin` (the oldest unpinned artifacts are removed when the store is full); `delete`. \
Every answer carries size and sha256.";

/// Largest range returned inline.
const MAX_INLINE: u64 = 256 * 1024;

/// What to do.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Artifacts, newest first.
    List,
    /// A byte range.
    Get,
    /// The first `length` bytes.
    Head,
    /// The last `length` bytes.
    Tail,
    /// Keep it when the store makes room.
    Pin,
    /// Let the store remove it when it makes room (oldest first).
    Unpin,
    /// Remove it now.
    Delete,
}

/// Arguments of `artifacts`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// `list`, `get`, `head`, `tail`, `pin`, `unpin` or `delete`.
    pub action: Action,
    /// The `artifact://` URI (all but list).
    pub uri: Option<String>,
    /// `get`: first byte (default 0).
    pub offset: Option<u64>,
    /// Bytes to return (default 16384, at most 262144).
    pub length: Option<u64>,
    /// `list`: how many (default 50).
    pub limit: Option<usize>,
}

pub async fn run(host: &HostView<'_>, args: Args) -> Result<Value, Failure> {
    let store = &host.shared.artifacts;
    if let Action::List = args.action {
        let list = store.list(args.limit.unwrap_or(50)).await?;
        return Ok(json!({ "items": list, "usage": store.usage()? }));
    }
    let uri = args.uri.ok_or_else(|| {
        Failure::invalid("uri", "missing: give the artifact:// URI (list shows them)")
    })?;
    let changed = match args.action {
        Action::Pin => Some(("pinned", store.pin(&uri, true).await)),
        Action::Unpin => Some(("unpinned", store.pin(&uri, false).await)),
        Action::Delete => Some(("deleted", store.delete(&uri).await)),
        _ => None,
    };
    if let Some((what, done)) = changed {
        let info = done.map_err(|e| Failure::new(ErrorKind::NotFound, format!("{e:#}")))?;
        return Ok(
            json!({ what: true, "uri": info.uri, "size": info.size, "sha256": info.sha256 }),
        );
    }
    let info = store
        .info(&uri)
        .await
        .map_err(|e| Failure::new(ErrorKind::NotFound, format!("{e:#}")))?;
    let length = args.length.unwrap_or(16 * 1024).min(MAX_INLINE);
    let offset = match args.action {
        Action::Head | Action::List | Action::Pin | Action::Unpin | Action::Delete => 0,
        Action::Get => args.offset.unwrap_or(0),
        Action::Tail => info.size.saturating_sub(length),
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
