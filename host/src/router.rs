//! The router: every call from every front passes here. It resolves the tool, validates the
//! arguments against the schema (bad input is an `isError` result that says what to fix, never
//! a crash), runs a host tool or a plugin in a fresh sandbox, wraps the result in the common
//! envelope, scrubs secrets and spills large output to an artifact. The audit log brackets the
//! call: its begin record is durable before the call may use any capability (else the call does
//! not run), and a call whose end record cannot be written is not reported as a success.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Map, Value, json};

use crate::artifacts::{ArtifactMeta, ArtifactStore};
use crate::audit::{AppendError, AuditEntry, AuditLog, Outcome};
use crate::caps::{CallCtx, CapEvent, Shared};
use crate::flags::Flags;
use crate::policy::Policy;
use crate::profiles::Profiles;
use crate::redact::Redactor;
use crate::runtime::{CallError, CallLimits, Manifest, Plugin, Refused, Runtime};
use crate::state::StateDir;
use crate::tool::{CallRequest, CallResult, Dispatch, ToolSpec};
use crate::{host_tools, validate};

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));
}

/// Fields every tool accepts besides its own.
const COMMON_FIELDS: &[&str] = &["timeout_ms", "trace_id"];

/// A failed call, as the agent sees it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// `invalid`, `denied`, `not-found`, `timeout` or `failed`.
    pub kind: String,
    /// What went wrong and what to do.
    pub message: String,
    /// The argument at fault.
    pub field: Option<String>,
    /// Extra detail.
    pub detail: Option<Value>,
}

impl Failure {
    /// A failure of `kind` with `message`.
    pub fn new(kind: &str, message: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            message: message.into(),
            field: None,
            detail: None,
        }
    }

    /// Bad input in `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new("invalid", message)
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::new("failed", format!("{e:#}"))
    }
}

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
    admission: crate::admission::Admission,
}

impl Router {
    /// Opens the state directory, loads the policy, profiles and every plugin.
    pub async fn open(state: StateDir, flags: Flags) -> anyhow::Result<Self> {
        let policy = Arc::new(load_policy(&state)?);
        let profiles = Arc::new(Profiles::load(&state.profiles())?);
        let redactor = Redactor::process();
        for r in profiles.secret_refs() {
            // A secret that cannot be read now is reported when a call uses it.
            if let Ok(v) = r.resolve() {
                redactor.add(&v);
            }
        }
        crate::caps::http::register_profile_secrets(&profiles, &redactor);
        let targets = Arc::new(crate::targets::Targets::load(
            &state.root().join("targets.json"),
        )?);
        targets.register_secrets(&redactor);
        let ssh = crate::caps::ssh::Pool::new(targets, state.root().join("known_hosts.json"));
        let artifacts = Arc::new(
            ArtifactStore::open(state.artifacts())
                .context("opening the artifact store")?
                .with_redactor(redactor.clone())
                .with_quota(crate::artifacts::Quota {
                    artifact_bytes: policy.limits().artifact_bytes,
                    total_bytes: policy.limits().artifacts_quota_bytes,
                    count: policy.limits().artifacts_quota_count,
                }),
        );
        let audit = Arc::new(
            AuditLog::open(state.audit(), redactor.clone()).context("opening the audit log")?,
        );
        let jobs = Arc::new(crate::jobs::Jobs::open(&state.jobs())?);
        let policy_limits = *policy.limits();
        let shared = Arc::new(Shared {
            policy,
            flags,
            profiles,
            redactor,
            artifacts,
            http: Default::default(),
            ssh,
            postgres: Default::default(),
            jobs,
        });
        let runtime = Runtime::new(state.cache())?;
        let mut router = Self {
            runtime,
            plugins: Vec::new(),
            refused: Vec::new(),
            shared,
            audit,
            state,
            tools: Vec::new(),
            admission: crate::admission::Admission::new(
                policy_limits.calls_in_flight as usize,
                policy_limits.plugin_calls_in_flight as usize,
            ),
        };
        router.load_plugins().await;
        router.tools = router.build_tools();
        Ok(router)
    }

