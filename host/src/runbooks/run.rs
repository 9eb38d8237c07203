//! Running a runbook: each step is an ordinary tool call through the router — the same
//! validation, policy, guardrails (a write still needs `apply: true`, which only the run's inputs
//! can give), audit (each step its own record, under the run's trace id), scrubbing and
//! artifacts. Progress per step; a cancelled run stops where it is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::condition;
use super::model::{Runbook, Step};
use super::template::{self, Scope};
use crate::error_kind::ErrorKind;
use crate::failure::Failure;
use crate::tool::{Ask, CallRequest, CallResult, Dispatch, ProgressFn};

/// Runbooks running runbooks: deeper than this is refused (a loop, most likely).
const MAX_DEPTH: u32 = 4;
/// Most elements one `foreach` runs.
const MAX_ITEMS: usize = 200;
/// Most tries of one step.
const MAX_ATTEMPTS: u64 = 100;

tokio::task_local! {
    /// How many runs enclose the current one.
    static DEPTH: u32;
}

/// What a run is given besides the runbook.
pub struct RunOptions {
    /// The run's trace id: every step's audit record carries it.
    pub trace_id: String,
    /// When the run must be over.
    pub deadline: Instant,
    /// Where per-step progress goes.
    pub progress: Option<ProgressFn>,
    /// How steps ask the user (approvals of protected targets).
    pub ask: Option<Arc<dyn Ask>>,
    /// `{{ state.k }}`.
    pub state: std::collections::BTreeMap<String, Value>,
    /// The run's entry in the registry `jobs` reads: its current step is kept there.
    pub run: Option<Arc<super::runs::Run>>,
}

/// One step's outcome.
#[derive(Debug, Serialize)]
pub struct StepReport {
    /// The step's id.
    pub id: String,
    /// The tool called.
    pub tool: String,
    /// The action, when the step names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// `ok`, `failed`, `skipped` (its `when` did not hold) or `not_run` (an earlier step
    /// failed).
    pub outcome: String,
    /// Calls made (tries × elements).
    pub calls: u32,
    /// Time spent.
    pub duration_ms: u64,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The tool's answer (a list of answers for `foreach`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

/// A run's outcome.
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// The runbook's name.
    pub runbook: String,
    /// The step that stopped the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    /// Every step in order.
    pub steps: Vec<StepReport>,
    /// Time spent.
    pub duration_ms: u64,
}

