//! An infra plugin with one tool, `plugin_template`: it fetches a URL through the host's `http`
//! capability and reports the status, size, content type and first line of the body.
//!
//! The plugin runs in a sandbox with no network of its own: the request is made by the host,
//! which first checks the policy (`[plugin.plugin_template.http] hosts`). Without that grant the
//! call comes back as a `denied` error that names the line to add.

use crate::caps::http;
use infra_sdk::prelude::*;

/// The tool's arguments; the input JSON Schema is generated from this type (doc comments become
/// field descriptions, `deny_unknown_fields` makes the host refuse unknown fields).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FetchArgs {
    /// Absolute http:// or https:// URL; its host must be granted by the policy.
    url: String,
}

/// The tool's result; the output JSON Schema is generated from this type.
#[derive(Serialize, JsonSchema)]
struct Fetched {
    /// HTTP status code.
    status: u16,
    /// Bytes of body received (at most 64 KiB are read).
    bytes: usize,
    /// The `content-type` response header, when the server sent one.
    content_type: Option<String>,
    /// The first line of the body, as text.
    first_line: String,
}

fn fetch(args: FetchArgs, ctx: &Ctx) -> Result<Fetched, ToolError> {
    if !(args.url.starts_with("http://") || args.url.starts_with("https://")) {
        return Err(ToolError::invalid(
            "url",
            "give an absolute http:// or https:// URL",
        ));
    }
    // `?` turns a capability error into a tool error: a policy denial reaches the agent as a
    // `denied` result carrying the host's advice.
    let response = http::send(&http::Request {
        method: "GET".into(),
        url: args.url,
        headers: Vec::new(),
        body: None,
        profile: None,
        timeout_ms: ctx.timeout_ms,
        max_bytes: 64 * 1024,
        max_redirects: 3,
        retries: 1,
    })?;
    let content_type = response
        .headers
        .iter()
        .find(|h| h.key.eq_ignore_ascii_case("content-type"))
        .map(|h| h.value.clone());
    let text = String::from_utf8_lossy(&response.body);
    Ok(Fetched {
        status: response.status,
        bytes: response.body.len(),
        content_type,
        first_line: text.lines().next().unwrap_or_default().to_string(),
    })
}

infra_sdk::plugin!(tools: [
    Tool::new(
        "plugin_template",
        "Fetch a URL",
        "GET one URL through the host and report its status, size, content type and first line.",
        fetch,
    )
    .read_only()
    .idempotent()
    .open_world(),
]);
