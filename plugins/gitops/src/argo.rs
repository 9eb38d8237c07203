//! Argo CD through its REST API with an `http` profile (the host injects the token): `status`
//! (sync and health per application and per resource), `refresh`, `history`, and the writes
//! `sync` and `rollback` — each asks the host's guard (kind `argocd`, the profile as target)
//! unless it is a dry run — with an optional wait for Synced/Healthy.

use infra_sdk::kube::{check_name, encode};
use infra_sdk::prelude::*;

use crate::apply::{ApprovalInfo, approve};
use crate::rest::Rest;
use crate::wait::{Step, until};

/// Most bytes of one Argo CD answer held in the plugin.
const MAX_BODY: u64 = 16 * 1024 * 1024;

/// An Argo CD instance through one profile.
pub struct Argo {
    /// The profile's name.
    pub profile: String,
    timeout_ms: u32,
}

/// One resource an application manages.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AppResource {
    /// `Deployment shop/api`.
    pub object: String,
    /// `Synced`, `OutOfSync`.
    pub sync: String,
    /// `Healthy`, `Progressing`, `Degraded`, `Missing`, … (absent for kinds without health).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
}

/// One deployment in an application's history.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HistoryEntry {
    /// Pass it to `rollback` as `id`.
    pub id: i64,
    /// The revision deployed.
    pub revision: String,
    /// When.
    pub deployed_at: String,
}

/// An application's state.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AppStatus {
    /// The application.
    pub name: String,
    /// `Synced`, `OutOfSync`, `Unknown`.
    pub sync: String,
    /// `Healthy`, `Progressing`, `Degraded`, `Suspended`, `Missing`, `Unknown`.
    pub health: String,
    /// The revision it is synced to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The last operation: `Succeeded`, `Failed`, `Running`, … and its message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Per resource (one application).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<AppResource>,
    /// Deployments, newest last (`history`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or("Unknown").to_string()
}

/// The state of an application from its JSON; `history` only when asked.
pub fn app_status(a: &Value, with_history: bool) -> AppStatus {
    let st = &a["status"];
    let op = &st["operationState"];
    let resources = st["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let ns = r["namespace"].as_str().filter(|n| !n.is_empty());
            let name = r["name"].as_str().unwrap_or("?");
            AppResource {
                object: match ns {
                    Some(ns) => format!("{} {ns}/{name}", s(&r["kind"])),
                    None => format!("{} {name}", s(&r["kind"])),
                },
                sync: s(&r["status"]),
                health: r["health"]["status"].as_str().map(str::to_string),
            }
        })
        .collect();
    let history = if with_history {
        st["history"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| HistoryEntry {
                id: h["id"].as_i64().unwrap_or(-1),
                revision: s(&h["revision"]),
                deployed_at: s(&h["deployedAt"]),
            })
            .collect()
    } else {
        Vec::new()
    };
    AppStatus {
        name: s(&a["metadata"]["name"]),
        sync: s(&st["sync"]["status"]),
        health: s(&st["health"]["status"]),
        revision: st["sync"]["revision"].as_str().map(str::to_string),
        operation: op["phase"].as_str().map(|p| {
            format!("{p}: {}", op["message"].as_str().unwrap_or(""))
                .trim_end_matches(": ")
                .to_string()
        }),
        resources,
        history,
    }
}

