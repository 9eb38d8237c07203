//! `release`: the GitOps cycle in one call — propose the change as a pull request, wait for its
//! merge (or merge it, when asked and approved), sync the Argo CD application to the merge
//! commit, verify, and on failure roll back to what was deployed before. Each stage is marked
//! through the host's `log.stage`, so the call's audit record tells the story in order, among
//! the capability uses of each stage, and the client sees each stage as progress.
//!
//! A release keeps no state of its own: the forge and Argo CD hold it. Called again with the
//! same arguments — after a restart, or after a timeout while a person reviews the pull request —
//! it finds the pull request (open or merged) and the application's history, and goes on from
//! the first stage not done. A release already rolled back is not deployed again.

use std::time::{Duration, Instant};

use infra_sdk::kube::check_name;
use infra_sdk::prelude::*;

use crate::apply::approve;
use crate::argo::{AppStatus, Argo, HistoryEntry, Operation, OperationResult};
use crate::caps::log;
use crate::forge::{Forge, PullRequest};
use crate::propose::{self, Proposal, ProposeArgs};
use crate::verify::{self, HttpCheck, Verdict};
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
    /// The http profile of Argo CD.
    pub argocd_profile: Option<String>,
    /// The Argo CD application that deploys the repository's base branch.
    pub app: String,
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

/// `release` (see the module's doc).
pub fn release(a: &ReleaseArgs, apply: bool, ctx: &Ctx) -> Result<Release, ToolError> {
    check_name("app", &a.app)?;
    let argo = Argo::new(a.argocd_profile.as_deref(), ctx)?;
    let forge = Forge::new(
        a.propose.forge.unwrap_or_default(),
        a.propose.forge_profile.as_deref(),
        &a.propose.repository,
        ctx,
    )?;
    let (budget, note) = wait::budget(a.timeout_secs, ctx)?;
    let deadline = Instant::now() + budget;
    let merge = a.merge.unwrap_or(false);
    let rollback = a.rollback.unwrap_or(true);
    let mut r = Release::default();
    r.notes.extend(note);
    let app = argo.status(Some(&a.app), None, true)?.remove(0);
    if !apply {
        plan(a, &forge, &app, budget, ctx, &mut r)?;
        return Ok(r);
    }
    match run(a, &forge, &argo, deadline, merge, rollback, ctx, &mut r) {
        Ok(()) => Ok(r),
        Err(e) => Err(r.fail(e)),
    }
}