    async fn load_plugins(&mut self) {
        let mut candidates: Vec<(Result<Manifest, String>, Vec<u8>, String)> = builtin::BUILTIN
            .iter()
            .map(|(toml, wasm)| {
                (
                    Manifest::parse(toml, "embedded plugin.toml").map_err(|e| format!("{e:#}")),
                    wasm.to_vec(),
                    "embedded".to_string(),
                )
            })
            .collect();
        candidates.extend(third_party(&self.state.plugins()));
        for (manifest, wasm, source) in candidates {
            let manifest = match manifest {
                Ok(m) => m,
                Err(reason) => {
                    self.refuse(source.clone(), source, reason);
                    continue;
                }
            };
            let name = manifest.name.clone();
            if let Err(reason) = self.admit(&manifest, &wasm) {
                self.refuse(name, source, reason);
                continue;
            }
            let ctx = self.describe_ctx(&name);
            let events = ctx.events.clone();
            let loaded = self
                .runtime
                .load(&wasm, manifest, source.clone(), ctx)
                .await;
            self.audit_describe(&name, &wasm, &source, &events).await;
            match loaded {
                Ok(p) => match self.tool_clash(&p) {
                    Some(reason) => self.refuse(name, source, reason),
                    None => self.plugins.push(p),
                },
                Err(e) => self.refuse(name, source, format!("{e:#}")),
            }
        }
    }

    /// The context a plugin's `describe` runs in: no grants and both flags off, whatever the
    /// policy gives the plugin for its calls — listing tools needs no capability, and a
    /// plugin must not be able to act at every start.
    fn describe_ctx(&self, plugin: &str) -> CallCtx {
        let nothing = Policy::load(
            "",
            "(describe): a plugin's describe export runs with no grants — use capabilities in \
             tool calls only",
        )
        .expect("an empty policy is valid");
        let shared = &self.shared;
        let denying = Shared {
            policy: Arc::new(nothing),
            flags: Flags::SAFE,
            profiles: shared.profiles.clone(),
            redactor: shared.redactor.clone(),
            artifacts: shared.artifacts.clone(),
            http: Default::default(),
            ssh: Default::default(),
            postgres: Default::default(),
            jobs: shared.jobs.clone(),
        };
        CallCtx {
            plugin: plugin.into(),
            trace_id: format!("describe-{}", new_trace_id()),
            tool: "describe".into(),
            deadline: Instant::now() + Duration::from_secs(10),
            shared: Arc::new(denying),
            events: Default::default(),
            progress: None,
        }
    }

    /// Records what a plugin's `describe` tried (every attempt was denied): one record per
    /// start, only for plugins that tried something, so a plugin cannot probe unseen.
    async fn audit_describe(
        &self,
        plugin: &str,
        wasm: &[u8],
        source: &str,
        events: &Mutex<Vec<CapEvent>>,
    ) {
        let events = std::mem::take(&mut *events.lock().unwrap_or_else(|p| p.into_inner()));
        if events.is_empty() {
            return;
        }
        use sha2::Digest;
        let mut entry = AuditEntry::new(&new_trace_id(), "plugins", Outcome::Denied);
        entry.action = Some("describe".into());
        entry.plugin = Some(plugin.into());
        entry.plugin_sha256 = Some(hex::encode(sha2::Sha256::digest(wasm)));
        entry.args = json!({ "source": source });
        entry.events = events.iter().map(event_value).collect();
        entry.error = Some(format!(
            "plugin '{plugin}' tried to use capabilities while describing its tools; describe \
             runs with no grants, so each attempt was denied — review the plugin"
        ));
        if let Err(e) = self.audit.append_async(entry).await {
            // Nothing happened (every attempt was denied), so the start goes on.
            tracing::error!(plugin, "could not audit what describe tried: {e}");
        }
    }

    /// Refuses what must not load before compiling anything: duplicates and pin mismatches.
    fn admit(&self, manifest: &Manifest, wasm: &[u8]) -> Result<(), String> {
        if self
            .plugins
            .iter()
            .any(|p| p.manifest.name == manifest.name)
        {
            return Err(format!(
                "a plugin named '{}' is already loaded; rename one of them",
                manifest.name
            ));
        }
        if let Some(pin) = self.shared.policy.sha256_pin(&manifest.name) {
            use sha2::Digest;
            let actual = hex::encode(sha2::Sha256::digest(wasm));
            if !actual.eq_ignore_ascii_case(pin) {
                return Err(format!(
                    "sha256 {actual} does not match the pin {pin} in [plugin.{}] of {}; the binary changed — review it and update the pin",
                    manifest.name,
                    self.shared.policy.origin()
                ));
            }
        }
        Ok(())
    }

