//! The `gitops` tool: manifests rendered from a repository and planned against a cluster, changes
//! proposed as pull requests, diff and guarded server-side apply of manifests, rollout status,
//! Argo CD and Flux, one verdict over all of them — and Terraform plan, apply and destroy.
//!
//! Repositories are worked on through the host's `exec` (git, kubectl) with the SDK's git
//! helpers, pushes through its `git` capability (the host checks the remote and holds the
//! credentials); Terraform runs through `exec` in a granted root.
//! The cluster half goes through the host's `http` capability with profiles (a `kubernetes` profile
//! for the cluster, an `http` profile for Argo CD): the host holds the credentials and the
//! policy sees every request. Every write asks the host's `guard` first and needs `apply: true`
//! in the call; the host refuses a cluster write without that approval whatever this code does.
//! Terraform runs through the host's `exec` capability in a granted root; the host runs a
//! terraform `apply`/`destroy` only under a guard approval for that working directory.

mod apply;
mod argo;
mod args;
mod checkout;
mod cluster;
mod flux;
mod forge;
mod objects;
mod out;
mod plan;
mod propose;
mod release;
mod render;
mod rest;
mod rollout;
mod terraform;
mod verify;
mod wait;

use infra_sdk::prelude::*;

use argo::{Argo, Operation};
use args::{Action, GitopsArgs};
use cluster::Cluster;
use out::GitopsOutput;
use terraform::Workspace;

const DESCRIPTION: &str = "GitOps against clusters through their APIs (credentials stay in the \
host). From a repository under a granted root (`root`, `path`): `render` (`kubectl kustomize` of \
an `overlay`, or `helm template` of a `chart` where helm is granted → manifests artifact + \
objects with kinds, names, namespaces, images), `plan` (render + diff in one answer, the whole \
plan stored as an artifact whose sha256 names it), `propose` (branch, `patch` or `files`, commit, \
push to a granted remote, pull request through the forge's API with an http `forge_profile`; \
idempotent per branch → PR number and URL), `release` (propose → wait for the merge or \
`merge: true` → Argo CD sync of `app` to the merge commit, or a Flux reconcile of \
`kustomization` that must apply it → verify → roll back on failure: Argo CD history, or for Flux \
a revert pull request; each stage audited and reported as progress; called again it resumes). `diff` (server-side dry run of `manifests` or an `artifact` vs live, unified diff per \
object, create/update/unchanged counts, prune candidates by `prune_selector`), `apply` \
(server-side apply as field manager infra, Namespaces and CRDs first, `prune` by selector), \
`rollout_status` (Deployments/StatefulSets/DaemonSets until updated and available, or the reason \
they are not), Argo CD through an http `argocd_profile`: `status`, `refresh`, `history`, `sync` \
(revision, prune, dry_run, wait), `rollback` (history id); Flux: `reconcile` (Kustomization or \
HelmRelease, wait for Ready); `verify` (rollouts + Argo CD health + `http_checks`: one verdict \
with evidence). Terraform in a working directory (`root` + `path`): `tf_plan` (init, plan -out; \
answers the plan's sha256, adds/changes/destroys per resource, show -json as an artifact with \
sensitive values redacted), `tf_apply` (exactly the plan named by `plan_sha256`; a changed or \
stale plan is refused), `tf_destroy` (a destroy plan; with `plan_sha256` applied the same way). \
Writes need `apply: true` — without it the action answers with what it would do — and the \
host's approval (change windows, granted namespaces, a lock per cluster, the user's yes for a \
protected profile or root).";

