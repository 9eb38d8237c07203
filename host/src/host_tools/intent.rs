//! `intent`: what the agent wants done, turned into the runbook that fits the repository. The
//! router runs every `intent` call here (`dry_run` and `execute` run runbooks, whose steps are
//! calls through it).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::runbook::{RunCall, Undeclared, run_named};
use crate::caps::Shared;
use crate::error_kind::ErrorKind;
use crate::failure::Failure;
use crate::intents::context::{self, Context};
use crate::intents::{Capability, context_inputs, fits};
use crate::policy::Decision;
use crate::tool::Dispatch;

pub const DESCRIPTION: &str = "Intents: what you want done, turned into the runbook that fits the \
repository under a granted root (`root`, default `workspace`; `path`; without both, the \
directory MCP_CONTEXT_REPO_ROOT names, when it lies in a root). Its context is detected \
from the files: node, python, go, rust, k8s, kustomize, helm, argocd, flux, terraform, ansible, \
ci, git. `explain` (the context with evidence, and which intents fit and why), `compile` (an \
intent `type` — or every fitting one — as a plan: its runbook, inputs taken from the context, \
inputs still missing, steps, effects), `dry_run` (without `type`: the intents that fit, proposed; \
with `type`: its runbook run with apply false — reads done, writes answered as plans, nothing \
changed), `execute` (the runbook run; an intent that writes needs `apply: true`). The map is \
capabilities.json (MCP_CAPABILITIES_PATH) over built-in defaults.";

/// Arguments of `intent`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
#[schemars(extend("additionalProperties" = false))]
pub enum Args {
    /// The repository's context and which intents fit it.
    Explain {
        /// One intent only.
        #[serde(rename = "type")]
        kind: Option<String>,
        /// A root of the policy (default `workspace`).
        root: Option<String>,
        /// The repository's directory in the root (default `.`).
        path: Option<String>,
    },
    /// The plan of an intent (or of every fitting one), run nothing.
    Compile {
        /// The intent, e.g. `gitops.plan`.
        #[serde(rename = "type")]
        kind: Option<String>,
        /// A root of the policy (default `workspace`).
        root: Option<String>,
        /// The repository's directory in the root (default `.`).
        path: Option<String>,
        /// Inputs of its runbook (over what the context gives).
        inputs: Option<Map<String, Value>>,
    },
    /// Proposes the fitting intents, or runs one with apply false.
    DryRun {
        /// The intent; without it, the fitting ones are proposed.
        #[serde(rename = "type")]
        kind: Option<String>,
        /// A root of the policy (default `workspace`).
        root: Option<String>,
        /// The repository's directory in the root (default `.`).
        path: Option<String>,
        /// Inputs of its runbook.
        inputs: Option<Map<String, Value>>,
    },
    /// Runs an intent's runbook.
    Execute {
        /// The intent.
        #[serde(rename = "type")]
        kind: String,
        /// A root of the policy (default `workspace`).
        root: Option<String>,
        /// The repository's directory in the root (default `.`).
        path: Option<String>,
        /// Inputs of its runbook.
        inputs: Option<Map<String, Value>>,
        /// Let writing steps write.
        apply: Option<bool>,
    },
}

/// The replaced tool's variable naming the repository whose context intents read.
const CONTEXT_REPO_ROOT: &str = "MCP_CONTEXT_REPO_ROOT";

/// The root and relative path of the directory `MCP_CONTEXT_REPO_ROOT` names: it only chooses
/// the default, it grants nothing.
fn repo_in_a_root(shared: &Shared, repo: &std::path::Path) -> Result<(String, String), Failure> {
    crate::caps::roots::locate(shared, repo).ok_or_else(|| {
        Failure::invalid(
            "root",
            format!(
                "{CONTEXT_REPO_ROOT}={} is under no root of the policy; add a root containing it \
                 under [roots] in {}, or give `root` and `path`",
                repo.display(),
                shared.policy.origin()
            ),
        )
    })
}

fn failed(e: impl std::fmt::Display) -> Failure {
    Failure::new(ErrorKind::Failed, format!("{e:#}"))
}

