//! Test plugin: `undeclared` calls the host's http capability, so its component imports
//! `infra:host/http` — but its plugin.toml declares only `types`. The host must refuse it at
//! load, before any of its code runs.

use infra_sdk::prelude::*;

/// Bindings of the `full` world, not of this plugin's world.wit (which `infra_sdk::plugin!` and
/// its build check would hold it to): the point is an import its manifest does not declare.
#[allow(missing_docs, dead_code, clippy::all)]
mod full {
    infra_sdk::__wit_bindgen::generate!({
        path: ["../../../wit/host", "../../../wit/plugin"],
        world: "infra:plugin/full",
        runtime_path: "::infra_sdk::__wit_bindgen::rt",
        with: { "infra:host/types@0.1.0": ::infra_sdk::caps::types },
        generate_all,
    });
}
use full::infra::host::http;

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

infra_sdk::__tools!(tools: [
    Tool::new("undeclared", "Undeclared", "Fetches a URL through an import its manifest hides.", fetch),
]);
