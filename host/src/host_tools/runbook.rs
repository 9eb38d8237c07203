//! `runbook`: list, read, write, check and run runbooks. `run` needs the router (each step is a
//! tool call through it), so the router runs it ([`run`]); the rest are plain host reads and
//! writes.

use std::time::Instant;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::HostView;
use crate::compat::runbooks as compat;
use crate::error_kind::ErrorKind;
use crate::failure::Failure;
use crate::runbooks::compile::{Problem, compile};
use crate::runbooks::run::{RunOptions, run as run_steps};
use crate::runbooks::runs::{EndOnDrop, RunState};
use crate::runbooks::{Runbook, store};
use crate::tool::{Ask, Dispatch, ProgressFn, ToolSpec};

pub const DESCRIPTION: &str = "Multi-step workflows over any tools. `list` (name, description, \
tags, inputs with their rules; `tag` filters), `get` (one, whole), `compile` (check a stored one by `name`, or a \
`runbook` object, without running: unknown tools, actions and fields, templates naming missing \
inputs or steps, bad conditions — each problem names the step and the field), `upsert` (store a \
`runbook` under `name` in the user's runbooks.json; refused while it does not compile), `delete` \
(a user runbook; a built-in shows again), `run` (`name` + `inputs`: each step is an ordinary tool \
call — validated, policy-checked, guarded, audited under the run's trace id; a write still needs \
`apply: true`, given through the inputs; the run is a job — its `r-…` id is in each step's \
progress message and the answer's `run_id`, and `jobs` lists, waits for and cancels it). A runbook: `description`, `tags`, `inputs` (names, or \
each with `required`, `default`, `type`), `steps[]` with `id`, `tool`, `args`, `when`, `foreach`, \
`retry {max_attempts, delay_ms, until}`, `continue_on_error`; templates `{{ input.x }}`, \
`{{ steps.<id>.<path> }}`, `{{ state.<key> }}`, `{{ item }}`, `{{ result.<path> }}` (in until), \
`{{ ?optional }}`; a string that is one whole template keeps its JSON type.";

/// Arguments of `runbook`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
#[schemars(extend("additionalProperties" = false))]
pub enum Args {
    /// Every runbook: name, description, tags, inputs, where it comes from.
    List {
        /// Only runbooks with this tag.
        tag: Option<String>,
    },
    /// One runbook, whole.
    Get {
        /// Its name.
        name: String,
    },
    /// Checks a runbook without running it.
    Compile {
        /// A stored runbook's name (or give `runbook`).
        name: Option<String>,
        /// A runbook object to check.
        runbook: Option<Value>,
    },
    /// Stores a runbook in the user's runbooks.json (replacing one of the same name).
    Upsert {
        /// Its name, e.g. `deploy.web`.
        name: String,
        /// The runbook object.
        runbook: Value,
    },
    /// Removes a user runbook.
    Delete {
        /// Its name.
        name: String,
    },
    /// Runs a runbook.
    Run {
        /// Its name.
        name: String,
        /// Its inputs.
        inputs: Option<Map<String, Value>>,
    },
}

fn io(e: anyhow::Error) -> Failure {
    Failure::new(
        ErrorKind::Failed,
        format!("{e:#}; fix the runbooks file or remove the entry"),
    )
}

fn not_found(name: &str, host_names: Vec<String>) -> Failure {
    let hint = crate::validate::did_you_mean(name, host_names.iter().map(String::as_str))
        .map(|n| format!("did you mean `{n}`? "))
        .unwrap_or_default();
    Failure::new(
        ErrorKind::NotFound,
        format!("no runbook `{name}`; {hint}`list` shows them all"),
    )
}

/// The problems as a failure naming the first one's step and field.
fn refused(problems: Vec<Problem>) -> Failure {
    let first = &problems[0];
    let field = match &first.step {
        Some(s) => format!("steps.{s}.{}", first.field),
        None => first.field.clone(),
    };
    let text: Vec<String> = problems
        .iter()
        .map(|p| match &p.step {
            Some(s) => format!("step `{s}` {}: {}", p.field, p.message),
            None => format!("{}: {}", p.field, p.message),
        })
        .collect();
    Failure {
        field: Some(field),
        detail: Some(json!({ "problems": problems })),
        ..Failure::new(
            ErrorKind::Invalid,
            format!(
                "the runbook does not compile ({} problem(s)): {}",
                problems.len(),
                text.join("; ")
            ),
        )
    }
}

fn parse_runbook(v: Value) -> Result<Runbook, Failure> {
    serde_json::from_value(v).map_err(|e| {
        Failure::invalid(
            "runbook",
            format!(
                "{e}; a runbook is {{\"description\", \"tags\", \"inputs\", \"steps\": [{{\"id\", \
                 \"tool\", \"args\", …}}]}}"
            ),
        )
    })
}