/// The repository's context: `root` must be one of the policy's roots; `path` stays inside it.
fn detect(shared: &Shared, root: &str, path: &str) -> Result<Context, Failure> {
    if path.starts_with('/') || path.split('/').any(|s| s == "..") {
        return Err(Failure::invalid(
            "path",
            format!("{path:?}: give a path relative to the root, without `..`"),
        ));
    }
    let dir = crate::caps::roots::resolve(shared, root)
        .map_err(|e| Failure::invalid("root", e.message().to_string()))?;
    // Detection lists file names: only in a root some plugin may work in anyway, so `intent`
    // shows nothing of a root the operator defined for no plugin.
    let policy = &shared.policy;
    let granted = policy.plugin_names().any(|p| {
        matches!(policy.check_fs_root(p, root), Decision::Allow)
            || matches!(policy.check_exec_root(p, root), Decision::Allow)
    });
    if !granted {
        return Err(Failure {
            field: Some("root".into()),
            ..Failure::new(
                ErrorKind::Denied,
                format!(
                    "root '{root}' is granted to no plugin; intent reads only roots a plugin may \
                     work in: grant it under [plugin.<name>.fs] or [plugin.<name>.exec] roots in {}",
                    policy.origin()
                ),
            )
        });
    }
    context::detect(&dir.dir, path).map_err(|e| {
        Failure::invalid(
            "path",
            format!("cannot read '{path}' in root '{root}': {e}; name a directory inside the root"),
        )
    })
}

