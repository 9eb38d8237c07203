//! `release`: the GitOps cycle in one call — propose the change as a pull request, wait for its
//! merge (or merge it, when asked and approved), deploy the merge commit (an Argo CD sync to it,
//! or a Flux reconcile that must apply it), verify, and on failure roll back: Argo CD to the
//! deployment before (its history), Flux by a revert pull request merged and reconciled. Each stage is marked
//! through the host's `log.stage`, so the call's audit record tells the story in order, among
//! the capability uses of each stage, and the client sees each stage as progress.
//!
//! A release keeps no state of its own: the forge and Argo CD hold it. Called again with the
//! same arguments — after a restart, or after a timeout while a person reviews the pull request —
//! it finds the pull request (open or merged) and the application's history, and goes on from
//! the first stage not done. A release already rolled back is not deployed again.
//!
//! Everything a stage does goes through the same actions and guards as when called alone
//! (`propose`, Argo CD `sync`/`rollback`, Flux `reconcile`, `verify`).

use std::time::{Duration, Instant};

use infra_sdk::kube::check_name;
use infra_sdk::prelude::*;

use crate::apply::approve;
use crate::argo::{AppStatus, Argo, HistoryEntry, Operation, OperationResult};
use crate::caps::log;
use crate::cluster::Cluster;
use crate::flux::{self, Reconcile};
use crate::forge::{Forge, PullRequest};
use crate::propose::{self, Proposal, ProposeArgs};
use crate::verify::{self, Check, HttpCheck, Verdict};
use crate::wait::{self, Step, until};

/// Arguments of `release`: those of `propose`, and where the change goes.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReleaseArgs {
    /// The change and its pull request, as for `propose`.
    #[serde(flatten)]
    pub propose: ProposeArgs,
    /// Merge the pull request through the forge's API (after the guard's approval) instead of
    /// waiting for a person to merge it (default false).
    pub merge: Option<bool>,
    /// The http profile of Argo CD (with `app`).
    pub argocd_profile: Option<String>,
    /// The Argo CD application that deploys the repository's base branch (or `kustomization`).
    pub app: Option<String>,
    /// The Flux Kustomization that deploys the base branch (instead of `app`), through the
    /// kubernetes `profile`.
    pub kustomization: Option<String>,
    /// The Kustomization's namespace (default `flux-system`).
    pub flux_namespace: Option<String>,
    /// The kubernetes profile of the cluster Flux runs in (with `kustomization`).
    pub profile: Option<String>,
    /// HTTP checks the verification makes after the sync (each `url`, `expect_status`,
    /// `profile`).
    pub http_checks: Option<Vec<HttpCheck>>,
    /// Roll back to the deployment before this release when the sync or the verification fails
    /// (default true).
    pub rollback: Option<bool>,
    /// Seconds the whole release may wait — for the merge, the sync, the rollback (default
    /// 120; never past the call's `timeout_ms`).
    pub timeout_secs: Option<u64>,
}

/// One stage of a release and how it ended.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Stage {
    /// `propose`, `merge`, `sync`, `verify` or `rollback`.
    pub stage: String,
    /// `planned`, `done`, `skipped` (already done by an earlier call), `failed` or `waiting`.
    pub outcome: String,
    /// What it did or found.
    pub detail: String,
    /// Time spent.
    pub duration_ms: u64,
}

