//! `verify`: is the release good? Rollout status of the workloads, optionally an Argo CD
//! application's sync and health, and HTTP checks (a URL and the status it must answer) — one
//! verdict, with the evidence of every check.

use infra_sdk::prelude::*;

use crate::argo::Argo;
use crate::caps::http;
use crate::cluster::Cluster;
use crate::rollout::{Workload, watch};

/// Bytes of an HTTP check's body kept as evidence.
const EVIDENCE_BYTES: usize = 200;

/// An HTTP check.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// The URL: absolute (its host must be granted under `[plugin.gitops.http] hosts`), or a
    /// path relative to `profile`'s base URL.
    pub url: String,
    /// The status it must answer (default 200).
    pub expect_status: Option<u16>,
    /// An http profile whose base URL and credentials to use.
    pub profile: Option<String>,
}

/// One check's outcome.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Check {
    /// What was checked: `rollout Deployment shop/api`, `argocd app shop`, `http GET …`.
    pub check: String,
    /// It passed.
    pub ok: bool,
    /// What was seen.
    pub evidence: String,
}

/// The verdict.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Verdict {
    /// `pass` when every check passed, else `fail`.
    pub verdict: String,
    /// Every check, with its evidence.
    pub checks: Vec<Check>,
}

/// Runs the checks: rollouts (waiting up to `budget`), then Argo CD, then HTTP.
pub fn verify(
    cluster: Option<&Cluster>,
    workloads: &[Workload],
    argo: Option<(&Argo, &str)>,
    checks: &[HttpCheck],
    budget: std::time::Duration,
    ctx: &Ctx,
) -> Result<Verdict, ToolError> {
    let mut out = Vec::new();
    if let Some(c) = cluster {
        for r in watch(c, workloads, budget)? {
            let mut evidence = r.message.clone();
            if !r.reasons.is_empty() {
                evidence.push_str(&format!("; {}", r.reasons.join("; ")));
            }
            out.push(Check {
                check: format!("rollout {}", r.workload),
                ok: r.done,
                evidence,
            });
        }
    }
    if let Some((a, app)) = argo {
        let s = a.status(Some(app), None, false)?.remove(0);
        let unhealthy: Vec<String> = s
            .resources
            .iter()
            .filter(|r| r.health.as_deref().is_some_and(|h| h != "Healthy"))
            .map(|r| format!("{} {}", r.object, r.health.clone().unwrap_or_default()))
            .collect();
        out.push(Check {
            check: format!("argocd app {app}"),
            ok: s.sync == "Synced" && s.health == "Healthy",
            evidence: format!(
                "{} / {} at {}{}",
                s.sync,
                s.health,
                s.revision.unwrap_or_else(|| "?".into()),
                if unhealthy.is_empty() {
                    String::new()
                } else {
                    format!("; not healthy: {}", unhealthy.join(", "))
                }
            ),
        });
    }
    for (i, hc) in checks.iter().enumerate() {
        let want = hc.expect_status.unwrap_or(200);
        let req = http::Request {
            method: "GET".into(),
            url: hc.url.clone(),
            headers: Vec::new(),
            body: None,
            profile: hc.profile.clone(),
            timeout_ms: ctx.timeout_ms.min(10_000),
            max_bytes: EVIDENCE_BYTES as u64,
            max_redirects: 0,
            retries: 1,
        };
        let label = format!("http GET {}", hc.url);
        out.push(match http::send(&req) {
            Ok(r) => {
                let body: String = String::from_utf8_lossy(&r.body)
                    .chars()
                    .take(EVIDENCE_BYTES)
                    .collect();
                Check {
                    check: label,
                    ok: r.status == want,
                    evidence: format!("status {} (expected {want}): {}", r.status, body.trim()),
                }
            }
            Err(e) => {
                let e = ToolError::from(e);
                if e.kind == ErrorKind::Invalid {
                    return Err(ToolError::invalid(format!("http_checks[{i}]"), e.message));
                }
                Check {
                    check: label,
                    ok: false,
                    evidence: e.message,
                }
            }
        });
    }
    if out.is_empty() {
        return Err(ToolError::invalid(
            "workloads",
            "nothing to verify: give `workloads` or `manifests` (with `profile`), `app` (with \
             `argocd_profile`) or `http_checks`",
        ));
    }
    Ok(Verdict {
        verdict: if out.iter().all(|c| c.ok) {
            "pass"
        } else {
            "fail"
        }
        .into(),
        checks: out,
    })
}
