//! Shapes what the host returned into what an agent reads.

use std::collections::BTreeMap;

use crate::caps::http::{DownloadResult as Download, Response};
use crate::caps::types::CapError;
use base64::Engine as _;
use infra_sdk::prelude::*;

use crate::args::ResponseType;

/// The result of every `http` action; fields appear where the action fills them.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct HttpOutput {
    /// HTTP status code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Response headers (lower-case names; repeated headers joined with ", ").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// The body parsed as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    /// The body as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The body as base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
    /// Bytes of body received (at most `max_bytes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The body was cut at `max_bytes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    /// The URL that answered, after redirects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_url: Option<String>,
    /// Redirects followed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirects: Option<u32>,
    /// Attempts made (more than 1 when retried).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// `check`: whether the endpoint is healthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// `check`: round-trip time in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// `check`: why it is not healthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<String>>,
    /// `paginate`: the items collected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<Value>>,
    /// `paginate`: pages fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<u32>,
    /// `paginate`: where the next page would be, when the bound stopped it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// `download`: the stored body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// Set when the host applied a smaller `max_bytes` than asked: which, and the limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clamped: Option<String>,
}

/// The note to give when the host applied a smaller cap than the agent asked for.
pub fn clamp_note(asked: Option<u64>, applied: u64, limit: &str) -> Option<String> {
    asked
        .filter(|a| *a > applied)
        .map(|a| format!("max_bytes {a} was clamped to {applied}, the host's limits.{limit}"))
}

/// Headers as a map, lower-case names, repeated values joined.
pub fn header_map(headers: &[infra_sdk::caps::types::KeyValue]) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for h in headers {
        map.entry(h.key.to_ascii_lowercase())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&h.value);
            })
            .or_insert_with(|| h.value.clone());
    }
    map
}

/// A body decoded for the agent.
pub enum Decoded {
    /// Parsed JSON.
    Json(Value),
    /// UTF-8 text.
    Text(String),
    /// Raw bytes as base64.
    Base64(String),
}

impl Decoded {
    /// Puts the body into the field of `out` it belongs to.
    fn fill(self, out: &mut HttpOutput) {
        match self {
            Decoded::Json(j) => out.json = Some(j),
            Decoded::Text(t) => out.text = Some(t),
            Decoded::Base64(b) => out.body_base64 = Some(b),
        }
    }
}

/// Decodes a body the way `response_type` asks.
pub fn decode_body(
    body: Vec<u8>,
    content_type: Option<&str>,
    kind: ResponseType,
    truncated: bool,
) -> Result<Decoded, ToolError> {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    match kind {
        ResponseType::Json => serde_json::from_slice(&body)
            .map(Decoded::Json)
            .map_err(|e| {
                let hint = if truncated {
                    " (the body was truncated: raise `max_bytes`)"
                } else {
                    ""
                };
                ToolError::failed(format!(
                    "the body is not JSON: {e}{hint}; use response_type \"text\" to see it"
                ))
            }),
        ResponseType::Text => Ok(Decoded::Text(String::from_utf8_lossy(&body).into_owned())),
        ResponseType::Base64 => Ok(Decoded::Base64(b64(&body))),
        ResponseType::Auto => {
            let says_json = content_type.is_some_and(|c| c.contains("json"));
            if says_json
                && !truncated
                && let Ok(j) = serde_json::from_slice(&body)
            {
                return Ok(Decoded::Json(j));
            }
            match String::from_utf8(body) {
                Ok(text) => Ok(Decoded::Text(text)),
                Err(e) => Ok(Decoded::Base64(b64(e.as_bytes()))),
            }
        }
    }
}

/// The output of `request`; `asked` is the agent's `max_bytes`.
pub fn response(
    resp: Response,
    kind: Option<ResponseType>,
    asked: Option<u64>,
) -> Result<HttpOutput, ToolError> {
    let headers = header_map(&resp.headers);
    let clamped = clamp_note(asked, resp.max_bytes, "capture_bytes");
    let bytes = resp.body.len() as u64;
    let decoded = decode_body(
        resp.body,
        headers.get("content-type").map(String::as_str),
        kind.unwrap_or_default(),
        resp.truncated,
    )?;
    let mut out = HttpOutput {
        status: Some(resp.status),
        headers: Some(headers),
        bytes: Some(bytes),
        truncated: Some(resp.truncated),
        final_url: Some(resp.final_url),
        redirects: Some(resp.redirects),
        attempts: Some(resp.attempts),
        clamped,
        ..Default::default()
    };
    decoded.fill(&mut out);
    Ok(out)
}

/// The output of `check`: a denial or failure is an unhealthy result, not an error, so that a
/// health check of many endpoints reads as one table.
pub fn check(
    resp: Result<Response, CapError>,
    expect_status: Option<&[u16]>,
    contains: Option<&str>,
    latency_ms: u64,
) -> HttpOutput {
    let mut problems = Vec::new();
    let mut out = HttpOutput {
        latency_ms: Some(latency_ms),
        ..Default::default()
    };
    match resp {
        Err(e) => problems.push(ToolError::from(e).to_string()),
        Ok(r) => {
            let expected = match expect_status {
                Some(list) => list.contains(&r.status),
                None => (200..400).contains(&r.status),
            };
            if !expected {
                problems.push(format!("status {} is not expected", r.status));
            }
            if let Some(needle) = contains
                && !String::from_utf8_lossy(&r.body).contains(needle)
            {
                problems.push(format!("body does not contain {needle:?}"));
            }
            out.status = Some(r.status);
            out.final_url = Some(r.final_url);
            out.attempts = Some(r.attempts);
        }
    }
    out.healthy = Some(problems.is_empty());
    out.problems = Some(problems);
    out
}

/// The output of `download`; `asked` is the agent's `max_bytes`.
pub fn download(d: Download, asked: Option<u64>) -> HttpOutput {
    HttpOutput {
        clamped: clamp_note(asked, d.max_bytes, "artifact_bytes"),
        status: Some(d.status),
        headers: Some(header_map(&d.headers)),
        bytes: Some(d.artifact.size),
        final_url: Some(d.final_url),
        artifact: Some(d.artifact.into()),
        ..Default::default()
    }
}