/// What a release did (or, without `apply`, would do).
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct Release {
    /// `planned`, `released`, `rolled_back` or `failed`.
    pub outcome: String,
    /// Each stage in order.
    pub stages: Vec<Stage>,
    /// `propose`'s answer, when this call proposed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposal: Option<Proposal>,
    /// The pull request, as the forge last showed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequest>,
    /// The merge commit deployed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The deployment a rollback returns to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<HistoryEntry>,
    /// The Argo CD sync.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<OperationResult>,
    /// The verification after the sync.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verdict>,
    /// The Argo CD rollback, when one ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<OperationResult>,
    /// Flux: the reconcile of the merge commit (and of the revert, after a rollback).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reconciles: Vec<Reconcile>,
    /// Flux: the revert pull request a rollback proposed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revert: Option<Proposal>,
    /// What the agent should know.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Release {
    /// Starts `stage`: marked in the audit record and sent as progress.
    fn begin(&mut self, stage: &str, detail: String) -> Instant {
        log::stage(stage, &detail);
        self.stages.push(Stage {
            stage: stage.into(),
            outcome: "running".into(),
            detail,
            duration_ms: 0,
        });
        Instant::now()
    }

    /// Ends the stage begun last.
    fn end(&mut self, started: Instant, outcome: &str, detail: String) {
        if let Some(s) = self.stages.last_mut() {
            s.outcome = outcome.into();
            s.detail = detail;
            s.duration_ms = started.elapsed().as_millis() as u64;
        }
    }

    fn planned(&mut self, stage: &str, detail: String) {
        self.stages.push(Stage {
            stage: stage.into(),
            outcome: "planned".into(),
            detail,
            duration_ms: 0,
        });
    }

    /// The release as an error's detail, with the error itself.
    fn fail(mut self, e: ToolError) -> ToolError {
        if self.outcome.is_empty() {
            self.outcome = "failed".into();
        }
        if let Some(s) = self.stages.last_mut()
            && s.outcome == "running"
        {
            s.outcome = "failed".into();
            s.detail = e.message.clone();
        }
        let detail = serde_json::to_value(&self).unwrap_or_default();
        e.with_detail(detail)
    }
}

/// Seconds left until `deadline`, at least 1 (what Argo CD waits take).
fn secs_left(deadline: Instant) -> u64 {
    deadline
        .saturating_duration_since(Instant::now())
        .as_secs()
        .max(1)
}

/// The deployment before `revision`: the newest history entry of another revision.
fn before(app: &AppStatus, revision: &str) -> Option<HistoryEntry> {
    app.history
        .iter()
        .rev()
        .find(|h| h.revision != revision)
        .cloned()
}

/// Where the base branch is deployed from.
enum Target<'a> {
    /// An Argo CD application.
    Argo { argo: Argo, app: &'a str },
    /// A Flux Kustomization.
    Flux {
        cluster: Cluster,
        namespace: &'a str,
        name: &'a str,
    },
}

impl<'a> Target<'a> {
    fn new(a: &'a ReleaseArgs, ctx: &Ctx) -> Result<Self, ToolError> {
        match (&a.app, &a.kustomization) {
            (Some(app), None) => {
                check_name("app", app)?;
                Ok(Target::Argo {
                    argo: Argo::new(a.argocd_profile.as_deref(), ctx)?,
                    app,
                })
            }
            (None, Some(name)) => {
                check_name("kustomization", name)?;
                let namespace = a.flux_namespace.as_deref().unwrap_or("flux-system");
                infra_sdk::kube::check_namespace("flux_namespace", namespace)?;
                Ok(Target::Flux {
                    cluster: Cluster::new(a.profile.as_deref(), ctx)?,
                    namespace,
                    name,
                })
            }
            (Some(_), Some(_)) => Err(ToolError::invalid(
                "kustomization",
                "give `app` (Argo CD) or `kustomization` (Flux), not both",
            )),
            (None, None) => Err(ToolError::invalid(
                "app",
                "missing: name what deploys the base branch — an Argo CD `app` (with \
                 `argocd_profile`) or a Flux `kustomization` (with the kubernetes `profile`)",
            )),
        }
    }

    fn what(&self) -> String {
        match self {
            Target::Argo { app, .. } => format!("Argo CD application {app}"),
            Target::Flux {
                namespace, name, ..
            } => format!("Flux Kustomization {namespace}/{name}"),
        }
    }

    /// The Flux object's state now (no write).
    fn flux_now(&mut self) -> Result<Option<flux::FluxStatus>, ToolError> {
        match self {
            Target::Argo { .. } => Ok(None),
            Target::Flux {
                cluster,
                namespace,
                name,
            } => Ok(Some(
                flux::reconcile(cluster, "Kustomization", Some(namespace), name, false, None)?
                    .status,
            )),
        }
    }
}