fn run(a: GitopsArgs, ctx: &Ctx) -> Result<GitopsOutput, ToolError> {
    let apply = a.apply.unwrap_or(false);
    let mut o = GitopsOutput::default();
    match a.action {
        Action::Propose(p) => o.proposal = Some(propose::propose(&p, apply, ctx)?),
        Action::Release(r) => o.release = Some(release::release(&r, apply, ctx)?),
        Action::Render { from } => o.render = Some(render::render(&from, ctx)?),
        Action::Plan {
            profile,
            from,
            prune_selector,
        } => {
            let p = render::plan(profile.as_deref(), &from, prune_selector.as_deref(), ctx)?;
            o.profile = Some(p.profile);
            o.render = Some(p.rendered);
            o.plan = Some(p.plan);
            o.plan_artifact = Some(p.artifact);
        }
        Action::Diff {
            profile,
            source,
            prune_selector,
        } => {
            let mut c = Cluster::new(profile.as_deref(), ctx)?;
            let mut objs =
                objects::resolve(&mut c, objects::read(&source)?, source.namespace.as_deref())?;
            let (p, _) =
                apply::plan_and_apply(&mut c, &mut objs, prune_selector.as_deref(), false, false)?;
            o.profile = Some(c.profile);
            o.plan = Some(p);
        }
        Action::Apply {
            profile,
            source,
            prune_selector,
            prune,
        } => {
            let mut c = Cluster::new(profile.as_deref(), ctx)?;
            let mut objs =
                objects::resolve(&mut c, objects::read(&source)?, source.namespace.as_deref())?;
            let prune = prune.unwrap_or(false);
            let (p, done) =
                apply::plan_and_apply(&mut c, &mut objs, prune_selector.as_deref(), prune, apply)?;
            o.profile = Some(c.profile);
            match done {
                Some((approval, results)) => {
                    o.approval = Some(approval);
                    o.results = Some(results);
                }
                None => o.notes.push(
                    "nothing was changed: this is the plan. After the user has reviewed it, call \
                     again with apply: true"
                        .into(),
                ),
            }
            o.plan = Some(p);
        }
        Action::RolloutStatus {
            profile,
            workloads,
            source,
            timeout_secs,
        } => {
            let mut c = Cluster::new(profile.as_deref(), ctx)?;
            let ws = workloads_of(&mut c, workloads.as_deref(), &source)?;
            let (budget, note) = wait::budget(timeout_secs, ctx)?;
            o.notes.extend(note);
            let rs = rollout::watch(&c, &ws, budget)?;
            o.profile = Some(c.profile);
            let stuck: Vec<String> = rs
                .iter()
                .filter(|r| !r.done)
                .map(|r| format!("{}: {}{}", r.workload, r.message, reasons(&r.reasons)))
                .collect();
            if !stuck.is_empty() {
                let failed = rs.iter().any(|r| r.failed);
                let m = format!(
                    "{} {} not rolled out: {}; look at the pods (k8s `diagnose`) and fix the \
                     cause, or roll back",
                    stuck.len(),
                    if stuck.len() == 1 {
                        "workload is"
                    } else {
                        "workloads are"
                    },
                    stuck.join(" | ")
                );
                let e = if failed {
                    ToolError::failed(m)
                } else {
                    ToolError::timeout(m)
                };
                return Err(e.with_detail(json!(rs)));
            }
            o.rollouts = Some(rs);
        }
        Action::Status {
            argocd_profile,
            app,
        } => {
            let a = Argo::new(argocd_profile.as_deref(), ctx)?;
            o.apps = Some(a.status(app.as_deref(), None, false)?);
        }
        Action::Refresh {
            argocd_profile,
            app,
            mode,
        } => {
            let a = Argo::new(argocd_profile.as_deref(), ctx)?;
            let mode = mode.as_deref().unwrap_or("normal");
            o.apps = Some(a.status(Some(&app), Some(mode), false)?);
        }
        Action::History {
            argocd_profile,
            app,
        } => {
            let a = Argo::new(argocd_profile.as_deref(), ctx)?;
            o.apps = Some(a.status(Some(&app), None, true)?);
        }
        Action::Sync {
            argocd_profile,
            app,
            revision,
            prune,
            dry_run,
            wait,
            timeout_secs,
        } => {
            let a = Argo::new(argocd_profile.as_deref(), ctx)?;
            o.operation = Some(a.operate(
                &Operation {
                    app: &app,
                    revision: revision.as_deref(),
                    rollback: None,
                    prune: prune.unwrap_or(false),
                    dry_run: dry_run.unwrap_or(false),
                    apply,
                    wait: wait.unwrap_or(false),
                    timeout_secs,
                },
                ctx,
            )?);
        }
        Action::Rollback {
            argocd_profile,
            app,
            id,
            prune,
            dry_run,
            wait,
            timeout_secs,
        } => {
            let a = Argo::new(argocd_profile.as_deref(), ctx)?;
            o.operation = Some(a.operate(
                &Operation {
                    app: &app,
                    revision: None,
                    rollback: Some(id),
                    prune: prune.unwrap_or(false),
                    dry_run: dry_run.unwrap_or(false),
                    apply,
                    wait: wait.unwrap_or(false),
                    timeout_secs,
                },
                ctx,
            )?);
        }
        Action::Reconcile {
            profile,
            kind,
            name,
            namespace,
            wait,
            timeout_secs,
        } => {
            let mut c = Cluster::new(profile.as_deref(), ctx)?;
            let budget = match wait.unwrap_or(true) {
                true => {
                    let (b, note) = wait::budget(timeout_secs, ctx)?;
                    o.notes.extend(note);
                    Some(b)
                }
                false => None,
            };
            let r = flux::reconcile(&mut c, &kind, namespace.as_deref(), &name, apply, budget)?;
            if !apply {
                o.notes.push(format!(
                    "nothing was changed: with apply: true this annotates {} with {}=<now> so \
                     Flux reconciles it, then waits for Ready",
                    r.status.object,
                    flux::REQUESTED_AT
                ));
            }
            o.profile = Some(c.profile);
            o.reconcile = Some(r);
        }
        Action::Verify {
            profile,
            workloads,
            source,
            argocd_profile,
            app,
            http_checks,
            timeout_secs,
        } => {
            let (budget, note) = wait::budget(timeout_secs, ctx)?;
            o.notes.extend(note);
            let mut cluster = None;
            let mut ws = Vec::new();
            if workloads.is_some() || source.manifests.is_some() || source.artifact.is_some() {
                let mut c = Cluster::new(profile.as_deref(), ctx)?;
                ws = workloads_of(&mut c, workloads.as_deref(), &source)?;
                cluster = Some(c);
            }
            let argo = match &app {
                Some(_) => Some(Argo::new(argocd_profile.as_deref(), ctx)?),
                None => None,
            };
            let v = verify::verify(
                cluster.as_ref(),
                &ws,
                argo.as_ref().zip(app.as_deref()),
                http_checks.as_deref().unwrap_or_default(),
                budget,
                ctx,
            )?;
            o.profile = cluster.map(|c| c.profile);
            o.verify = Some(v);
        }
        Action::TfPlan { at, inputs } => {
            let ws = Workspace::new(&at, ctx)?;
            o.tf_plan = Some(terraform::plan::plan(&ws, &inputs, false)?);
            o.notes.push(PLANNED.into());
        }
        Action::TfApply { at, plan_sha256 } => {
            let ws = Workspace::new(&at, ctx)?;
            let a = terraform::apply::apply(&ws, &plan_sha256, apply, false)?;
            if !apply {
                o.notes.push(NOT_APPLIED.into());
            }
            o.tf_apply = Some(a);
        }
        Action::TfDestroy {
            at,
            inputs,
            plan_sha256,
        } => {
            let ws = Workspace::new(&at, ctx)?;
            match plan_sha256 {
                None => {
                    o.tf_plan = Some(terraform::plan::plan(&ws, &inputs, true)?);
                    o.notes.push(
                        "nothing was destroyed: this is the destroy plan. After the user has \
                         reviewed it, call tf_destroy again with its plan_sha256 and apply: true"
                            .into(),
                    );
                }
                Some(sha) => {
                    let a = terraform::apply::apply(&ws, &sha, apply, true)?;
                    if !apply {
                        o.notes.push(NOT_APPLIED.into());
                    }
                    o.tf_apply = Some(a);
                }
            }
        }
    }
    Ok(o)
}