impl Argo {
    /// Argo CD through `profile` (an `http` entry of profiles.json with its base URL and token).
    pub fn new(profile: Option<&str>, ctx: &Ctx) -> Result<Self, ToolError> {
        let profile = profile.filter(|p| !p.is_empty()).ok_or_else(|| {
            ToolError::invalid(
                "argocd_profile",
                "missing: name the http profile of profiles.json whose base_url is the Argo CD \
                 server and whose auth is its bearer token",
            )
        })?;
        Ok(Self {
            profile: profile.into(),
            timeout_ms: ctx.timeout_ms,
        })
    }

    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, ToolError> {
        let (resp, v) = Rest {
            profile: &self.profile,
            timeout_ms: self.timeout_ms,
            max_bytes: MAX_BODY,
            accept: "application/json",
        }
        .json(method, path, body)?;
        if (200..300).contains(&resp.status) {
            return Ok(v);
        }
        let says = v["message"]
            .as_str()
            .or(v["error"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&resp.body)
                    .chars()
                    .take(300)
                    .collect()
            });
        let p = &self.profile;
        Err(match resp.status {
            401 => ToolError::denied(format!(
                "Argo CD (profile {p:?}) rejected the token (401: {says}); renew the token the \
                 profile references (argocd account generate-token)"
            )),
            403 => ToolError::denied(format!(
                "Argo CD (profile {p:?}) forbids {method} {path} (403: {says}); give the \
                 token's account the RBAC permission in argocd-rbac-cm"
            )),
            404 => ToolError::not_found(format!(
                "Argo CD (profile {p:?}): {says}; list the applications with `status` and no `app`"
            )),
            400 => ToolError::invalid(
                "arguments",
                format!("Argo CD refused {method} {path}: {says}"),
            ),
            code => ToolError::failed(format!(
                "Argo CD (profile {p:?}) answered {code} to {method} {path}: {says}; retry later"
            )),
        })
    }

    fn app_path(app: &str) -> Result<String, ToolError> {
        check_name("app", app)?;
        Ok(format!("api/v1/applications/{}", encode(app)))
    }

    /// Every application's state, or one's with its resources (and history when asked);
    /// `refresh` (`normal`, `hard`) makes Argo CD compare with git again first.
    pub fn status(
        &self,
        app: Option<&str>,
        refresh: Option<&str>,
        history: bool,
    ) -> Result<Vec<AppStatus>, ToolError> {
        let Some(app) = app else {
            let list = self.send("GET", "api/v1/applications", None)?;
            return Ok(list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    let mut s = app_status(a, history);
                    s.resources.clear();
                    s
                })
                .collect());
        };
        let mut path = Self::app_path(app)?;
        if let Some(r) = refresh {
            if !matches!(r, "normal" | "hard") {
                return Err(ToolError::invalid(
                    "mode",
                    format!("{r:?}: use `normal` or `hard`"),
                ));
            }
            path.push_str(&format!("?refresh={r}"));
        }
        Ok(vec![app_status(&self.send("GET", &path, None)?, history)])
    }

    /// Runs a sync (`rollback: None`) or a rollback to a history id, guarded unless a dry run;
    /// without `apply` only says what it would do. With `wait`, waits for the outcome.
    pub fn operate(&self, op: &Operation, ctx: &Ctx) -> Result<OperationResult, ToolError> {
        let path = Self::app_path(op.app)?;
        let before = app_status(&self.send("GET", &path, None)?, op.rollback.is_some());
        let (verb, body) = match op.rollback {
            Some(id) => {
                if !before.history.iter().any(|h| h.id == id) {
                    let ids: Vec<String> =
                        before.history.iter().map(|h| h.id.to_string()).collect();
                    return Err(ToolError::invalid(
                        "id",
                        format!(
                            "application {} has no history id {id}; its ids are {} (see `history`)",
                            op.app,
                            ids.join(", ")
                        ),
                    ));
                }
                (
                    "rollback",
                    json!({"id": id, "prune": op.prune, "dryRun": op.dry_run}),
                )
            }
            None => {
                let mut b = json!({"prune": op.prune, "dryRun": op.dry_run});
                if let Some(r) = op.revision {
                    b["revision"] = json!(r);
                }
                ("sync", b)
            }
        };
        let plan = match op.rollback {
            Some(id) => {
                let rev = before
                    .history
                    .iter()
                    .find(|h| h.id == id)
                    .map(|h| h.revision.clone())
                    .unwrap_or_default();
                format!(
                    "roll back Argo CD application {} to history id {id} (revision {rev}){}; now {} / {} at {}",
                    op.app,
                    if op.prune { ", pruning" } else { "" },
                    before.sync,
                    before.health,
                    before.revision.as_deref().unwrap_or("?")
                )
            }
            None => format!(
                "sync Argo CD application {} to {}{}; now {} / {} at {}",
                op.app,
                op.revision.unwrap_or("its target revision"),
                if op.prune { ", pruning" } else { "" },
                before.sync,
                before.health,
                before.revision.as_deref().unwrap_or("?")
            ),
        };
        let mut result = OperationResult {
            plan: plan.clone(),
            approval: None,
            status: None,
            done: false,
            notes: Vec::new(),
        };
        if !op.dry_run && !op.apply {
            result.status = Some(before);
            result.notes.push(format!(
                "nothing was changed: this is what `{verb}` would do. Call again with apply: true \
                 after the user has reviewed it, or with dry_run: true for Argo CD's own dry run"
            ));
            return Ok(result);
        }
        if !op.dry_run {
            result.approval = Some(approve("argocd", &self.profile, Vec::new(), &plan)?);
        }
        let after = self.send("POST", &format!("{path}/{verb}"), Some(body))?;
        let mut status = app_status(&after, op.rollback.is_some());
        if op.wait && !op.dry_run {
            let (budget, note) = crate::wait::budget(op.timeout_secs, ctx)?;
            result.notes.extend(note);
            let rollback = op.rollback.is_some();
            let outcome = until(budget, &format!("argo {verb} {}", op.app), || {
                let now = app_status(&self.send("GET", &path, None)?, rollback);
                let phase = now.operation.clone().unwrap_or_default();
                let failed = phase.starts_with("Failed")
                    || phase.starts_with("Error")
                    || now.health == "Degraded";
                // A rollback leaves the app OutOfSync with its target revision, by design.
                let synced = rollback || now.sync == "Synced";
                let ok = phase.starts_with("Succeeded") && synced && now.health == "Healthy";
                let msg = format!("{} / {} ({phase})", now.sync, now.health);
                status = now;
                Ok(if ok || failed {
                    Step::Done(ok)
                } else {
                    Step::Waiting(msg)
                })
            })?;
            result.done = matches!(outcome, Ok(true));
            match outcome {
                Ok(true) => {}
                Ok(false) => result.notes.push(format!(
                    "the {verb} did not succeed: {} / {} ({}); see `status` for the resources",
                    status.sync,
                    status.health,
                    status.operation.clone().unwrap_or_default()
                )),
                Err(last) => result
                    .notes
                    .push(format!("timed out waiting for Synced and Healthy: {last}")),
            }
        }
        result.status = Some(status);
        Ok(result)
    }
}

/// A sync or rollback as asked.
pub struct Operation<'a> {
    /// The application.
    pub app: &'a str,
    /// Sync: the revision (default: the app's target revision).
    pub revision: Option<&'a str>,
    /// Rollback: the history id.
    pub rollback: Option<i64>,
    /// Delete resources no longer in git.
    pub prune: bool,
    /// Argo CD's own dry run (no approval needed).
    pub dry_run: bool,
    /// The call said `apply: true`.
    pub apply: bool,
    /// Wait for the outcome.
    pub wait: bool,
    /// Seconds to wait.
    pub timeout_secs: Option<u64>,
}

/// What a sync or rollback did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct OperationResult {
    /// What it does, as shown for approval.
    pub plan: String,
    /// The guard's approval (absent for a dry run or without apply).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalInfo>,
    /// The application afterwards (or now, without apply).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<AppStatus>,
    /// With `wait`: it ended Synced (a rollback: succeeded) and Healthy.
    pub done: bool,
    /// What the agent should know.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}