/// Flux names a revision `main@sha1:<sha>` (older: `main/<sha>`).
fn flux_at(revision: Option<&str>, sha: &str) -> bool {
    revision.is_some_and(|r| r.ends_with(sha))
}

/// `release` (see the module's doc).
pub fn release(a: &ReleaseArgs, apply: bool, ctx: &Ctx) -> Result<Release, ToolError> {
    let mut target = Target::new(a, ctx)?;
    let forge = Forge::new(
        a.propose.forge.unwrap_or_default(),
        a.propose.forge_profile.as_deref(),
        &a.propose.repository,
        ctx,
    )?;
    let (budget, note) = wait::budget(a.timeout_secs, ctx)?;
    let deadline = Instant::now() + budget;
    let mut r = Release::default();
    r.notes.extend(note);
    if !apply {
        plan(a, &forge, &mut target, budget, ctx, &mut r)?;
        return Ok(r);
    }
    match run(a, &forge, &mut target, deadline, ctx, &mut r) {
        Ok(()) => Ok(r),
        Err(e) => Err(r.fail(e)),
    }
}

/// Without `apply`: what each stage would do, from what the forge and the deployer show now.
fn plan(
    a: &ReleaseArgs,
    forge: &Forge,
    target: &mut Target,
    budget: Duration,
    ctx: &Ctx,
    r: &mut Release,
) -> Result<(), ToolError> {
    let branch = &a.propose.branch;
    match forge.merged_pull(branch)? {
        Some(pr) => {
            r.planned(
                "propose",
                format!("nothing: pull request #{} of {branch} is merged", pr.number),
            );
            r.pull_request = Some(pr);
        }
        None => {
            let p = propose::propose(&a.propose, false, ctx)?;
            r.planned("propose", p.plan.clone());
            r.pull_request = p.pull_request.clone();
            r.proposal = Some(p);
        }
    }
    let merge = a.merge.unwrap_or(false);
    r.planned(
        "merge",
        match merge {
            true => {
                "merge the pull request through the forge's API, after the guard's approval".into()
            }
            false => format!(
                "wait up to {} s for a person to merge the pull request",
                budget.as_secs()
            ),
        },
    );
    let what = target.what();
    let (now, back) = match target {
        Target::Argo { argo, app } => {
            let app = argo.status(Some(app), None, true)?.remove(0);
            let to = app.revision.as_deref().and_then(|rev| {
                app.history
                    .iter()
                    .rev()
                    .find(|h| h.revision == rev)
                    .cloned()
            });
            let back = to
                .as_ref()
                .map(|h| format!("roll back to history id {} (revision {})", h.id, h.revision));
            r.rollback_to = to;
            (
                format!(
                    "{} / {} at {}",
                    app.sync,
                    app.health,
                    app.revision.as_deref().unwrap_or("?")
                ),
                back,
            )
        }
        Target::Flux { .. } => {
            let s = target.flux_now()?.unwrap_or_else(|| unreachable!());
            let back = match merge {
                true => "propose the revert of the change, merge it and reconcile again",
                false => "propose the revert of the change (merge: true merges it)",
            };
            (
                format!(
                    "Ready={} at {}",
                    s.ready,
                    s.revision.as_deref().unwrap_or("?")
                ),
                Some(back.to_string()),
            )
        }
    };
    let deploy = match a.app {
        Some(_) => "sync",
        None => "reconcile",
    };
    r.planned(
        "sync",
        format!("{deploy} {what} to the merge commit and wait until it is healthy; now {now}"),
    );
    let checks = a.http_checks.as_deref().unwrap_or_default();
    r.planned(
        "verify",
        format!(
            "{what} healthy at the merge commit{}",
            match checks.len() {
                0 => String::new(),
                n => format!(", {n} http check(s)"),
            }
        ),
    );
    r.planned(
        "rollback",
        match (a.rollback.unwrap_or(true), back) {
            (false, _) => "none: rollback is false; a failure is reported and left as it is".into(),
            (true, Some(b)) => format!("if the sync or the verification fails: {b}"),
            (true, None) => "none possible: the application has no deployment to return to".into(),
        },
    );
    r.outcome = "planned".into();
    r.notes.push(
        "nothing was changed: this is the plan. After the user has reviewed it, call again with \
         apply: true; a release interrupted (or timed out waiting for the merge) goes on from \
         where it stopped when called again with the same arguments"
            .into(),
    );
    Ok(())
}