fn lookup<'a>(
    all: &'a std::collections::BTreeMap<String, Capability>,
    kind: &str,
) -> Result<&'a Capability, Failure> {
    all.get(kind).ok_or_else(|| {
        let hint = crate::validate::did_you_mean(kind, all.keys().map(String::as_str))
            .map(|n| format!("did you mean `{n}`? "))
            .unwrap_or_default();
        Failure {
            field: Some("type".into()),
            ..Failure::new(
                ErrorKind::NotFound,
                format!(
                    "no intent `{kind}`; {hint}intents: {}",
                    all.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        }
    })
}

/// One intent as a plan: its runbook, the inputs it gets, what is missing, its steps.
fn plan(
    shared: &Shared,
    kind: &str,
    cap: &Capability,
    ctx: &Context,
    root: &str,
    path: &str,
    given: &Map<String, Value>,
) -> Value {
    let (fit, why) = fits(cap, ctx);
    let book = shared.runbooks.get(&cap.runbook).ok().flatten();
    let declared = book
        .as_ref()
        .map(|(rb, _)| rb.inputs.all())
        .unwrap_or_default();
    let mut inputs = context_inputs(cap, ctx, root, path, given);
    inputs.retain(|k, _| declared.contains_key(k));
    let missing: Vec<&String> = declared
        .iter()
        .filter(|(k, i)| i.required && !inputs.contains_key(*k))
        .map(|(k, _)| k)
        .collect();
    let steps: Vec<Value> = book
        .as_ref()
        .map(|(rb, _)| {
            rb.steps
                .iter()
                .map(|s| json!({"id": s.id, "tool": s.tool, "action": s.args.get("action")}))
                .collect()
        })
        .unwrap_or_default();
    json!({"type": kind, "description": cap.description, "runbook": cap.runbook, "fits": fit,
           "why": why, "effects": cap.effects, "inputs": inputs, "missing": missing, "steps": steps})
}

/// Runs `intent`.
pub async fn call<D: Dispatch>(call: RunCall<'_, D>, args: Value) -> Result<Value, Failure> {
    let shared = call.shared;
    let all = shared.intents.all().map_err(failed)?;
    let at = |root: &Option<String>, path: &Option<String>| -> Result<(String, String), Failure> {
        if let (None, None, Some(repo)) = (root, path, std::env::var_os(CONTEXT_REPO_ROOT)) {
            return repo_in_a_root(shared, std::path::Path::new(&repo));
        }
        Ok((
            root.clone().unwrap_or_else(|| "workspace".into()),
            path.clone().unwrap_or_else(|| ".".into()),
        ))
    };
    match super::parse(args)? {
        Args::Explain { kind, root, path } => {
            let (root, path) = at(&root, &path)?;
            let ctx = detect(shared, &root, &path)?;
            let list: Vec<Value> = all
                .iter()
                .filter(|(k, _)| kind.as_ref().is_none_or(|w| w == *k))
                .map(|(k, c)| {
                    let (fit, why) = fits(c, &ctx);
                    json!({"type": k, "runbook": c.runbook, "fits": fit, "why": why, "effects": c.effects})
                })
                .collect();
            if let Some(k) = &kind {
                lookup(&all, k)?;
            }
            Ok(json!({"root": root, "path": path, "context": ctx, "intents": list}))
        }
        Args::Compile {
            kind,
            root,
            path,
            inputs,
        } => {
            let (root, path) = at(&root, &path)?;
            let ctx = detect(shared, &root, &path)?;
            let given = inputs.unwrap_or_default();
            let plans: Vec<Value> = match &kind {
                Some(k) => vec![plan(
                    shared,
                    k,
                    lookup(&all, k)?,
                    &ctx,
                    &root,
                    &path,
                    &given,
                )],
                None => all
                    .iter()
                    .filter(|(_, c)| fits(c, &ctx).0)
                    .map(|(k, c)| plan(shared, k, c, &ctx, &root, &path, &given))
                    .collect(),
            };
            Ok(json!({"context": ctx.tags, "plans": plans}))
        }
        Args::DryRun {
            kind: None,
            root,
            path,
            inputs,
        } => {
            let (root, path) = at(&root, &path)?;
            let ctx = detect(shared, &root, &path)?;
            let given = inputs.unwrap_or_default();
            let mut proposed: Vec<(bool, Value)> = all
                .iter()
                .filter(|(_, c)| c.when.is_some() && fits(c, &ctx).0)
                .map(|(k, c)| {
                    (
                        c.effects.kind != "read",
                        plan(shared, k, c, &ctx, &root, &path, &given),
                    )
                })
                .collect();
            // Reads first: the agent looks before it changes anything.
            proposed.sort_by_key(|(w, _)| *w);
            let proposed: Vec<Value> = proposed.into_iter().map(|(_, p)| p).collect();
            Ok(
                json!({"context": ctx.tags, "evidence": ctx.evidence, "proposed": proposed,
                      "notes": ["nothing was run: call dry_run with a `type` (and its missing inputs) to run one with apply false"]}),
            )
        }
        Args::DryRun {
            kind: Some(kind),
            root,
            path,
            inputs,
        } => {
            let (root, path) = at(&root, &path)?;
            let (_, cap, p) = planned(shared, &all, &kind, &root, &path, inputs)?;
            let report = run_plan(call, cap, &p, false).await?;
            Ok(json!({"type": kind, "plan": p, "run": report,
                      "notes": ["a dry run: apply was false, so steps that write answered with their plans and changed nothing"]}))
        }
        Args::Execute {
            kind,
            root,
            path,
            inputs,
            apply,
        } => {
            let (root, path) = at(&root, &path)?;
            let (ctx, cap, p) = planned(shared, &all, &kind, &root, &path, inputs)?;
            let (fit, why) = fits(cap, &ctx);
            if !fit {
                return Err(Failure::invalid(
                    "type",
                    format!(
                        "intent `{kind}` does not fit this repository: {why}; `explain` shows what does"
                    ),
                ));
            }
            let apply = apply.unwrap_or(false);
            let report = run_plan(call, cap, &p, apply).await?;
            let mut out = json!({"type": kind, "plan": p, "run": report, "applied": apply});
            if cap.effects.requires_apply && !apply {
                out["notes"] = json!([
                    "apply was not true: steps that write answered with their plans; call execute again with apply: true after review"
                ]);
            }
            Ok(out)
        }
    }
}

/// The repository's context, the entry of intent `kind` and its plan.
fn planned<'a>(
    shared: &Shared,
    all: &'a std::collections::BTreeMap<String, Capability>,
    kind: &str,
    root: &str,
    path: &str,
    inputs: Option<Map<String, Value>>,
) -> Result<(Context, &'a Capability, Value), Failure> {
    let ctx = detect(shared, root, path)?;
    let cap = lookup(all, kind)?;
    let p = plan(
        shared,
        kind,
        cap,
        &ctx,
        root,
        path,
        &inputs.unwrap_or_default(),
    );
    Ok((ctx, cap, p))
}

/// Runs the runbook of `plan` with its inputs and `apply` (dropped when the runbook takes no
/// `apply`).
async fn run_plan<D: Dispatch>(
    call: RunCall<'_, D>,
    cap: &Capability,
    plan: &Value,
    apply: bool,
) -> Result<Value, Failure> {
    let mut inputs = plan["inputs"].as_object().cloned().unwrap_or_default();
    inputs.insert("apply".into(), json!(apply));
    run_named(call, &cap.runbook, inputs, Undeclared::Drop).await
}
