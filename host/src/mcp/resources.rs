//! MCP resources: the artifact store, listed and read through the `artifacts` tool.
//!
//! Every `resources/list` and `resources/read` is an ordinary `artifacts` call through the
//! [`Dispatch`], so the router validates, scrubs and audits it exactly as it would an agent's
//! `artifacts list` / `artifacts get`.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use rmcp::model::{ErrorData, ReadResourceResult, Resource, ResourceContents};
use serde_json::{Map, Value, json};

use super::{ToolError, call_as_front};
use crate::tool::Dispatch;

/// How many artifacts `resources/list` shows (newest first); `artifacts list` pages further.
pub const LIST_LIMIT: usize = 100;

/// The most one `resources/read` returns; a larger artifact is read by range.
pub const MAX_READ: u64 = 256 * 1024;

/// Bytes per `artifacts get`: small enough that, even base64-encoded in its envelope, the answer
/// stays under the router's default inline cap (64 KiB) and is never spilled to a new artifact.
const CHUNK: u64 = 32 * 1024;

/// The smallest chunk tried when a policy's inline cap is lower than the default.
const MIN_CHUNK: u64 = 1024;

/// The range size that fits the policy's inline cap: [`CHUNK`] until an answer is spilled, then
/// halved, and kept for the session, so a small cap costs the store a few spilled answers
/// once rather than on every read.
pub struct Chunk(AtomicU64);

impl Default for Chunk {
    fn default() -> Self {
        Chunk(AtomicU64::new(CHUNK))
    }
}

/// What URIs look like.
const SCHEME: &str = "artifact://";

/// How a range is asked for, for error messages.
const RANGE_ADVICE: &str = "read a range with artifact://<id>?offset=N&length=M \
(both optional, whole bytes; length at most 262144)";

/// The newest artifacts as MCP resources.
pub async fn list<D: Dispatch>(dispatch: &D) -> Result<Vec<Resource>, ErrorData> {
    let out = call_as_front(
        dispatch,
        "artifacts",
        json!({"action": "list", "limit": LIST_LIMIT}),
    )
    .await
    .map_err(|e| e.into_error(false))?;
    let items = out["items"].as_array().cloned().unwrap_or_default();
    Ok(items.iter().filter_map(to_resource).collect())
}

/// One listed artifact as a resource: its id as the name, its description as the title.
fn to_resource(item: &Value) -> Option<Resource> {
    let text = |k: &str| item[k].as_str().unwrap_or_default();
    let uri = item["uri"].as_str()?;
    let name = uri.strip_prefix(SCHEME).unwrap_or(uri);
    let mut described = format!(
        "{} — by `{}` at {}",
        text("description"),
        text("tool"),
        text("created")
    );
    if item["pinned"] == json!(true) {
        described.push_str(" (pinned)");
    }
    let mut resource = Resource::new(uri, name).with_description(described);
    if !text("description").is_empty() {
        resource = resource.with_title(text("description"));
    }
    if !text("media_type").is_empty() {
        resource = resource.with_mime_type(text("media_type"));
    }
    if let Some(size) = item["size"].as_u64() {
        resource = resource.with_size(size);
    }
    Some(resource)
}

/// A `resources/read` URI: the artifact and the range asked for.
#[derive(Debug, PartialEq, Eq)]
struct Ranged {
    uri: String,
    offset: u64,
    length: u64,
}

/// Parses `artifact://<id>[?offset=N&length=M]`.
fn parse(raw: &str) -> Result<Ranged, ErrorData> {
    if !raw.starts_with(SCHEME) {
        return Err(ErrorData::invalid_params(
            format!(
                "uri: '{raw}' is not an artifact URI; use one that resources/list returned \
                 (artifact://<id>), and {RANGE_ADVICE}"
            ),
            None,
        ));
    }
    let (uri, query) = raw.split_once('?').unwrap_or((raw, ""));
    let mut ranged = Ranged {
        uri: uri.to_owned(),
        offset: 0,
        length: MAX_READ,
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = value.parse::<u64>().map_err(|_| {
            ErrorData::invalid_params(
                format!("uri: `{key}={value}` is not a whole number of bytes; {RANGE_ADVICE}"),
                None,
            )
        });
        match key {
            "offset" => ranged.offset = number?,
            "length" => ranged.length = number?,
            _ => {
                return Err(ErrorData::invalid_params(
                    format!("uri: unknown parameter `{key}`; {RANGE_ADVICE}"),
                    None,
                ));
            }
        }
    }
    if ranged.length > MAX_READ {
        return Err(ErrorData::invalid_params(
            format!(
                "uri: length={} is over the {MAX_READ}-byte limit of one read; {RANGE_ADVICE}",
                ranged.length
            ),
            None,
        ));
    }
    Ok(ranged)
}