fn run(
    a: &ReleaseArgs,
    forge: &Forge,
    target: &mut Target,
    deadline: Instant,
    ctx: &Ctx,
    r: &mut Release,
) -> Result<(), ToolError> {
    let branch = &a.propose.branch;
    let merge = a.merge.unwrap_or(false);

    // Propose, unless an earlier call's pull request is already merged.
    let t = r.begin(
        "propose",
        format!(
            "branch {branch} of {} → pull request on {}",
            a.propose.path.as_deref().unwrap_or("."),
            a.propose.repository
        ),
    );
    let pr = match forge.merged_pull(branch)? {
        Some(pr) => {
            r.end(
                t,
                "skipped",
                format!("pull request #{} is merged already", pr.number),
            );
            pr
        }
        None => {
            let p = propose::propose(&a.propose, true, ctx)?;
            let pr = p.pull_request.clone().ok_or_else(|| {
                ToolError::failed("propose answered without a pull request; call again")
            })?;
            r.end(t, "done", p.plan.clone());
            r.proposal = Some(p);
            pr
        }
    };
    r.pull_request = Some(pr.clone());

    let t = r.begin("merge", format!("pull request #{} ({})", pr.number, pr.url));
    let (sha, how) = merged(a, forge, &pr, merge, deadline, r, t)?;
    r.end(t, how, format!("merge commit {sha}"));
    r.revision = Some(sha.clone());

    let what = target.what();
    let t = r.begin("sync", format!("{what} to {sha}"));
    let synced = match target {
        Target::Argo { argo, app } => sync_argo(argo, app, &sha, deadline, ctx, r, t)?,
        Target::Flux {
            cluster,
            namespace,
            name,
        } => {
            let now =
                flux::reconcile(cluster, "Kustomization", Some(namespace), name, false, None)?;
            if flux_at(now.status.revision.as_deref(), &sha) && now.status.ready == "True" {
                r.end(
                    t,
                    "skipped",
                    format!("{sha} is applied already: Ready=True"),
                );
                true
            } else if forge.merged_pull(&format!("{branch}-revert"))?.is_some() {
                r.end(t, "skipped", format!("{sha} was reverted already"));
                r.outcome = "rolled_back".into();
                return Err(ToolError::failed(format!(
                    "this release ({sha}) was reverted by an earlier call and is not deployed \
                     again; fix the change and release it on a new `branch`"
                )));
            } else {
                let rec = reconcile_now(cluster, namespace, name, deadline)?;
                let at = flux_at(rec.status.revision.as_deref(), &sha);
                let ok = rec.done && at;
                let detail = format!(
                    "Ready={} ({}) at {}{}",
                    rec.status.ready,
                    rec.status.message.clone().unwrap_or_default(),
                    rec.status.revision.as_deref().unwrap_or("?"),
                    if rec.done && !at {
                        format!(": not the merge commit {sha} (has the source fetched it?)")
                    } else {
                        String::new()
                    }
                );
                r.end(t, if ok { "done" } else { "failed" }, detail);
                r.reconciles.push(rec);
                ok
            }
        }
    };

    let mut why = String::new();
    if synced {
        let t = r.begin(
            "verify",
            format!(
                "{what}{}",
                if a.http_checks.as_deref().unwrap_or_default().is_empty() {
                    ""
                } else {
                    " and the http checks"
                }
            ),
        );
        let v = verified(a, target, &sha, deadline, ctx)?;
        let failed: Vec<String> = v
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", c.check, c.evidence))
            .collect();
        let pass = failed.is_empty();
        r.end(
            t,
            if pass { "done" } else { "failed" },
            format!("verdict {}", v.verdict),
        );
        r.verify = Some(v);
        if pass {
            r.outcome = "released".into();
            return Ok(());
        }
        why = format!("the verification failed ({})", failed.join("; "));
    } else if let Some(s) = r.stages.last() {
        why = format!("the sync did not succeed ({})", s.detail);
    }
    if !a.rollback.unwrap_or(true) {
        return Err(ToolError::failed(format!(
            "the release of {sha} failed: {why}; rollback is false, so it is left as it is. Look \
             at {what} and roll back if needed"
        )));
    }
    match target {
        Target::Argo { argo, app } => rollback_argo(argo, app, &sha, &why, deadline, ctx, r),
        Target::Flux { .. } => rollback_flux(a, forge, target, &sha, &why, deadline, ctx, r),
    }
}