/// Runs every action but `run`.
pub fn tool(host: &HostView<'_>, args: Args) -> Result<Value, Failure> {
    let store = &host.shared.runbooks;
    match args {
        Args::List { tag } => {
            let all = store.all().map_err(io)?;
            let items: Vec<Value> = all
                .iter()
                .filter(|(_, (rb, _))| tag.as_ref().is_none_or(|t| rb.tags.contains(t)))
                .map(|(n, (rb, src))| {
                    let rules = rb.inputs.all();
                    json!({"name": n, "description": rb.description, "tags": rb.tags,
                           "inputs": rules.keys().collect::<Vec<_>>(), "input_rules": rules,
                           "source": src})
                })
                .collect();
            Ok(json!({"count": items.len(), "runbooks": items, "file": store.file()}))
        }
        Args::Get { name } => match store.get(&name).map_err(io)? {
            Some((rb, src)) => Ok(json!({"name": name, "source": src, "runbook": rb})),
            None => Err(not_found(
                &name,
                store.all().map_err(io)?.into_keys().collect(),
            )),
        },
        Args::Compile { name, runbook } => {
            let rb = match (name, runbook) {
                (_, Some(v)) => parse_runbook(v)?,
                (Some(n), None) => match store.get(&n).map_err(io)? {
                    Some((rb, _)) => rb,
                    None => {
                        return Err(not_found(
                            &n,
                            store.all().map_err(io)?.into_keys().collect(),
                        ));
                    }
                },
                (None, None) => {
                    return Err(Failure::invalid(
                        "name",
                        "missing: give the `name` of a stored runbook or a `runbook` object",
                    ));
                }
            };
            let problems = compile(&rb, host.tools);
            Ok(
                json!({"compiles": problems.is_empty(), "problems": problems, "steps": rb.steps.len()}),
            )
        }
        Args::Upsert { name, runbook } => {
            store::check_name(&name).map_err(|m| Failure::invalid("name", m))?;
            let size = runbook.to_string().len();
            if size > store::MAX_RUNBOOK_BYTES {
                return Err(Failure::invalid(
                    "runbook",
                    format!(
                        "{size} bytes as JSON, more than {}: split it into runbooks that a step \
                         runs, or keep large data in an artifact",
                        store::MAX_RUNBOOK_BYTES
                    ),
                ));
            }
            let rb = parse_runbook(runbook)?;
            let problems = compile(&rb, host.tools);
            if !problems.is_empty() {
                return Err(refused(problems));
            }
            let replaced = match store.upsert(&name, &rb).map_err(io)? {
                store::Upserted::Full(held) => {
                    return Err(Failure::invalid(
                        "name",
                        format!(
                            "the runbooks file holds {held} runbooks, the most it keeps; delete \
                             some (`list`, then `delete`) or replace one by upserting its name"
                        ),
                    ));
                }
                store::Upserted::Replaced => true,
                store::Upserted::Added => false,
            };
            Ok(json!({"name": name, "replaced": replaced, "file": store.file()}))
        }
        Args::Delete { name } => {
            let removed = store.delete(&name).map_err(io)?;
            if !removed {
                let builtin = store::builtins().contains_key(&name);
                return Err(Failure::new(
                    ErrorKind::NotFound,
                    match builtin {
                        true => format!(
                            "`{name}` is a built-in runbook: it cannot be deleted (upsert one of \
                             the same name to replace it)"
                        ),
                        false => format!("no user runbook `{name}`; `list` shows them"),
                    },
                ));
            }
            Ok(json!({"name": name, "removed": true}))
        }
        Args::Run { .. } => Err(Failure::new(
            ErrorKind::Failed,
            "runbook run is dispatched by the router",
        )),
    }
}

/// What a run takes from the call that starts it (`runbook run`, `intent` dry_run and execute):
/// the router its steps are called through, the host and its listed tools, and the call's trace
/// id, deadline and front hooks.
pub struct RunCall<'a, D> {
    /// Where each step is called: the router.
    pub d: &'a D,
    /// Host-wide state: the runbook store, state values, the run registry.
    pub shared: &'a crate::caps::Shared,
    /// The listed tools, which steps are compiled against.
    pub tools: &'a [ToolSpec],
    /// The run's trace id, on every step's audit record.
    pub trace_id: &'a str,
    /// When the run must be over.
    pub deadline: Instant,
    /// Where per-step progress goes.
    pub progress: Option<ProgressFn>,
    /// How steps ask the user (approvals).
    pub ask: Option<std::sync::Arc<dyn Ask>>,
}