    /// A tool name the plugin shares with a host tool or an already loaded plugin: the first
    /// one loaded keeps it, so the newcomer is refused rather than silently shadowed.
    fn tool_clash(&self, plugin: &Plugin) -> Option<String> {
        let host = host_tools::specs(self.shared.flags);
        plugin.tools.iter().find_map(|t| {
            let owner = if host.iter().any(|h| h.name == t.name) {
                Some("the host".to_string())
            } else {
                self.plugins
                    .iter()
                    .find(|p| p.tools.iter().any(|o| o.name == t.name))
                    .map(|p| format!("plugin '{}'", p.manifest.name))
            };
            owner.map(|o| {
                format!(
                    "its tool '{}' is already provided by {o}; rename the tool",
                    t.name
                )
            })
        })
    }

    fn refuse(&mut self, plugin: String, source: String, reason: String) {
        tracing::warn!(plugin, source, "plugin refused: {reason}");
        self.refused.push(Refused {
            plugin,
            source,
            reason,
        });
    }

    pub(crate) fn call_ctx(
        &self,
        plugin: &str,
        tool: &str,
        trace_id: String,
        timeout: Duration,
        progress: Option<crate::tool::ProgressFn>,
    ) -> CallCtx {
        CallCtx {
            plugin: plugin.into(),
            trace_id,
            tool: tool.into(),
            deadline: Instant::now() + timeout,
            shared: self.shared.clone(),
            events: Arc::new(Mutex::new(Vec::new())),
            progress,
        }
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
    pub fn artifacts(&self) -> &ArtifactStore {
        &self.shared.artifacts
    }

    /// The tool specs as listed, with the common fields and envelope added to the schemas.
    fn build_tools(&self) -> Vec<ToolSpec> {
        let mut tools = host_tools::specs(self.shared.flags);
        tools.extend(self.plugins.iter().flat_map(|p| p.tools.iter().cloned()));
        for t in &mut tools {
            add_common_fields(&mut t.input_schema);
            crate::schema::portable(&mut t.input_schema);
            t.output_schema = envelope_schema(&t.output_schema);
        }
        tools
    }

    /// Runs the tool; its capability events go into `events` as they happen, so that a call
    /// cancelled midway still has the ones that already did.
    async fn run(
        &self,
        spec: &ToolSpec,
        args: Value,
        trace_id: &str,
        timeout: Duration,
        progress: Option<crate::tool::ProgressFn>,
        events: Events,
    ) -> Result<Value, Failure> {
        let Some(plugin_name) = &spec.plugin else {
            let mut host = host_tools::HostCall::new(trace_id, timeout, progress);
            host.events = events;
            return host_tools::call(self, &spec.name, args, &host).await;
        };
        let Some(plugin) = self
            .plugins
            .iter()
            .find(|p| &p.manifest.name == plugin_name)
        else {
            return Err(Failure::new(
                "failed",
                format!("plugin '{plugin_name}' is not loaded"),
            ));
        };
        // Refused at once when full, before any capability is touched: an agent that fires calls
        // faster than they finish gets told, rather than queueing without bound.
        let _ticket = match self.admission.admit(plugin_name) {
            Ok(t) => t,
            Err(busy) => return Err(Failure::new("busy", busy.to_string())),
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
        let result = self
            .runtime
            .call(plugin, &spec.name, &args.to_string(), ctx, limits)
            .await;
        match result {
            Ok(text) => serde_json::from_str::<Value>(&text).map_err(|e| {
                Failure::new(
                    "failed",
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
            Err(e @ CallError::Timeout(_)) => Err(Failure::new("timeout", e.to_string())),
            Err(e) => Err(Failure::new("failed", e.to_string())),
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
        let action = args
            .get("action")
            .and_then(Value::as_str)
            .map(str::to_string);
        let tool_name = validate::tool_alias(&request.tool).to_string();
        let tools = &self.tools;
        let spec = tools.iter().find(|t| t.name == tool_name);
        // Everything that needs no capability is settled before the begin record, so that it
        // shows the arguments the call runs with.
        let prepared = match spec {
            None => Err(unknown_tool(&request.tool, tools)),
            Some(spec) => {
                validate::apply_aliases(&mut args);
                match validate::validate_args(&spec.name, &spec.input_schema, &args) {
                    Err(e) => Err(Failure::invalid(e.field.clone(), e.message.clone())),
                    Ok(()) => {
                        let timeout = self.timeout_for(spec, &args);
                        if let Some(o) = args.as_object_mut() {
                            o.remove("trace_id");
                            o.insert("timeout_ms".into(), json!(timeout.as_millis() as u64));
                        }
                        Ok((spec, timeout))
                    }
                }
            }
        };
        let plugin = spec.and_then(|s| s.plugin.clone());
        let mut begin = AuditEntry::begin(&new_call_id(), &trace_id, &tool_name);
        begin.action = action.clone();
        begin.plugin_sha256 = plugin
            .as_ref()
            .and_then(|n| self.plugins.iter().find(|p| &p.manifest.name == n))
            .map(|p| p.sha256.clone());
        begin.plugin = plugin;
        // The audit log scrubs secret values and secret-named fields itself.
        begin.args = args.clone();
        let events = Events::default();
        // If the client cancels, this future is dropped mid-call: the guard still writes the
        // end record, with the capability events that already happened. It is armed before
        // the begin is awaited: the writer keeps queue order, so the end lands after it.
        let mut unfinished = Unfinished {
            audit: self.audit.clone(),
            end: Some(begin.end(Outcome::Error)),
            events: events.clone(),
            started,
        };
        if let Err(e) = self.audit.append_async(begin).await {
            unfinished.disarm();
            let failure = Failure {
                detail: Some(json!({"audit": "begin-not-written", "cause": e.cause})),
                ..Failure::new(
                    "failed",
                    format!(
                        "the call was not run: its begin record could not be written to the \
                         audit log, and infra runs nothing it cannot record. {e}; then call again"
                    ),
                )
            };
            let (output, _, _) =
                self.envelope(Err(failure), &tool_name, &action, &trace_id, started);
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
                    request.progress.clone(),
                    events.clone(),
                )
                .await
            }
        };
        let is_error = result.is_err();
        let (mut output, outcome, error) =
            self.envelope(result, &tool_name, &action, &trace_id, started);
        let mut artifacts: Vec<String> = collect_artifacts(&output);
        if let Some(spilled) = self.spill(&mut output, &tool_name, &trace_id).await {
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
                output: self
                    .unrecorded_end(output, outcome, &e, &tool_name, &action, &trace_id, started),
            },
        }
    }
}

/// Where a call's capability events collect as they happen.
type Events = Arc<Mutex<Vec<CapEvent>>>;

/// A capability event as the audit record holds it.
fn event_value(e: &CapEvent) -> Value {
    serde_json::to_value(e).unwrap_or(Value::Null)
}

/// The end record of a call still under way; if the call's future is dropped (a cancelled
/// request), dropping this writes it with the events so far.
struct Unfinished {
    audit: Arc<AuditLog>,
    end: Option<AuditEntry>,
    events: Events,
    started: Instant,
}

impl Unfinished {
    /// The call ended on its own: its end record, with the events and duration filled in.
    fn finish(&mut self, outcome: Outcome) -> AuditEntry {
        let mut end = self.take();
        end.outcome = outcome.as_str().into();
        end
    }

    /// Nothing to record: the call never began.
    fn disarm(&mut self) {
        self.end = None;
    }

    fn take(&mut self) -> AuditEntry {
        let mut end = self
            .end
            .take()
            .expect("an unfinished call ends once, before it is dropped");
        end.events = self
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(event_value)
            .collect();
        end.duration_ms = self.started.elapsed().as_millis() as u64;
        end
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if self.end.is_some() {
            let mut end = self.take();
            end.error = Some("cancelled by the client before it finished".into());
            // A drop cannot wait for the disk; the writer logs a failure to write it.
            self.audit.submit(end);
        }
    }
}

impl Router {
    /// The common envelope around a tool's result or failure, scrubbed: with the outcome and
    /// the error message for the audit record.
    fn envelope(
        &self,
        result: Result<Value, Failure>,
        tool: &str,
        action: &Option<String>,
        trace_id: &str,
        started: Instant,
    ) -> (Value, Outcome, Option<String>) {
        let is_error = result.is_err();
        let (mut output, outcome, error) = match result {
            Ok(v) => (v, Outcome::Ok, None),
            Err(f) => {
                let outcome = match f.kind.as_str() {
                    "denied" => Outcome::Denied,
                    "timeout" => Outcome::Timeout,
                    _ => Outcome::Error,
                };
                let mut err = json!({"kind": f.kind, "message": f.message});
                if let Some(field) = f.field {
                    err["field"] = json!(field);
                }
                if let Some(d) = f.detail {
                    err["detail"] = d;
                }
                let msg = f.message.clone();
                (json!({ "error": err }), outcome, Some(msg))
            }
        };
        if !output.is_object() {
            output = json!({ "result": output });
        }
        let obj = output.as_object_mut().expect("made an object above");
        obj.insert("ok".into(), json!(!is_error));
        obj.insert("tool".into(), json!(tool));
        if let Some(a) = action {
            obj.insert("action".into(), json!(a));
        }
        obj.insert(
            "duration_ms".into(),
            json!(started.elapsed().as_millis() as u64),
        );
        obj.insert("trace_id".into(), json!(trace_id));
        self.shared.redactor.scrub_value(&mut output);
        (output, outcome, error)
    }

    /// What the agent gets when a call ran but its end record could not be written: not the
    /// result (an unrecorded success must not pass for a recorded one), but what happened.
    #[allow(clippy::too_many_arguments)]
    fn unrecorded_end(
        &self,
        output: Value,
        outcome: Outcome,
        e: &AppendError,
        tool: &str,
        action: &Option<String>,
        trace_id: &str,
        started: Instant,
    ) -> Value {
        let mut detail = json!({"audit": "end-not-written", "cause": e.cause, "outcome": outcome});
        if let Some(a) = output.get("artifacts") {
            detail["artifacts"] = a.clone();
        }
        let failure = Failure {
            detail: Some(detail),
            ..Failure::new(
                "failed",
                format!(
                    "the call ran (it ended '{outcome}') but its end record could not be written \
                     to the audit log, so its result is withheld: its effects happened and its \
                     begin record (trace {trace_id}) is in the log, how it ended is not. {e}; \
                     then run `infra audit verify`, and check the effects before calling again"
                ),
            )
        };
        self.envelope(Err(failure), tool, action, trace_id, started)
            .0
    }
}

impl Router {
    /// The call's deadline: `timeout_ms` when given, else the plugin's or the policy's default,
    /// never above the policy's maximum.
    fn timeout_for(&self, spec: &ToolSpec, args: &Value) -> Duration {
        let policy = &self.shared.policy;
        let default = spec
            .plugin
            .as_deref()
            .map_or(policy.limits().timeout_ms, |p| policy.timeout_ms(p));
        let asked = args
            .get("timeout_ms")
            .and_then(Value::as_u64)
            .unwrap_or(default);
        Duration::from_millis(asked.clamp(1, policy.limits().max_timeout_ms))
    }

    /// Moves an output larger than the inline cap into an artifact, leaving the envelope, a
    /// preview and the link.
    async fn spill(&self, output: &mut Value, tool: &str, trace_id: &str) -> Option<String> {
        let text = serde_json::to_string_pretty(output).ok()?;
        let cap = self.shared.policy.limits().inline_bytes as usize;
        if text.len() <= cap {
            return None;
        }
        let meta = ArtifactMeta {
            media_type: "application/json".into(),
            tool: tool.into(),
            trace_id: trace_id.into(),
            description: format!("full result of {tool} ({} bytes)", text.len()),
        };
        // A result that cannot be stored (the store is full of pinned artifacts, the disk is
        // full) is still cut to a preview: the agent's context is not the overflow.
        let stored = self.shared.artifacts.put(text.as_bytes(), meta).await;
        if let Err(e) = &stored {
            tracing::warn!("could not spill a large result: {e:#}");
        }
        let mut slim = Map::new();
        for k in [
            "ok",
            "tool",
            "action",
            "duration_ms",
            "trace_id",
            "error",
            "status",
        ] {
            if let Some(v) = output.get(k) {
                slim.insert(k.into(), v.clone());
            }
        }
        slim.insert("truncated".into(), json!(true));
        slim.insert(
            "preview".into(),
            json!(crate::artifacts::preview(
                text.as_bytes(),
                (cap / 4).max(1024)
            )),
        );
        let note = match &stored {
            Ok(info) => format!(
                "the result is {} bytes, over the {cap}-byte inline cap; the whole of it is {} — read it with the artifacts tool (action get/head/tail)",
                text.len(),
                info.uri
            ),
            Err(e) => format!(
                "the result is {} bytes, over the {cap}-byte inline cap, and could not be stored \
                 as an artifact ({e:#}); only this preview is left — ask for less",
                text.len()
            ),
        };
        slim.insert("note".into(), json!(note));
        *output = Value::Object(slim);
        stored.ok().map(|info| info.uri)
    }
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
        ..Failure::new("not-found", format!("unknown tool `{name}`; {advice}"))
    }
}

/// `artifact://` URIs anywhere in a result.
fn collect_artifacts(v: &Value) -> Vec<String> {
    let mut found = Vec::new();
    fn walk(v: &Value, found: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(u)) = o.get("uri")
                    && u.starts_with("artifact://")
                    && !found.contains(u)
                {
                    found.push(u.clone());
                }
                o.values().for_each(|x| walk(x, found));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, found)),
            _ => {}
        }
    }
    walk(v, &mut found);
    found
}