/// The merge commit of `pr`: found merged, merged here (`merge`), or waited for.
fn merged(
    a: &ReleaseArgs,
    forge: &Forge,
    pr: &PullRequest,
    merge: bool,
    deadline: Instant,
    r: &mut Release,
    t: Instant,
) -> Result<(String, &'static str), ToolError> {
    if let Some(sha) = pr.merge_commit_sha.clone().filter(|_| pr.merged) {
        return Ok((sha, "skipped"));
    }
    if merge {
        return Ok((merge_now(a, forge, pr.number)?, "done"));
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let waited = until(left, "release: waiting for the merge", || {
        let now = forge.get_pull(pr.number)?;
        Ok(match (now.merged, now.merge_commit_sha.clone()) {
            (true, Some(sha)) => Step::Done(Some(sha)),
            _ if now.state == "closed" => Step::Done(None),
            _ => Step::Waiting(format!("pull request #{} is {}", pr.number, now.state)),
        })
    })?;
    match waited {
        Ok(Some(sha)) => Ok((sha, "done")),
        Ok(None) => Err(ToolError::failed(format!(
            "pull request #{} was closed without being merged: nothing was deployed. Open a new \
             one (another `branch`) if the change is still wanted",
            pr.number
        ))),
        Err(_) => {
            r.outcome = "waiting".into();
            r.end(
                t,
                "waiting",
                format!("pull request #{} is not merged yet", pr.number),
            );
            Err(ToolError::timeout(format!(
                "pull request #{} ({}) is not merged yet. Once it is, call release again with the \
                 same arguments: it goes on from the merge (or pass merge: true to merge it \
                 through the forge)",
                pr.number, pr.url
            )))
        }
    }
}

/// Merges pull request `number` through the forge after the guard's approval.
fn merge_now(a: &ReleaseArgs, forge: &Forge, number: u64) -> Result<String, ToolError> {
    let now = forge.get_pull(number)?;
    let head = now
        .head_sha
        .ok_or_else(|| ToolError::failed("the forge shows no head commit; call again"))?;
    approve(
        "forge",
        &format!("{}#{number}", a.propose.repository),
        Vec::new(),
        &format!(
            "merge pull request #{number} (head {head}) on {}",
            a.propose.repository
        ),
    )?;
    forge.merge_pull(number, &head)
}

/// Argo CD: sync to `sha` unless it is deployed (or was rolled back) already.
fn sync_argo(
    argo: &Argo,
    app: &str,
    sha: &str,
    deadline: Instant,
    ctx: &Ctx,
    r: &mut Release,
    t: Instant,
) -> Result<bool, ToolError> {
    let now = argo.status(Some(app), None, true)?.remove(0);
    r.rollback_to = before(&now, sha);
    let last = now.history.last().map(|h| h.revision.as_str());
    if last == Some(sha) {
        let settled = settle(argo, app, deadline)?;
        r.end(
            t,
            "skipped",
            format!(
                "{sha} is deployed already: {} / {}",
                settled.sync, settled.health
            ),
        );
        return Ok(settled.health == "Healthy" && settled.sync == "Synced");
    }
    if now.history.iter().any(|h| h.revision == sha) {
        r.end(
            t,
            "skipped",
            format!("{sha} was deployed and rolled back already"),
        );
        r.outcome = "rolled_back".into();
        return Err(ToolError::failed(format!(
            "this release ({sha}) was rolled back by an earlier call and is not deployed again; \
             fix the change and release it on a new `branch`, or `sync` revision {sha} yourself"
        )));
    }
    let op = operate(argo, app, Some(sha), None, deadline, ctx)?;
    let ok = op.done;
    let got = op
        .status
        .as_ref()
        .map(|s| {
            format!(
                "{} / {} ({})",
                s.sync,
                s.health,
                s.operation.as_deref().unwrap_or("")
            )
        })
        .unwrap_or_default();
    r.end(t, if ok { "done" } else { "failed" }, got);
    r.sync = Some(op);
    Ok(ok)
}

/// The verdict after a sync: the deployer healthy at `sha`, then the http checks.
fn verified(
    a: &ReleaseArgs,
    target: &mut Target,
    sha: &str,
    deadline: Instant,
    ctx: &Ctx,
) -> Result<Verdict, ToolError> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_secs(1));
    let checks = a.http_checks.as_deref().unwrap_or_default();
    if let Target::Argo { argo, app } = target {
        return verify::verify(None, &[], Some((argo, app)), checks, left, ctx);
    }
    let what = target.what();
    let s = target.flux_now()?.unwrap_or_else(|| unreachable!());
    let mut out = vec![Check {
        check: what,
        ok: s.ready == "True" && flux_at(s.revision.as_deref(), sha),
        evidence: format!(
            "Ready={} ({}) at {}",
            s.ready,
            s.message.unwrap_or_default(),
            s.revision.unwrap_or_else(|| "?".into())
        ),
    }];
    if !checks.is_empty() {
        out.extend(verify::verify(None, &[], None, checks, left, ctx)?.checks);
    }
    let pass = out.iter().all(|c| c.ok);
    Ok(Verdict {
        verdict: if pass { "pass" } else { "fail" }.into(),
        checks: out,
    })
}