/// Which inputs a run takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undeclared {
    /// An input the runbook does not declare is refused (the agent named it).
    Refuse,
    /// It is left out (a plan filled it for runbooks in general, e.g. `apply`).
    Drop,
}

/// `run`: looks the runbook up, checks it compiles, runs its steps through the router.
pub async fn run<D: Dispatch>(call: RunCall<'_, D>, args: Value) -> Result<Value, Failure> {
    let Args::Run { name, inputs } = super::parse(args)? else {
        return Err(Failure::new(ErrorKind::Failed, "not a run"));
    };
    run_named(call, &name, inputs.unwrap_or_default(), Undeclared::Refuse).await
}

/// Runs the stored runbook `name` with `inputs`: refused when it does not compile; a failed
/// run is a failure whose detail is the whole report.
pub async fn run_named<D: Dispatch>(
    call: RunCall<'_, D>,
    name: &str,
    inputs: Map<String, Value>,
    undeclared: Undeclared,
) -> Result<Value, Failure> {
    let RunCall {
        d,
        shared,
        tools,
        trace_id,
        deadline,
        progress,
        ask,
    } = call;
    let store = &shared.runbooks;
    // A name of the tool infra replaces stands for infra's built-in, unless the user stored a
    // runbook under it.
    let found = match store.get(name).map_err(io)? {
        Some(found) => Some((name.to_string(), found)),
        None => match compat::name(name) {
            Some(meant) => store
                .get(meant)
                .map_err(io)?
                .map(|f| (meant.to_string(), f)),
            None => None,
        },
    };
    let Some((name, (rb, _))) = found else {
        return Err(not_found(
            name,
            store.all().map_err(io)?.into_keys().collect(),
        ));
    };
    let mut inputs = inputs;
    let declared = rb.inputs.all();
    if undeclared == Undeclared::Drop {
        inputs.retain(|k, _| declared.contains_key(k));
    }
    let locate = |dir: &std::path::Path| crate::caps::roots::locate(shared, dir);
    let understood =
        compat::inputs(&mut inputs, &|k| declared.contains_key(k), &locate).map_err(|d| {
            Failure::invalid(
                format!("inputs.{}", d.input),
                format!(
                    "the input `{}` is not provided by infra: {} (docs/compat.md lists what \
                     changed)",
                    d.input, d.why
                ),
            )
        })?;
    let problems = compile(&rb, tools);
    if !problems.is_empty() {
        return Err(refused(problems));
    }
    let state = shared
        .values
        .merged()
        .map_err(|e| Failure::new(ErrorKind::Failed, e.to_string()))?;
    let run = shared.runs.start(&name, trace_id, rb.steps.len());
    // However the run ends — even by its future being dropped — `jobs` sees it end.
    let _ended = EndOnDrop(run.clone(), deadline);
    // Boxed: runs nest (a step may run a runbook), and each level's future would otherwise sit
    // on the stack of the one polling it.
    let steps = Box::pin(run_steps(
        d,
        &name,
        &rb,
        inputs,
        RunOptions {
            trace_id: trace_id.to_string(),
            deadline,
            progress,
            ask,
            state,
            run: Some(run.clone()),
        },
    ));
    let report = tokio::select! {
        r = steps => r,
        () = run.cancelled() => {
            run.end(RunState::Cancelled, None);
            return Err(Failure {
                detail: Some(run.view()),
                ..Failure::new(
                    ErrorKind::Cancelled,
                    format!(
                        "runbook {name} (run {}) was cancelled with `jobs cancel`; the steps \
                         before it ran, and the audit log has each under trace id {trace_id}",
                        run.id
                    ),
                )
            });
        }
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            run.end(RunState::Failed, None);
            return Err(e);
        }
    };
    let state = match &report.failed_step {
        None => RunState::Succeeded,
        Some(_) => RunState::Failed,
    };
    run.end(state, report.failed_step.clone());
    let mut value = serde_json::to_value(&report).unwrap_or_default();
    value["run_id"] = json!(run.id);
    if !understood.is_empty() {
        value["understood"] = Value::Object(understood);
    }
    match report.failed_step.is_none() {
        true => Ok(value),
        false => Err(Failure {
            detail: Some(value),
            ..Failure::new(
                ErrorKind::Failed,
                format!(
                    "runbook {name} failed at step `{}`: {}",
                    report.failed_step.as_deref().unwrap_or("?"),
                    report
                        .steps
                        .iter()
                        .find(|s| s.outcome == "failed")
                        .and_then(|s| s.error.clone())
                        .unwrap_or_default()
                ),
            )
        }),
    }
}