/// A new random trace id.
pub fn new_trace_id() -> String {
    format!("t-{:016x}", rand::random::<u64>())
}

/// A new id pairing a call's begin and end records (the agent may reuse trace ids).
fn new_call_id() -> String {
    format!("c-{:032x}", rand::random::<u128>())
}

/// Adds `timeout_ms` and `trace_id` to a tool's input schema (to every branch of a `oneOf`).
fn add_common_fields(schema: &mut Value) {
    let props = json!({
        "timeout_ms": {"type": "integer", "minimum": 1, "description": "Deadline for this call in milliseconds (the policy caps it)."},
        "trace_id": {"type": "string", "description": "Correlates this call with others in the audit log; generated when absent."}
    });
    let targets: Vec<&mut Value> = if schema.get("oneOf").is_some_and(Value::is_array) {
        schema["oneOf"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .collect()
    } else {
        vec![schema]
    };
    for t in targets {
        if let Some(obj) = t.as_object_mut() {
            let p = obj.entry("properties").or_insert_with(|| json!({}));
            if let Some(p) = p.as_object_mut() {
                for k in COMMON_FIELDS {
                    p.entry(*k).or_insert_with(|| props[*k].clone());
                }
            }
        }
    }
}

/// The output schema every tool shares: the envelope plus the tool's own properties.
fn envelope_schema(own: &Value) -> Value {
    let mut props = json!({
        "ok": {"type": "boolean", "description": "false when the call failed; see `error`"},
        "tool": {"type": "string"},
        "action": {"type": "string", "description": "the action run, for tools that have actions"},
        "duration_ms": {"type": "integer"},
        "trace_id": {"type": "string"},
        "artifacts": {"type": "array", "items": {"type": "string"}, "description": "artifact:// URIs stored by this call"},
        "error": {"type": "object", "description": "kind, message and the field at fault", "properties": {
            "kind": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}
        }},
        "truncated": {"type": "boolean"},
        "preview": {"type": "string"},
        "note": {"type": "string"}
    });
    if let (Some(own_props), Some(p)) = (
        own.get("properties").and_then(Value::as_object),
        props.as_object_mut(),
    ) {
        let defs = own
            .get("$defs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (k, v) in own_props {
            p.entry(k.clone()).or_insert_with(|| {
                let mut v = v.clone();
                crate::schema::portable_detached(&mut v, &defs);
                v
            });
        }
    }
    json!({
        "type": "object",
        "properties": props,
        "required": ["ok", "tool", "duration_ms", "trace_id"],
        "additionalProperties": true
    })
}