/// Reads one artifact (or the range the URI names): text when the bytes are UTF-8, else a
/// base64 blob. `_meta` says the size, the range returned and, when more follows, the URI of
/// the next range.
pub async fn read<D: Dispatch>(
    dispatch: &D,
    learned: &Chunk,
    raw: &str,
) -> Result<ReadResourceResult, ErrorData> {
    let want = parse(raw)?;
    let mut bytes = Vec::new();
    let mut chunk = learned.0.load(Ordering::Relaxed);
    // Set by every answer; the loop leaves only after one.
    let mut size: u64;
    let mut media_type: String;
    loop {
        let offset = want.offset + bytes.len() as u64;
        let length = chunk.min(want.length - bytes.len() as u64);
        let out = call_as_front(
            dispatch,
            "artifacts",
            json!({"action": "get", "uri": want.uri, "offset": offset, "length": length}),
        )
        .await
        .map_err(|e| e.into_error(true))?;
        if out["truncated"] == json!(true) {
            // The policy's inline cap is lower than the chunk: the router spilled the answer.
            // Ask for less; below the floor, say what to change.
            if chunk > MIN_CHUNK {
                chunk /= 2;
                learned.0.store(chunk, Ordering::Relaxed);
                continue;
            }
            return Err(ErrorData::internal_error(
                "the policy's [limits] inline_bytes is too small to read artifacts through \
                 resources/read; raise it (the default is 65536) or use the artifacts tool",
                None,
            ));
        }
        size = out["size"].as_u64().unwrap_or_default();
        media_type = out["media_type"].as_str().unwrap_or_default().to_owned();
        let got = decode(&out)?;
        let short = (got.len() as u64) < length;
        bytes.extend_from_slice(&got);
        if short || bytes.len() as u64 >= want.length || out["more"] != json!(true) {
            break;
        }
    }
    let end = want.offset + bytes.len() as u64;
    let mut meta = Map::new();
    meta.insert("size".into(), json!(size));
    meta.insert("offset".into(), json!(want.offset));
    meta.insert("length".into(), json!(bytes.len()));
    if end < size {
        let next = format!("{}?offset={end}&length={}", want.uri, want.length);
        meta.insert("next".into(), json!(next));
    }
    let mime_type = (!media_type.is_empty()).then_some(media_type);
    let contents = match String::from_utf8(bytes) {
        Ok(text) => ResourceContents::TextResourceContents {
            uri: raw.to_owned(),
            mime_type,
            text,
            meta: Some(meta.into()),
        },
        Err(e) => ResourceContents::BlobResourceContents {
            uri: raw.to_owned(),
            mime_type,
            blob: base64::engine::general_purpose::STANDARD.encode(e.as_bytes()),
            meta: Some(meta.into()),
        },
    };
    Ok(ReadResourceResult::new(vec![contents]))
}

/// The bytes of one `artifacts get` answer (`text`, or `base64` when the range cut a character).
fn decode(out: &Value) -> Result<Vec<u8>, ErrorData> {
    if let Some(text) = out["text"].as_str() {
        return Ok(text.as_bytes().to_vec());
    }
    let encoded = out["base64"].as_str().unwrap_or_default();
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| {
            ErrorData::internal_error(
                format!("the artifacts tool answered undecodable base64 ({e}); report this bug"),
                None,
            )
        })
}

impl ToolError {
    /// As an MCP error: an artifact that is not there is `resource not found` (when reading),
    /// a bad URI is invalid params, anything else an internal error; the message keeps the
    /// tool's advice.
    fn into_error(self, reading: bool) -> ErrorData {
        let message = format!("{} (via the artifacts tool)", self.message);
        match self.kind.as_str() {
            "not-found" if reading => ErrorData::resource_not_found(message, None),
            "invalid" | "not-found" => ErrorData::invalid_params(message, None),
            _ => ErrorData::internal_error(message, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_in_the_uri_is_parsed() {
        assert_eq!(
            parse("artifact://x.txt?offset=10&length=5").unwrap(),
            Ranged {
                uri: "artifact://x.txt".into(),
                offset: 10,
                length: 5
            }
        );
        assert_eq!(parse("artifact://x.txt").unwrap().length, MAX_READ);
    }

    #[test]
    fn bad_uris_are_refused_with_advice() {
        for (uri, says) in [
            ("file:///etc/passwd", "not an artifact URI"),
            ("artifact://x?offset=-1", "offset=-1"),
            ("artifact://x?from=1", "unknown parameter `from`"),
            ("artifact://x?length=262145", "over the 262144-byte limit"),
        ] {
            let e = parse(uri).unwrap_err();
            assert!(e.message.contains(says), "{uri}: {}", e.message);
            assert!(e.message.contains("offset=N&length=M"), "{uri}: advice");
        }
    }
}