/// What a `tf_plan` answer tells the agent to do next.
const PLANNED: &str = "nothing was changed: this is the plan. After the user has reviewed it, \
call tf_apply with its plan_sha256 and apply: true";

/// What a check of a plan without `apply: true` tells the agent.
const NOT_APPLIED: &str = "nothing was changed: the plan is intact and this is what it does. \
After the user has reviewed it, call again with apply: true";

/// The workloads named in `workloads`, or those among the objects of `source`.
fn workloads_of(
    c: &mut Cluster,
    names: Option<&[String]>,
    source: &objects::Source,
) -> Result<Vec<rollout::Workload>, ToolError> {
    let ns = source.namespace.as_deref();
    let ws = match names {
        Some(names) => rollout::named(c, names, ns.unwrap_or("default"))?,
        None => rollout::from_objects(&objects::resolve(c, objects::read(source)?, ns)?),
    };
    if ws.is_empty() {
        return Err(ToolError::invalid(
            "workloads",
            "no Deployment, StatefulSet or DaemonSet to watch: name them as `kind/name` in \
             `workloads`, or give manifests that contain some",
        ));
    }
    Ok(ws)
}

fn reasons(r: &[String]) -> String {
    match r.is_empty() {
        true => String::new(),
        false => format!(" ({})", r.join("; ")),
    }
}

infra_sdk::plugin!(tools: [
    Tool::new("gitops", "GitOps (cluster)", DESCRIPTION, run)
        .destructive()
        .open_world(),
]);