fn load_policy(state: &StateDir) -> anyhow::Result<Policy> {
    if let Ok(path) = std::env::var("INFRA_POLICY") {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read INFRA_POLICY={path}"))?;
        return Ok(Policy::load(&text, &path)?);
    }
    let user = state.policy();
    if user.is_file() {
        let origin = user.display().to_string();
        let text =
            std::fs::read_to_string(&user).with_context(|| format!("cannot read {origin}"))?;
        return Ok(Policy::load(&text, &origin)?);
    }
    Ok(Policy::embedded_default()?)
}

/// Third-party plugins: `<dir>/*.wasm`, each with a `.toml` manifest of the same stem.
fn third_party(dir: &std::path::Path) -> Vec<(Result<Manifest, String>, Vec<u8>, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|wasm_path| {
            let source = wasm_path.display().to_string();
            let toml_path = wasm_path.with_extension("toml");
            let manifest = std::fs::read_to_string(&toml_path)
                .map_err(|e| format!("no manifest {} beside the plugin ({e}); every plugin needs its plugin.toml", toml_path.display()))
                .and_then(|t| Manifest::parse(&t, &toml_path.display().to_string()).map_err(|e| format!("{e:#}")));
            let wasm = std::fs::read(&wasm_path).unwrap_or_default();
            (manifest, wasm, source)
        })
        .collect()
}