/// Checks the run's inputs against the runbook's and applies defaults.
pub fn inputs(rb: &Runbook, given: Map<String, Value>) -> Result<Map<String, Value>, Failure> {
    let declared = rb.inputs.all();
    let mut out = Map::new();
    for (k, v) in given {
        let Some(rule) = declared.get(&k) else {
            let names: Vec<&String> = declared.keys().collect();
            return Err(Failure::invalid(
                format!("inputs.{k}"),
                format!(
                    "the runbook takes no input `{k}`; its inputs are: {}",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names
                            .iter()
                            .map(|n| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            ));
        };
        if let Some(kind) = &rule.kind {
            let fits = match kind.as_str() {
                "string" => v.is_string(),
                "number" => v.is_number(),
                "integer" => v.is_i64() || v.is_u64(),
                "boolean" => v.is_boolean(),
                "array" => v.is_array(),
                "object" => v.is_object(),
                _ => true,
            };
            if !fits {
                return Err(Failure::invalid(
                    format!("inputs.{k}"),
                    format!("`{k}` must be a {kind}, got {v}"),
                ));
            }
        }
        out.insert(k, v);
    }
    for (k, rule) in declared {
        if out.contains_key(&k) {
            continue;
        }
        match (&rule.default, rule.required) {
            (Some(d), _) => {
                out.insert(k, d.clone());
            }
            (None, true) => {
                return Err(Failure::invalid(
                    format!("inputs.{k}"),
                    format!(
                        "missing: the runbook needs input `{k}`{}",
                        rule.description
                            .as_deref()
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default()
                    ),
                ));
            }
            (None, false) => {}
        }
    }
    Ok(out)
}

/// Whether an answer is a failure: an error, or a command that exited non-zero.
fn failed(r: &CallResult) -> Option<String> {
    if r.is_error {
        let e = &r.output["error"];
        return Some(format!(
            "{}: {}",
            e["kind"].as_str().unwrap_or("failed"),
            e["message"].as_str().unwrap_or("the call failed")
        ));
    }
    match r.output.get("exit_code").and_then(Value::as_i64) {
        Some(0) | None => None,
        Some(code) => Some(format!("the command exited {code}")),
    }
}

/// The answer as templates see it: with `success` as the tool infra replaces called `ok`.
fn seen(r: &CallResult) -> Value {
    let mut v = r.output.clone();
    if let Some(o) = v.as_object_mut() {
        o.insert("success".into(), json!(!r.is_error));
    }
    v
}

fn number(v: &Option<Value>, scope: &Scope, field: &str, default: u64) -> Result<u64, Failure> {
    let Some(v) = v else {
        return Ok(default);
    };
    let r = template::render(v, scope)
        .map_err(|e| Failure::invalid(field, e.to_string()))?
        .unwrap_or(Value::Null);
    match &r {
        Value::Null => Some(default),
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| Failure::invalid(field, format!("{r} is not a whole number")))
}

/// Runs `rb` (named `name`) with `given` inputs through `d`.
pub async fn run<D: Dispatch>(
    d: &D,
    name: &str,
    rb: &Runbook,
    given: Map<String, Value>,
    opts: RunOptions,
) -> Result<RunReport, Failure> {
    let depth = DEPTH.try_with(|d| *d).unwrap_or(0);
    if depth >= MAX_DEPTH {
        return Err(Failure::new(
            ErrorKind::Invalid,
            format!(
                "runbook {name}: runbooks nest {MAX_DEPTH} deep already; a runbook running itself \
                 (directly or not) is the usual cause"
            ),
        ));
    }
    let input = inputs(rb, given)?;
    DEPTH
        .scope(depth + 1, run_steps(d, name, rb, input, opts))
        .await
}

async fn run_steps<D: Dispatch>(
    d: &D,
    name: &str,
    rb: &Runbook,
    input: Map<String, Value>,
    opts: RunOptions,
) -> Result<RunReport, Failure> {
    let started = Instant::now();
    let mut scope = Scope {
        input,
        state: opts.state.clone(),
        trace_id: opts.trace_id.clone(),
        ..Scope::default()
    };
    let total = rb.steps.len() as f64;
    let mut reports = Vec::new();
    let mut stop: Option<String> = None;
    for (i, step) in rb.steps.iter().enumerate() {
        let action = step
            .args
            .get("action")
            .and_then(Value::as_str)
            .map(String::from);
        let mut report = StepReport {
            id: step.id.clone(),
            tool: step.tool.clone(),
            action: action.clone(),
            outcome: "not_run".into(),
            calls: 0,
            duration_ms: 0,
            error: None,
            output: None,
        };
        if stop.is_some() {
            reports.push(report);
            continue;
        }
        if let Some(r) = &opts.run {
            r.step_started(&step.id);
        }
        if let Some(p) = &opts.progress {
            p(
                i as f64,
                Some(total),
                Some(format!(
                    "runbook {name}{}: step {} ({}{})",
                    opts.run
                        .as_ref()
                        .map(|r| format!(" ({})", r.id))
                        .unwrap_or_default(),
                    step.id,
                    step.tool,
                    action
                        .as_deref()
                        .map(|a| format!(" {a}"))
                        .unwrap_or_default()
                )),
            );
        }
        let t = Instant::now();
        let outcome = one_step(d, step, &mut scope, &opts, &mut report).await;
        report.duration_ms = t.elapsed().as_millis() as u64;
        if let Some(r) = &opts.run {
            r.step_done();
        }
        match outcome {
            Ok(true) => report.outcome = "ok".into(),
            Ok(false) => report.outcome = "skipped".into(),
            Err(e) => {
                report.outcome = "failed".into();
                report.error = Some(e);
                if !step.continue_on_error {
                    stop = Some(step.id.clone());
                }
            }
        }
        reports.push(report);
    }
    if let Some(p) = &opts.progress {
        p(total, Some(total), Some(format!("runbook {name}: done")));
    }
    Ok(RunReport {
        runbook: name.to_string(),
        failed_step: stop,
        steps: reports,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// Runs one step (each `foreach` element, each try); `Ok(false)` when its `when` did not hold.
/// Its answer goes into the scope for the steps after it, failed or not.
async fn one_step<D: Dispatch>(
    d: &D,
    step: &Step,
    scope: &mut Scope,
    opts: &RunOptions,
    report: &mut StepReport,
) -> Result<bool, String> {
    if let Some(w) = &step.when
        && !condition::eval(w, scope).map_err(|e| format!("when: {e}"))?
    {
        return Ok(false);
    }
    let items: Option<Vec<Value>> = match &step.foreach {
        None => None,
        Some(f) => {
            let v = template::render(f, scope)
                .map_err(|e| format!("foreach: {e}"))?
                .unwrap_or(Value::Null);
            match v {
                Value::Array(a) if a.len() <= MAX_ITEMS => Some(a),
                Value::Array(a) => {
                    return Err(format!(
                        "foreach: {} elements, more than {MAX_ITEMS}; split the list",
                        a.len()
                    ));
                }
                Value::Null => Some(Vec::new()),
                other => return Err(format!("foreach: {other} is not a list")),
            }
        }
    };
    let mut outputs = Vec::new();
    let mut first_error = None;
    for item in items.clone().unwrap_or_else(|| vec![Value::Null]) {
        scope.item = items.as_ref().map(|_| item);
        let (out, err) = tries(d, step, scope, opts, report).await;
        outputs.push(out);
        if first_error.is_none() {
            first_error = err;
        }
    }
    scope.item = None;
    let output = match items {
        Some(_) => Value::Array(outputs),
        None => outputs.pop().unwrap_or(Value::Null),
    };
    scope.steps.insert(step.id.clone(), output.clone());
    report.output = Some(output);
    match first_error {
        Some(e) => Err(e),
        None => Ok(true),
    }
}

/// One element of a step, tried until `retry.until` holds or the tries run out.
async fn tries<D: Dispatch>(
    d: &D,
    step: &Step,
    scope: &mut Scope,
    opts: &RunOptions,
    report: &mut StepReport,
) -> (Value, Option<String>) {
    let (attempts, delay) = match &step.retry {
        None => (1, 0),
        Some(r) => {
            let a = number(&r.max_attempts, scope, "retry.max_attempts", 3);
            let w = number(&r.delay_ms, scope, "retry.delay_ms", 1000);
            match (a, w) {
                (Ok(a), Ok(w)) => (a.clamp(1, MAX_ATTEMPTS), w.min(600_000)),
                (Err(e), _) | (_, Err(e)) => return (Value::Null, Some(e.message)),
            }
        }
    };
    let mut last = (Value::Null, Some("not run".to_string()));
    for n in 1..=attempts {
        let args = match template::render(&Value::Object(step.args.clone()), scope) {
            Ok(Some(Value::Object(m))) => m,
            Ok(_) => Map::new(),
            Err(e) => return (Value::Null, Some(format!("args: {e}"))),
        };
        let left = opts.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (
                last.0,
                Some("the run's timeout passed before this step".into()),
            );
        }
        let mut args = args;
        args.insert("trace_id".into(), json!(opts.trace_id));
        if !args.contains_key("timeout_ms") {
            args.insert("timeout_ms".into(), json!(left.as_millis() as u64));
        }
        let req = CallRequest {
            tool: step.tool.clone(),
            args: Value::Object(args),
            progress: None,
            ask: opts.ask.clone(),
        };
        // Boxed: a step may itself run a runbook, and the future would otherwise contain itself.
        let call: std::pin::Pin<Box<dyn std::future::Future<Output = CallResult> + Send + '_>> =
            Box::pin(d.call(req));
        let r = call.await;
        report.calls += 1;
        let out = seen(&r);
        let err = failed(&r);
        let done = match (&err, step.retry.as_ref().and_then(|r| r.until.as_ref())) {
            (Some(_), _) => false,
            (None, None) => true,
            (None, Some(u)) => {
                scope.result = Some(out.clone());
                let held = condition::eval(u, scope);
                scope.result = None;
                match held {
                    Ok(h) => h,
                    Err(e) => return (out, Some(format!("retry.until: {e}"))),
                }
            }
        };
        if done {
            return (out, None);
        }
        let why = err.unwrap_or_else(|| "retry.until did not hold".into());
        last = match attempts {
            1 => (out, Some(why)),
            _ => (out, Some(format!("{why} (after {n} of {attempts} tries)"))),
        };
        if n < attempts {
            let left = opts.deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(Duration::from_millis(delay).min(left)).await;
        }
    }
    last
}