/// Without `apply`: what each stage would do, from what the forge and Argo CD show now.
fn plan(
    a: &ReleaseArgs,
    forge: &Forge,
    app: &AppStatus,
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
    r.planned(
        "merge",
        match a.merge.unwrap_or(false) {
            true => {
                "merge the pull request through the forge's API, after the guard's approval".into()
            }
            false => format!(
                "wait up to {} s for a person to merge the pull request",
                budget.as_secs()
            ),
        },
    );
    r.planned(
        "sync",
        format!(
            "sync Argo CD application {} to the merge commit and wait for Synced and Healthy; \
             now {} / {} at {}",
            a.app,
            app.sync,
            app.health,
            app.revision.as_deref().unwrap_or("?")
        ),
    );
    let checks = a.http_checks.as_deref().unwrap_or_default();
    r.planned(
        "verify",
        format!(
            "Argo CD application {} Synced and Healthy{}",
            a.app,
            match checks.len() {
                0 => String::new(),
                n => format!(", {n} http check(s)"),
            }
        ),
    );
    let to = app.revision.as_deref().and_then(|rev| {
        app.history
            .iter()
            .rev()
            .find(|h| h.revision == rev)
            .cloned()
    });
    r.planned(
        "rollback",
        match (a.rollback.unwrap_or(true), &to) {
            (false, _) => "none: rollback is false; a failure is reported and left as it is".into(),
            (true, Some(h)) => format!(
                "if the sync or the verification fails: roll back to history id {} (revision {})",
                h.id, h.revision
            ),
            (true, None) => "none possible: the application has no deployment to return to".into(),
        },
    );
    r.rollback_to = to;
    r.outcome = "planned".into();
    r.notes.push(
        "nothing was changed: this is the plan. After the user has reviewed it, call again with \
         apply: true; a release interrupted (or timed out waiting for the merge) goes on from \
         where it stopped when called again with the same arguments"
            .into(),
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run(
    a: &ReleaseArgs,
    forge: &Forge,
    argo: &Argo,
    deadline: Instant,
    merge: bool,
    rollback: bool,
    ctx: &Ctx,
    r: &mut Release,
) -> Result<(), ToolError> {
    let branch = &a.propose.branch;

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

    // Merge: found merged, merged here, or waited for.
    let t = r.begin("merge", format!("pull request #{} ({})", pr.number, pr.url));
    let (sha, how) = if let Some(sha) = pr.merge_commit_sha.clone().filter(|_| pr.merged) {
        (sha, "skipped")
    } else if merge {
        let head = forge
            .get_pull(pr.number)?
            .head_sha
            .ok_or_else(|| ToolError::failed("the forge shows no head commit; call again"))?;
        approve(
            "forge",
            &format!("{}#{}", a.propose.repository, pr.number),
            Vec::new(),
            &format!(
                "merge pull request #{} ({branch} at {head}) into {} on {}",
                pr.number,
                r.proposal.as_ref().map_or("its base", |p| p.base.as_str()),
                a.propose.repository
            ),
        )?;
        (forge.merge_pull(pr.number, &head)?, "done")
    } else {
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
            Ok(Some(sha)) => (sha, "done"),
            Ok(None) => {
                return Err(ToolError::failed(format!(
                    "pull request #{} was closed without being merged: nothing was deployed. \
                     Open a new one (another `branch`) if the change is still wanted",
                    pr.number
                )));
            }
            Err(_) => {
                r.outcome = "waiting".into();
                r.end(
                    t,
                    "waiting",
                    format!("pull request #{} is not merged yet", pr.number),
                );
                return Err(ToolError::timeout(format!(
                    "pull request #{} ({}) is not merged yet. Once it is, call release again \
                     with the same arguments: it goes on from the merge (or pass merge: true to \
                     merge it through the forge)",
                    pr.number, pr.url
                )));
            }
        }
    };
    r.end(t, how, format!("merge commit {sha}"));
    r.revision = Some(sha.clone());

    // Sync to the merge commit, unless this revision is deployed (or was rolled back) already.
    let t = r.begin("sync", format!("Argo CD application {} to {sha}", a.app));
    let now = argo.status(Some(&a.app), None, true)?.remove(0);
    r.rollback_to = before(&now, &sha);
    let last = now.history.last().map(|h| h.revision.as_str());
    let synced = if last == Some(sha.as_str()) {
        let settled = settle(argo, &a.app, deadline)?;
        let ok = settled.health == "Healthy" && settled.sync == "Synced";
        r.end(
            t,
            "skipped",
            format!(
                "{sha} is deployed already: {} / {}",
                settled.sync, settled.health
            ),
        );
        ok
    } else if now.history.iter().any(|h| h.revision == sha) {
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
    } else {
        let op = argo.operate(
            &Operation {
                app: &a.app,
                revision: Some(&sha),
                rollback: None,
                prune: false,
                dry_run: false,
                apply: true,
                wait: true,
                timeout_secs: Some(secs_left(deadline)),
            },
            ctx,
        )?;
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
        ok
    };

    let mut why = String::new();
    if synced {
        let t = r.begin(
            "verify",
            format!("Argo CD application {} and the http checks", a.app),
        );
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        let v = verify::verify(
            None,
            &[],
            Some((argo, &a.app)),
            a.http_checks.as_deref().unwrap_or_default(),
            left,
            ctx,
        )?;
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

    // Roll back to the deployment before this release.
    let Some(to) = r.rollback_to.clone().filter(|_| rollback) else {
        let left = match rollback {
            true => "there is no earlier deployment to roll back to",
            false => "rollback is false",
        };
        return Err(ToolError::failed(format!(
            "the release of {sha} failed: {why}; {left}, so it is left as it is. Look at the \
             application (`status`) and roll back with `rollback` if needed"
        )));
    };
    let t = r.begin(
        "rollback",
        format!(
            "Argo CD application {} to history id {} (revision {})",
            a.app, to.id, to.revision
        ),
    );
    let op = argo.operate(
        &Operation {
            app: &a.app,
            revision: None,
            rollback: Some(to.id),
            prune: false,
            dry_run: false,
            apply: true,
            wait: true,
            timeout_secs: Some(secs_left(deadline)),
        },
        ctx,
    )?;
    let ok = op.done;
    let state = op
        .status
        .as_ref()
        .map(|s| format!("{} / {}", s.sync, s.health))
        .unwrap_or_default();
    r.end(t, if ok { "done" } else { "failed" }, state.clone());
    r.rollback = Some(op);
    r.outcome = if ok { "rolled_back" } else { "failed" }.into();
    Err(ToolError::failed(match ok {
        true => format!(
            "the release of {sha} failed: {why}; it was rolled back to revision {} (history id \
             {}), now {state}. Fix the change and release it on a new `branch`",
            to.revision, to.id
        ),
        false => format!(
            "the release of {sha} failed: {why}; the rollback to revision {} (history id {}) did \
             not succeed either ({state}). Look at the application now (`status`, k8s \
             `diagnose`)",
            to.revision, to.id
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
