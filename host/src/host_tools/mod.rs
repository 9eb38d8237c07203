//! Host tools: not sandboxed, because they *are* the host — they read its own state (tool list,
//! artifacts, audit log, plugins, jobs). Only `jobs` reaches outside, and only through the
//! capabilities, under the grants of the plugin that started the job.

mod artifacts;
mod audit;
mod help;
mod intent;
mod jobs;
mod plugins;
mod runbook;
mod state;

pub use intent::call as run_intent;
pub use runbook::{RunCall, run as run_runbook};

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::caps::{CallCtx, CapEvent, Shared};
use crate::error_kind::ErrorKind;
use crate::failure::Failure;
use crate::flags::Flags;
use crate::runtime::{CacheStats, Plugin, Refused};
use crate::tool::{Annotations, ProgressFn, ToolSpec};

/// What host tools may see of the host, lent by the router for one call: nothing that runs
/// plugins or writes the audit log.
pub struct HostView<'a> {
    /// The tools as listed (`help`).
    pub tools: &'a [ToolSpec],
    /// The loaded plugins (`plugins`).
    pub plugins: &'a [Plugin],
    /// The plugins refused at load, with the reason (`plugins`).
    pub refused: &'a [Refused],
    /// Policy, flags, the artifact store and the jobs registry; `jobs` also acts through the
    /// capabilities with it.
    pub shared: &'a Arc<Shared>,
    /// The audit log file (`audit`).
    pub audit_log: PathBuf,
    /// Compile-cache hits and misses (`plugins`).
    pub cache: CacheStats,
}

/// What a host tool knows of the call it serves.
pub struct HostCall {
    /// The tool called.
    pub tool: String,
    /// The call's trace id.
    pub trace_id: String,
    /// The call's deadline, from when it started.
    pub timeout: Duration,
    /// Where progress goes, if the client asked.
    pub progress: Option<ProgressFn>,
    /// Capability events, for the call's audit record.
    pub events: Arc<Mutex<Vec<CapEvent>>>,
    started: Instant,
}

impl HostCall {
    /// A call of `tool` starting now, its capability events collecting in `events`.
    pub fn new(
        tool: &str,
        trace_id: &str,
        timeout: Duration,
        progress: Option<ProgressFn>,
        events: Arc<Mutex<Vec<CapEvent>>>,
    ) -> Self {
        Self {
            tool: tool.into(),
            trace_id: trace_id.into(),
            timeout,
            progress,
            events,
            started: Instant::now(),
        }
    }

    /// A capability context acting for `plugin`: its grants apply, its events are this call's,
    /// its deadline what is left of this call's.
    fn ctx(&self, shared: &Arc<Shared>, plugin: &str) -> CallCtx {
        CallCtx::new(
            plugin,
            &self.tool,
            self.trace_id.clone(),
            Instant::now() + self.timeout.saturating_sub(self.started.elapsed()),
            shared.clone(),
        )
        .with_events(self.events.clone())
        .with_progress(self.progress.clone())
    }
}

const READ_ONLY: Annotations = Annotations {
    read_only: true,
    destructive: false,
    idempotent: true,
    open_world: false,
};

/// A runbook's steps may be any tools, writes included (each still guarded).
const RUNBOOK: Annotations = Annotations {
    read_only: false,
    destructive: true,
    idempotent: false,
    open_world: true,
};

/// `state` writes its own values, nothing outside the host.
const STATE: Annotations = Annotations {
    read_only: false,
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
        ToolSpec {
            annotations: RUNBOOK,
            ..spec::<runbook::Args>("runbook", "Runbooks", runbook::DESCRIPTION)
        },
        ToolSpec {
            annotations: RUNBOOK,
            ..spec::<intent::Args>("intent", "Intents", intent::DESCRIPTION)
        },
        ToolSpec {
            annotations: STATE,
            ..spec::<state::Args>("state", "State", state::DESCRIPTION)
        },
    ]
}

/// Parses host-tool arguments (already validated against the schema; this only types them).
pub(crate) fn parse<A: DeserializeOwned>(mut args: Value) -> Result<A, Failure> {
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
    host: &HostView<'_>,
    name: &str,
    args: Value,
    call: &HostCall,
) -> Result<Value, Failure> {
    match name {
        "help" => help::run(host, parse(args)?),
        "artifacts" => artifacts::run(host, parse(args)?).await,
        "audit" => audit::run(host, parse(args)?, call),
        "plugins" => plugins::run(host, parse(args)?),
        "jobs" => jobs::run(host, parse(args)?, call).await,
        "state" => state::run(host, parse(args)?),
        "runbook" => runbook::tool(host, parse(args)?),
        other => Err(Failure::new(
            ErrorKind::NotFound,
            format!("no host tool '{other}'"),
        )),
    }
}
