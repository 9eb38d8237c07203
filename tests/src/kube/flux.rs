//! A stand-in for Flux's controllers: when a write through the API sets a new
//! `reconcile.fluxcd.io/requestedAt` on a Kustomization or HelmRelease, the object is
//! reconciled at once — `status.lastHandledReconcileAt`, `observedGeneration` and the `Ready`
//! condition the test chose (`KubeApi::set_flux_outcome`; Ready=True by default), or the one a
//! judge gives from what the source holds at that moment (`KubeApi::judge_flux`: the revision
//! fetched, and whether it applies), recorded as `lastAttemptedRevision` and, when Ready,
//! `lastAppliedRevision`, as Flux does.

use std::collections::HashMap;
use std::time::SystemTime;

use serde_json::{Value, json};

use super::resources::Resource;
use super::store::{Store, rfc3339};

/// The annotation `flux reconcile` sets.
const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

/// What a reconcile of one object ends with: (Ready, reason, message).
pub type Outcome = (bool, String, String);

/// Outcomes by (kind, namespace, name).
pub type Outcomes = HashMap<(String, String, String), Outcome>;

/// Decides a reconcile when it happens: the revision the source is at, and the outcome.
pub type Judge = std::sync::Arc<dyn Fn() -> (String, Outcome) + Send + Sync>;

/// Judges by (kind, namespace, name).
pub type Judges = HashMap<(String, String, String), Judge>;

fn is_flux(res: &Resource) -> bool {
    matches!(
        (res.group.as_str(), res.kind.as_str()),
        ("kustomize.toolkit.fluxcd.io", "Kustomization")
            | ("helm.toolkit.fluxcd.io", "HelmRelease")
    )
}

/// Called after an API write of `obj`: reconciles it when a new reconcile was requested.
pub fn after_write(store: &mut Store, res: &Resource, ns: &str, obj: &Value) {
    if !is_flux(res) {
        return;
    }
    let Some(requested) = obj["metadata"]["annotations"][REQUESTED_AT].as_str() else {
        return;
    };
    if obj["status"]["lastHandledReconcileAt"].as_str() == Some(requested) {
        return;
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let key = (res.kind.clone(), ns.to_string(), name.to_string());
    let judged = store.flux_judges.get(&key).map(|j| j());
    let revision = judged.as_ref().map(|(r, _)| r.clone());
    let (ready, reason, message) = judged
        .map(|(_, o)| o)
        .or_else(|| store.flux_outcomes.get(&key).cloned())
        .unwrap_or_else(|| {
            (
                true,
                "ReconciliationSucceeded".into(),
                "Applied revision: main@sha1:0000000000000000000000000000000000000000".into(),
            )
        });
    let mut next = obj.clone();
    let status = &mut next["status"];
    status["lastHandledReconcileAt"] = json!(requested);
    if let Some(r) = revision {
        status["lastAttemptedRevision"] = json!(r);
        if ready {
            status["lastAppliedRevision"] = json!(r);
        }
    }
    status["observedGeneration"] = obj["metadata"]["generation"].clone();
    status["conditions"] = json!([{
        "type": "Ready", "status": if ready { "True" } else { "False" }, "reason": reason,
        "message": message, "lastTransitionTime": rfc3339(SystemTime::now()),
        "observedGeneration": obj["metadata"]["generation"],
    }]);
    store.commit(res, ns, next);
}
