//! Test plugin: `noop` answers at once, so a call measures only the sandbox around it.

use infra_sdk::prelude::*;

/// No arguments.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {}

/// Always `{"pong": true}`.
#[derive(Serialize, JsonSchema)]
struct Pong {
    pong: bool,
}

fn noop(_: Args, _: &Ctx) -> Result<Pong, ToolError> {
    Ok(Pong { pong: true })
}

infra_sdk::plugin!(tools: [Tool::new("noop", "No-op", "Does nothing.", noop).read_only().idempotent()]);