/// Argo CD: back to the deployment before this release (its history).
fn rollback_argo(
    argo: &Argo,
    app: &str,
    sha: &str,
    why: &str,
    deadline: Instant,
    ctx: &Ctx,
    r: &mut Release,
) -> Result<(), ToolError> {
    let Some(to) = r.rollback_to.clone() else {
        return Err(ToolError::failed(format!(
            "the release of {sha} failed: {why}; there is no earlier deployment to roll back to, \
             so it is left as it is. Look at the application (`status`)"
        )));
    };
    let t = r.begin(
        "rollback",
        format!(
            "Argo CD application {app} to history id {} (revision {})",
            to.id, to.revision
        ),
    );
    let op = operate(argo, app, None, Some(to.id), deadline, ctx)?;
    let ok = op.done;
    let state = op
        .status
        .as_ref()
        .map(|s| format!("{} / {}", s.sync, s.health))
        .unwrap_or_default();
    r.end(t, if ok { "done" } else { "failed" }, state.clone());
    r.rollback = Some(op);
    rolled_back(
        r,
        ok,
        sha,
        why,
        &format!("revision {} (history id {})", to.revision, to.id),
        &state,
    )
}

/// An Argo CD sync to `revision` (or a rollback to history id `rollback`), approved and waited
/// for until `deadline`.
fn operate(
    argo: &Argo,
    app: &str,
    revision: Option<&str>,
    rollback: Option<i64>,
    deadline: Instant,
    ctx: &Ctx,
) -> Result<OperationResult, ToolError> {
    argo.operate(
        &Operation {
            app,
            revision,
            rollback,
            prune: false,
            dry_run: false,
            apply: true,
            wait: true,
            timeout_secs: Some(secs_left(deadline)),
        },
        ctx,
    )
}

