//! The router: every call from every front passes here. It resolves the tool, validates the
//! arguments against the schema (bad input is an `isError` result that says what to fix, never
//! a crash), runs a host tool or a plugin in a fresh sandbox, wraps the result in the common
//! envelope, scrubs secrets and spills large output to an artifact. The audit log brackets the
//! call: its begin record is durable before the call may use any capability (else the call does
//! not run), and a call whose end record cannot be written is not reported as a success.
//!
//! The host it routes to is built by [`crate::bootstrap`]; here `admit` loads its plugins,
//! `envelope` wraps results, `spill` moves large ones out and `listing` makes the listed
//! schemas.

mod admit;
mod envelope;
mod ids;
mod listing;
mod spill;
mod timeout;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::admission::Admission;
use crate::audit::{AuditEntry, AuditLog, Outcome};
use crate::bootstrap::{self, Host};
use crate::caps::{CallCtx, Shared};
use crate::error_kind::ErrorKind;
use crate::failure::Failure;
use crate::flags::Flags;
use crate::runtime::{CallError, CallLimits, Plugin, Refused, Runtime};
use crate::state::StateDir;
use crate::tool::{CallRequest, CallResult, Dispatch, ToolSpec};
use crate::{host_tools, validate};
use envelope::{Events, Label, Unfinished};
pub use ids::new_trace_id;

/// Everything a call needs: the runtime and its plugins, host state, the audit log.
pub struct Router {
    runtime: Runtime,
    plugins: Vec<Plugin>,
    refused: Vec<Refused>,
    shared: Arc<Shared>,
    audit: Arc<AuditLog>,
    state: StateDir,
    /// The listed tools, built once after loading (schemas with the common fields and envelope).
    tools: Vec<ToolSpec>,
    /// Caps on plugin calls running at once.
    admission: Admission,
}

impl Router {
    /// Opens the state directory, loads the policy, profiles and every plugin.
    pub async fn open(state: StateDir, flags: Flags) -> anyhow::Result<Self> {
        Ok(Self::new(bootstrap::build(state, flags)?).await)
    }

    /// Admits the host's plugins and lists the tools.
    pub async fn new(host: Host) -> Self {
        let admitted =
            admit::admit_all(&host.runtime, &host.shared, &host.audit, host.candidates).await;
        let tools = listing::build_tools(
            host_tools::specs(host.shared.flags),
            &admitted.plugins,
            host.shared.flags,
        );
        Self {
            runtime: host.runtime,
            plugins: admitted.plugins,
            refused: admitted.refused,
            shared: host.shared,
            audit: host.audit,
            state: host.state,
            tools,
            admission: host.admission,
        }
    }

    /// The capability context of one call of `tool`, acting for `plugin`.
    pub(crate) fn call_ctx(
        &self,
        plugin: &str,
        tool: &str,
        trace_id: String,
        timeout: Duration,
        progress: Option<crate::tool::ProgressFn>,
    ) -> CallCtx {
        CallCtx::new(
            plugin,
            tool,
            trace_id,
            Instant::now() + timeout,
            self.shared.clone(),
        )
        .with_progress(progress)
    }

    /// The loaded plugins.
    pub fn plugins(&self) -> &[Plugin] {
        &self.plugins
    }

    /// Plugins that were refused at load, with the reason.
    pub fn refused(&self) -> &[Refused] {
        &self.refused
    }

    /// Host-wide state (policy, flags, profiles, stores).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The runtime (for cache statistics).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The state directory.
    pub fn state(&self) -> &StateDir {
        &self.state
    }

    /// The artifact store.
    pub fn artifacts(&self) -> &crate::artifacts::ArtifactStore {
        &self.shared.artifacts
    }

