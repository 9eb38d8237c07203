//! Host tools: not sandboxed, because they *are* the host — they read its own state (tool list,
//! artifacts, audit log, plugins) and reach nothing outside it.

mod artifacts;
mod audit;
mod help;
mod plugins;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::flags::Flags;
use crate::router::{Failure, Router};
use crate::tool::{Annotations, ToolSpec};

const READ_ONLY: Annotations = Annotations {
    read_only: true,
    destructive: false,
    idempotent: true,
    open_world: false,
};

fn spec<A: JsonSchema>(name: &str, title: &str, description: &str) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        title: title.into(),
        description: description.into(),
        input_schema: serde_json::to_value(schemars::schema_for!(A)).unwrap_or_default(),
        output_schema: serde_json::json!({"type": "object"}),
        annotations: READ_ONLY,
        plugin: None,
    }
}

/// The host tools to list.
pub fn specs(_flags: Flags) -> Vec<ToolSpec> {
    vec![
        spec::<help::Args>("help", "Help", help::DESCRIPTION),
        spec::<artifacts::Args>("artifacts", "Artifacts", artifacts::DESCRIPTION),
        spec::<audit::Args>("audit", "Audit log", audit::DESCRIPTION),
        spec::<plugins::Args>("plugins", "Plugins", plugins::DESCRIPTION),
    ]
}

/// Parses host-tool arguments (already validated against the schema; this only types them).
fn parse<A: DeserializeOwned>(mut args: Value) -> Result<A, Failure> {
    if let Some(o) = args.as_object_mut() {
        o.remove("timeout_ms");
        o.remove("trace_id");
    }
    serde_json::from_value(args).map_err(|e| {
        Failure::invalid(
            "arguments",
            format!("{e}; `help` with {{\"tool\": …}} shows the schema"),
        )
    })
}

/// Runs a host tool.
pub async fn call(router: &Router, name: &str, args: Value) -> Result<Value, Failure> {
    match name {
        "help" => help::run(router, parse(args)?),
        "artifacts" => artifacts::run(router, parse(args)?).await,
        "audit" => audit::run(router, parse(args)?),
        "plugins" => plugins::run(router, parse(args)?),
        other => Err(Failure::new("not-found", format!("no host tool '{other}'"))),
    }
}
