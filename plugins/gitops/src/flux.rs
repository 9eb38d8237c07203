//! Flux through the Kubernetes API: `reconcile` asks the controller to reconcile a
//! Kustomization or HelmRelease now, as `flux reconcile` does — a merge patch of the annotation
//! `reconcile.fluxcd.io/requestedAt` (a guarded write) — then waits until the controller has
//! handled that request (`status.lastHandledReconcileAt`) and reports the `Ready` condition.

use infra_sdk::kube::{check_name, check_namespace, format_time};
use infra_sdk::prelude::*;

use crate::apply::{ApprovalInfo, approve};
use crate::cluster::Cluster;
use crate::wait::{Step, until};

/// The annotation Flux controllers watch for on-demand reconciles.
pub const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

/// The state of a Flux object.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FluxStatus {
    /// `Kustomization flux-system/apps`.
    pub object: String,
    /// The `Ready` condition's status: `True`, `False`, `Unknown`.
    pub ready: String,
    /// Its reason (`ReconciliationSucceeded`, `BuildFailed`, `HealthCheckFailed`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The revision last applied (`status.lastAppliedRevision`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The controller has handled the reconcile this call requested.
    pub handled: bool,
}

/// What `reconcile` did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Reconcile {
    /// The value written to `reconcile.fluxcd.io/requestedAt` (absent without apply).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<String>,
    /// The guard's approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalInfo>,
    /// The object's state at the end.
    pub status: FluxStatus,
    /// Ready=True after the controller handled the request.
    pub done: bool,
}

/// Now in RFC 3339 with nanoseconds, as `flux reconcile` writes it: two requests within one
/// second must differ, or the controller would take the second for the first, handled already.
fn requested_at() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = format_time(now.as_secs() as i64);
    format!("{}.{:09}Z", secs.trim_end_matches('Z'), now.subsec_nanos())
}

fn status_of(kind: &str, ns: &str, obj: &Value, requested: Option<&str>) -> FluxStatus {
    let st = &obj["status"];
    let ready = st["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready");
    let get = |k: &str| ready.and_then(|c| c[k].as_str()).map(str::to_string);
    FluxStatus {
        object: format!(
            "{kind} {ns}/{}",
            obj["metadata"]["name"].as_str().unwrap_or("?")
        ),
        ready: get("status").unwrap_or_else(|| "Unknown".into()),
        reason: get("reason"),
        message: get("message"),
        revision: st["lastAppliedRevision"].as_str().map(str::to_string),
        handled: requested.is_some_and(|r| st["lastHandledReconcileAt"] == r),
    }
}

/// Requests a reconcile of `kind` (`Kustomization`, `HelmRelease`) `name` and waits for Ready.
pub fn reconcile(
    c: &mut Cluster,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    apply: bool,
    wait: Option<std::time::Duration>,
) -> Result<Reconcile, ToolError> {
    let qualified = match kind.to_ascii_lowercase().as_str() {
        "kustomization" | "kustomizations" | "ks" => "kustomizations.kustomize.toolkit.fluxcd.io",
        "helmrelease" | "helmreleases" | "hr" => "helmreleases.helm.toolkit.fluxcd.io",
        _ => {
            return Err(ToolError::invalid(
                "kind",
                format!("{kind:?}: reconcile takes `Kustomization` or `HelmRelease`"),
            ));
        }
    };
    check_name("name", name)?;
    let ns = namespace.unwrap_or("flux-system");
    check_namespace("namespace", ns)?;
    let r = c.resolve(qualified)?;
    let path = r.object_path(Some(ns), name);
    let res = r.qualified();
    let access = c.access("get", &res, Some(ns), Some(name));
    let obj = c.get(&path, &access)?;
    if !apply {
        return Ok(Reconcile {
            requested_at: None,
            approval: None,
            status: status_of(&r.kind, ns, &obj, None),
            done: false,
        });
    }
    let requested = requested_at();
    let plan = format!(
        "annotate {} {ns}/{name} with {REQUESTED_AT}={requested} (Flux reconciles it now)",
        r.kind
    );
    let approval = approve("kubernetes", &c.profile, vec![ns.to_string()], &plan)?;
    let patch = json!({"metadata": {"annotations": {REQUESTED_AT: requested}}});
    let a = c.merge_patch(&path, &patch)?;
    if !a.ok() {
        return Err(a.error(&c.access("patch", &res, Some(ns), Some(name))));
    }
    let mut status = status_of(&r.kind, ns, &a.body, Some(&requested));
    let mut done = status.handled && status.ready == "True";
    if let Some(budget) = wait {
        let outcome = until(budget, &format!("flux reconcile {name}"), || {
            let obj = c.get(&path, &access)?;
            status = status_of(&r.kind, ns, &obj, Some(&requested));
            if status.handled && status.ready != "Unknown" {
                return Ok(Step::Done(status.ready == "True"));
            }
            Ok(Step::Waiting(format!(
                "Ready={} ({}), request {}handled",
                status.ready,
                status.reason.clone().unwrap_or_default(),
                if status.handled { "" } else { "not yet " }
            )))
        })?;
        done = matches!(outcome, Ok(true));
    }
    Ok(Reconcile {
        requested_at: Some(requested),
        approval: Some(approval),
        status,
        done,
    })
}