    /// What host tools may see of the host.
    fn host_view(&self) -> host_tools::HostView<'_> {
        host_tools::HostView {
            tools: &self.tools,
            plugins: &self.plugins,
            refused: &self.refused,
            shared: &self.shared,
            audit_log: self.state.audit(),
            cache: self.runtime.cache_stats(),
        }
    }

    /// Runs the tool; its capability events go into `events` as they happen, so that a call
    /// cancelled midway still has the ones that already did.
    async fn run(
        &self,
        spec: &ToolSpec,
        args: Value,
        trace_id: &str,
        timeout: Duration,
        front: FrontHooks,
        events: Events,
    ) -> Result<Value, Failure> {
        let FrontHooks { progress, ask } = front;
        // A runbook's steps are calls through this router, so it runs here, not as a plain
        // host tool.
        let runs = spec.name == "intent" || (spec.name == "runbook" && args["action"] == "run");
        if spec.plugin.is_none() && runs {
            let call = host_tools::RunCall {
                d: self,
                shared: &self.shared,
                tools: &self.tools,
                trace_id,
                deadline: Instant::now() + timeout,
                progress,
                ask,
            };
            return match spec.name.as_str() {
                "intent" => host_tools::run_intent(call, args).await,
                _ => host_tools::run_runbook(call, args).await,
            };
        }
        let Some(plugin_name) = &spec.plugin else {
            let call = host_tools::HostCall::new(&spec.name, trace_id, timeout, progress, events);
            return host_tools::call(&self.host_view(), &spec.name, args, &call).await;
        };
        let Some(plugin) = self
            .plugins
            .iter()
            .find(|p| &p.manifest.name == plugin_name)
        else {
            return Err(Failure::new(
                ErrorKind::Failed,
                format!("plugin '{plugin_name}' is not loaded"),
            ));
        };
        // Refused at once when full, before any capability is touched: an agent that fires calls
        // faster than they finish gets told, rather than queueing without bound.
        let _ticket = match self.admission.admit(plugin_name) {
            Ok(t) => t,
            Err(busy) => return Err(Failure::new(ErrorKind::Busy, busy.to_string())),
        };
        let policy = &self.shared.policy;
        let limits = CallLimits {
            timeout,
            memory_bytes: policy.memory_mib(plugin_name) << 20,
            output_bytes: policy.limits().output_bytes as usize,
        };
        let mut ctx = self.call_ctx(
            plugin_name,
            &spec.name,
            trace_id.to_string(),
            timeout,
            progress,
        );
        ctx.events = events;
        let ctx = ctx.with_guard(crate::caps::guard::CallGuard::new(&args, ask));
        let result = self
            .runtime
            .call(plugin, &spec.name, &args.to_string(), ctx, limits)
            .await;
        match result {
            Ok(text) => serde_json::from_str::<Value>(&text).map_err(|e| {
                Failure::new(
                    ErrorKind::Failed,
                    format!("plugin '{plugin_name}' returned invalid JSON: {e}"),
                )
            }),
            Err(CallError::Tool {
                kind,
                message,
                field,
                detail,
            }) => Err(Failure {
                kind,
                message,
                field,
                detail,
            }),
            Err(e) => Err(Failure::new(e.kind(), e.to_string())),
        }
    }
}

impl Dispatch for Router {
    fn tools(&self) -> Vec<ToolSpec> {
        self.tools.clone()
    }