/// Flux: a revert pull request of the change, merged and reconciled.
#[allow(clippy::too_many_arguments)]
fn rollback_flux(
    a: &ReleaseArgs,
    forge: &Forge,
    target: &mut Target,
    sha: &str,
    why: &str,
    deadline: Instant,
    ctx: &Ctx,
    r: &mut Release,
) -> Result<(), ToolError> {
    let base = r
        .proposal
        .as_ref()
        .map(|p| p.base.clone())
        .or_else(|| a.propose.base.clone())
        .ok_or_else(|| {
            ToolError::invalid(
                "base",
                "the release failed and its revert needs the base branch: give `base`",
            )
        })?;
    let t = r.begin(
        "rollback",
        format!(
            "revert of {} into {base}, merged and reconciled",
            a.propose.branch
        ),
    );
    let p = propose::revert(
        &a.propose,
        &base,
        &format!("The release of {sha} failed: {why}."),
        ctx,
    )?;
    let pr = p.pull_request.clone().ok_or_else(|| {
        ToolError::failed("the revert was proposed without a pull request; call again")
    })?;
    r.revert = Some(p);
    if !a.merge.unwrap_or(false) {
        r.end(
            t,
            "waiting",
            format!("revert pull request #{} ({}) is open", pr.number, pr.url),
        );
        r.outcome = "failed".into();
        return Err(ToolError::failed(format!(
            "the release of {sha} failed: {why}. The revert is proposed as pull request #{} ({}); \
             merge it, then reconcile (or call release with merge: true to let it merge)",
            pr.number, pr.url
        )));
    }
    let revert = match pr.merge_commit_sha.clone().filter(|_| pr.merged) {
        Some(s) => s,
        None => merge_now(a, forge, pr.number)?,
    };
    let Target::Flux {
        cluster,
        namespace,
        name,
    } = target
    else {
        unreachable!("rollback_flux is for Flux targets")
    };
    let rec = reconcile_now(cluster, namespace, name, deadline)?;
    let ok = rec.done && flux_at(rec.status.revision.as_deref(), &revert);
    let state = format!(
        "Ready={} at {}",
        rec.status.ready,
        rec.status.revision.as_deref().unwrap_or("?")
    );
    r.end(t, if ok { "done" } else { "failed" }, state.clone());
    r.reconciles.push(rec);
    rolled_back(
        r,
        ok,
        sha,
        why,
        &format!("the revert {revert} (pull request #{})", pr.number),
        &state,
    )
}

/// Requests a reconcile of the Kustomization and waits for it until `deadline`.
fn reconcile_now(
    cluster: &mut Cluster,
    namespace: &str,
    name: &str,
    deadline: Instant,
) -> Result<Reconcile, ToolError> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_secs(1));
    flux::reconcile(
        cluster,
        "Kustomization",
        Some(namespace),
        name,
        true,
        Some(left),
    )
}

/// The error a rollback ends the release with, and its outcome.
fn rolled_back(
    r: &mut Release,
    ok: bool,
    sha: &str,
    why: &str,
    to: &str,
    state: &str,
) -> Result<(), ToolError> {
    r.outcome = if ok { "rolled_back" } else { "failed" }.into();
    Err(ToolError::failed(match ok {
        true => format!(
            "the release of {sha} failed: {why}; it was rolled back to {to}, now {state}. Fix the \
             change and release it on a new `branch`"
        ),
        false => format!(
            "the release of {sha} failed: {why}; the rollback to {to} did not succeed either \
             ({state}). Look at it now (`status`, k8s `diagnose`)"
        ),
    }))
}

/// The application once no operation runs and its health is no longer Progressing (or the
/// deadline came).
fn settle(argo: &Argo, app: &str, deadline: Instant) -> Result<AppStatus, ToolError> {
    let mut last = None;
    let left = deadline.saturating_duration_since(Instant::now());
    let _ = until(left, &format!("argo app {app}"), || {
        let s = argo.status(Some(app), None, false)?.remove(0);
        let running = s
            .operation
            .as_deref()
            .is_some_and(|p| p.starts_with("Running"))
            || s.health == "Progressing";
        let msg = format!("{} / {}", s.sync, s.health);
        last = Some(s);
        Ok(if running {
            Step::Waiting(msg)
        } else {
            Step::Done(())
        })
    })?;
    last.ok_or_else(|| ToolError::failed(format!("Argo CD showed no state of {app}; call again")))
}
