//! Host tools: not sandboxed, because they *are* the host — they read its own state (tool list,
//! artifacts, audit log, plugins, jobs). Only `jobs` reaches outside, and only through the
//! capabilities, under the grants of the plugin that started the job.

mod artifacts;
mod audit;
mod help;
mod jobs;
mod plugins;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::caps::{CallCtx, CapEvent};
use crate::flags::Flags;
use crate::router::{Failure, Router};
use crate::tool::{Annotations, ProgressFn, ToolSpec};

/// What a host tool knows of the call it serves.
pub struct HostCall {
    /// The call's trace id.
    pub trace_id: String,
    /// The call's deadline, from now.
    pub timeout: Duration,
    /// Where progress goes, if the client asked.
    pub progress: Option<ProgressFn>,
    /// Capability events, for the call's audit record.
    pub events: Arc<Mutex<Vec<CapEvent>>>,
    started: std::time::Instant,
}

impl HostCall {
    /// A call starting now.
    pub fn new(trace_id: &str, timeout: Duration, progress: Option<ProgressFn>) -> Self {
        Self {
            trace_id: trace_id.into(),
            timeout,
            progress,
            events: Default::default(),
            started: std::time::Instant::now(),
        }
    }

    /// A capability context acting for `plugin`: its grants apply, its events are this call's.
    fn ctx(&self, router: &Router, plugin: &str) -> CallCtx {
        let left = self.timeout.saturating_sub(self.started.elapsed());
        let mut ctx = router.call_ctx(
            plugin,
            "jobs",
            self.trace_id.clone(),
            left,
            self.progress.clone(),
        );
        ctx.events = self.events.clone();
        ctx
    }
}

const READ_ONLY: Annotations = Annotations {
    read_only: true,
    destructive: false,
    idempotent: true,
    open_world: false,
};

/// `jobs` reaches targets and `cancel` stops processes.
const JOBS: Annotations = Annotations {
    read_only: false,
    destructive: true,
    idempotent: false,
    open_world: true,
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
        ToolSpec {
            annotations: JOBS,
            ..spec::<jobs::Args>("jobs", "Background jobs", jobs::DESCRIPTION)
        },
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
pub async fn call(
    router: &Router,
    name: &str,
    args: Value,
    host: &HostCall,
) -> Result<Value, Failure> {
    match name {
        "help" => help::run(router, parse(args)?),
        "artifacts" => artifacts::run(router, parse(args)?).await,
        "audit" => audit::run(router, parse(args)?, host),
        "plugins" => plugins::run(router, parse(args)?),
        "jobs" => jobs::run(router, parse(args)?, host).await,
        other => Err(Failure::new("not-found", format!("no host tool '{other}'"))),
    }
}