    async fn call(&self, request: CallRequest) -> CallResult {
        let started = Instant::now();
        let mut args = match request.args {
            Value::Null => json!({}),
            v => v,
        };
        let trace_id = args
            .get("trace_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(new_trace_id);
        // The names of the tool infra replaces become infra's here, once; what was sent is kept
        // for the audit record.
        let locate = |dir: &std::path::Path| crate::caps::roots::locate(&self.shared, dir);
        let (tool_name, sent, dropped) =
            match crate::compat::resolve_in(&request.tool, &mut args, &locate) {
                Ok((t, sent)) => (t, sent, None),
                Err(d) => (request.tool.clone(), None, Some(d)),
            };
        let action = args
            .get("action")
            .and_then(Value::as_str)
            .map(str::to_string);
        let label = Label {
            tool: &tool_name,
            action: &action,
            trace_id: &trace_id,
            started,
        };
        let redactor = &self.shared.redactor;
        let tools = &self.tools;
        let spec = tools.iter().find(|t| t.name == tool_name);
        // A tool of a plugin that is off (`unsafe = true` without the flag) is not listed, but a
        // call by name is answered with why, and audited under that plugin like any call.
        let gated = match spec {
            None => crate::runtime::gated_tool(&self.plugins, &tool_name, self.shared.flags),
            Some(_) => None,
        };
        // Everything that needs no capability is settled before the begin record, so that it
        // shows the arguments the call runs with.
        let prepared = match (spec, &gated) {
            _ if dropped.is_some() => Err(Failure {
                field: Some(
                    dropped
                        .as_ref()
                        .and_then(|d| d.field.clone())
                        .unwrap_or_else(|| "action".into()),
                ),
                ..Failure::new(
                    ErrorKind::NotFound,
                    dropped.as_ref().map(|d| d.to_string()).unwrap_or_default(),
                )
            }),
            (None, Some((_, why))) => Err(Failure::new(
                ErrorKind::Denied,
                format!("tool `{tool_name}` is off: {why}"),
            )),
            (None, None) => Err(unknown_tool(&request.tool, tools)),
            (Some(spec), _) => {
                match validate::validate_args(&spec.name, &spec.input_schema, &args) {
                    Err(e) => Err(Failure::invalid(e.field.clone(), e.message.clone())),
                    Ok(()) => {
                        let timeout = timeout::timeout_for(&self.shared.policy, spec, &args);
                        if let Some(o) = args.as_object_mut() {
                            o.remove("trace_id");
                            o.insert("timeout_ms".into(), json!(timeout.as_millis() as u64));
                        }
                        Ok((spec, timeout))
                    }
                }
            }
        };
        let plugin = spec
            .and_then(|s| s.plugin.clone())
            .or_else(|| gated.map(|(p, _)| p.manifest.name.clone()));
        let mut begin = AuditEntry::begin(&ids::new_call_id(), &trace_id, &tool_name);
        begin.action = action.clone();
        begin.plugin_sha256 = plugin
            .as_ref()
            .and_then(|n| self.plugins.iter().find(|p| &p.manifest.name == n))
            .map(|p| p.sha256.clone());
        begin.plugin = plugin;
        // The audit log scrubs secret values and secret-named fields itself.
        begin.args = args.clone();
        begin.sent = sent;
        let events = Events::default();
        // If the client cancels, this future is dropped mid-call: the guard still writes the
        // end record, with the capability events that already happened. It is armed before
        // the begin is awaited: the writer keeps queue order, so the end lands after it.
        let mut unfinished = Unfinished::new(
            self.audit.clone(),
            begin.end(Outcome::Error),
            events.clone(),
            started,
        );
        if let Err(e) = self.audit.append_async(begin).await {
            unfinished.disarm();
            let failure = envelope::unrecorded_begin(&e);
            let (output, _, _) = envelope::envelope(Err(failure), &label, redactor);
            return CallResult {
                is_error: true,
                output,
            };
        }
        let result = match prepared {
            Err(f) => Err(f),
            Ok((spec, timeout)) => {
                self.run(
                    spec,
                    args,
                    &trace_id,
                    timeout,
                    FrontHooks {
                        progress: request.progress.clone(),
                        ask: request.ask.clone(),
                    },
                    events.clone(),
                )
                .await
            }
        };
        let is_error = result.is_err();
        let (mut output, outcome, error) = envelope::envelope(result, &label, redactor);
        let mut artifacts: Vec<String> = spill::collect_artifacts(&output);
        let cap = self.shared.policy.limits().inline_bytes as usize;
        if let Some(spilled) = spill::spill(
            &mut output,
            &tool_name,
            &trace_id,
            &self.shared.artifacts,
            cap,
        )
        .await
        {
            artifacts.push(spilled);
        }
        if !artifacts.is_empty() {
            output["artifacts"] = json!(artifacts);
        }
        let mut end = unfinished.finish(outcome);
        end.error = error;
        end.artifacts = artifacts;
        match self.audit.append_async(end).await {
            Ok(_) => CallResult { is_error, output },
            Err(e) => CallResult {
                is_error: true,
                output: envelope::unrecorded_end(output, outcome, &e, &label, redactor),
            },
        }
    }
}

/// What the front gave a call besides its arguments: where progress goes, how to ask the user.
struct FrontHooks {
    progress: Option<crate::tool::ProgressFn>,
    ask: Option<Arc<dyn crate::tool::Ask>>,
}

/// The failure for a tool name that is not listed: the closest name and every tool there is.
fn unknown_tool(name: &str, tools: &[ToolSpec]) -> Failure {
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    let listed = names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let advice = match validate::did_you_mean(name, names.iter().copied()) {
        Some(close) => format!("did you mean `{close}`? Available tools: {listed}."),
        None => format!("available tools: {listed}; call `help` to find the one for the task."),
    };
    Failure {
        field: Some("name".into()),
        detail: Some(json!({ "available_tools": names })),
        ..Failure::new(
            ErrorKind::NotFound,
            format!("unknown tool `{name}`; {advice}"),
        )
    }
}
