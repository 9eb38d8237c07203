//! `[limits]`: resource limits for plugin calls, their defaults and their load-time checks.

use serde::Deserialize;

use super::error::{Doc, PolicyError};

/// The largest linear memory a wasm32 instance can address, in MiB.
pub(super) const MAX_MEMORY_MIB: u64 = 4096;

/// Resource limits for plugin calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// Default per-call deadline.
    pub timeout_ms: u64,
    /// A call's own `timeout_ms` is clamped to this.
    pub max_timeout_ms: u64,
    /// Linear memory per plugin instance.
    pub memory_mib: u64,
    /// Most bytes a plugin may return from one call.
    pub output_bytes: u64,
    /// Results larger than this are spilled to an artifact with a preview.
    pub inline_bytes: u64,
    /// Most bytes of one response body or output stream a capability keeps in host memory; an
    /// agent's `max_bytes` / `max_output` is clamped to it.
    pub capture_bytes: u64,
    /// Most bytes of one stored artifact (a download, a spilled stream, a COPY); an agent's size
    /// argument is clamped to it.
    pub artifact_bytes: u64,
    /// Most bytes the artifact store may hold; oldest unpinned artifacts go first.
    pub artifacts_quota_bytes: u64,
    /// Most artifacts the store may hold; oldest unpinned artifacts go first.
    pub artifacts_quota_count: u64,
    /// Most tool calls one server runs at once; more are refused as busy.
    pub calls_in_flight: u64,
    /// Most calls of one plugin that run at once; more are refused as busy.
    pub plugin_calls_in_flight: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout_ms: 30_000,
            max_timeout_ms: 600_000,
            memory_mib: 64,
            output_bytes: 4 * 1024 * 1024,
            inline_bytes: 64 * 1024,
            capture_bytes: 16 * 1024 * 1024,
            artifact_bytes: 2 * 1024 * 1024 * 1024,
            artifacts_quota_bytes: 10 * 1024 * 1024 * 1024,
            artifacts_quota_count: 10_000,
            calls_in_flight: 64,
            plugin_calls_in_flight: 32,
        }
    }
}

/// `[limits]` as serde reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    timeout_ms: Option<u64>,
    max_timeout_ms: Option<u64>,
    memory_mib: Option<u64>,
    output_bytes: Option<u64>,
    inline_bytes: Option<u64>,
    capture_bytes: Option<u64>,
    artifact_bytes: Option<u64>,
    artifacts_quota_bytes: Option<u64>,
    artifacts_quota_count: Option<u64>,
    calls_in_flight: Option<u64>,
    plugin_calls_in_flight: Option<u64>,
}

/// `[limits]`: every value positive, and consistent with the others.
pub(super) fn load(doc: &Doc<'_>, raw: Option<RawLimits>) -> Result<Limits, PolicyError> {
    let d = Limits::default();
    let Some(raw) = raw else { return Ok(d) };
    let l = Limits {
        timeout_ms: raw.timeout_ms.unwrap_or(d.timeout_ms),
        max_timeout_ms: raw.max_timeout_ms.unwrap_or(d.max_timeout_ms),
        memory_mib: raw.memory_mib.unwrap_or(d.memory_mib),
        output_bytes: raw.output_bytes.unwrap_or(d.output_bytes),
        inline_bytes: raw.inline_bytes.unwrap_or(d.inline_bytes),
        capture_bytes: raw.capture_bytes.unwrap_or(d.capture_bytes),
        artifact_bytes: raw.artifact_bytes.unwrap_or(d.artifact_bytes),
        artifacts_quota_bytes: raw.artifacts_quota_bytes.unwrap_or(d.artifacts_quota_bytes),
        artifacts_quota_count: raw.artifacts_quota_count.unwrap_or(d.artifacts_quota_count),
        calls_in_flight: raw.calls_in_flight.unwrap_or(d.calls_in_flight),
        plugin_calls_in_flight: raw
            .plugin_calls_in_flight
            .unwrap_or(d.plugin_calls_in_flight),
    };
    let p = ["limits"];
    for (key, v) in [
        ("timeout_ms", l.timeout_ms),
        ("max_timeout_ms", l.max_timeout_ms),
        ("memory_mib", l.memory_mib),
        ("output_bytes", l.output_bytes),
        ("inline_bytes", l.inline_bytes),
        ("capture_bytes", l.capture_bytes),
        ("artifact_bytes", l.artifact_bytes),
        ("artifacts_quota_bytes", l.artifacts_quota_bytes),
        ("artifacts_quota_count", l.artifacts_quota_count),
        ("calls_in_flight", l.calls_in_flight),
        ("plugin_calls_in_flight", l.plugin_calls_in_flight),
    ] {
        if v == 0 {
            return Err(doc.invalid(&p, Some(key), None, "0 would make every call fail; give a positive number or remove the key for the default".into()));
        }
    }
    if l.timeout_ms > l.max_timeout_ms {
        return Err(doc.invalid(
            &p,
            Some("timeout_ms"),
            None,
            format!(
                "{} exceeds max_timeout_ms = {}; lower it or raise max_timeout_ms",
                l.timeout_ms, l.max_timeout_ms
            ),
        ));
    }
    if l.memory_mib > MAX_MEMORY_MIB {
        return Err(doc.invalid(
            &p,
            Some("memory_mib"),
            None,
            format!(
                "{} MiB is more than a wasm32 instance can address; give at most {MAX_MEMORY_MIB}",
                l.memory_mib
            ),
        ));
    }
    if l.inline_bytes > l.output_bytes {
        return Err(doc.invalid(&p, Some("inline_bytes"), None, format!(
                "{} exceeds output_bytes = {}, so nothing could ever spill to an artifact; keep inline_bytes at or below output_bytes",
                l.inline_bytes, l.output_bytes
            )));
    }
    Ok(l)
}
