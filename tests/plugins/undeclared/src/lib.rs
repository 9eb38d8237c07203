//! Test plugin: `undeclared` calls the host's http capability, so its component imports
//! `infra:host/http` — but its plugin.toml declares only `types`. The host must refuse it at
//! load, before any of its code runs.

use infra_sdk::caps::http;
use infra_sdk::prelude::*;

/// Arguments of `undeclared`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    /// The URL to fetch.
    url: String,
}

/// What came back.
#[derive(Serialize, JsonSchema)]
struct Fetched {
    /// HTTP status.
    status: u16,
}

fn fetch(args: Args, ctx: &Ctx) -> Result<Fetched, ToolError> {
    let resp = http::send(&http::Request {
        method: "GET".into(),
        url: args.url,
        headers: Vec::new(),
        body: None,
        profile: None,
        timeout_ms: ctx.timeout_ms,
        max_bytes: 1024,
        max_redirects: 0,
        retries: 0,
    })?;
    Ok(Fetched {
        status: resp.status,
    })
}

infra_sdk::plugin!(tools: [
    Tool::new("undeclared", "Undeclared", "Fetches a URL through an import its manifest hides.", fetch),
]);
