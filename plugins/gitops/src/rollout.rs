//! `rollout_status`: waits until Deployments, StatefulSets and DaemonSets have observed their
//! newest generation and have it updated and available, by the rules `kubectl rollout status`
//! applies to each kind — or until the time is up, then says why: the Progressing condition's
//! message and what the workload's pods are waiting for (CrashLoopBackOff, ImagePullBackOff, …).

use infra_sdk::kube::{ApiResource, check_name, check_namespace, query_string};
use infra_sdk::prelude::*;

use crate::cluster::Cluster;
use crate::objects::Obj;
use crate::wait::{Step, until};

/// Pods examined per workload for the reason of a stuck rollout.
const PODS_EXAMINED: u32 = 50;

/// One workload to watch.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Its type.
    pub resource: ApiResource,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl Workload {
    fn label(&self) -> String {
        format!("{} {}/{}", self.resource.kind, self.namespace, self.name)
    }
}

/// The state of one rollout.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Rollout {
    /// `Deployment shop/api`.
    pub workload: String,
    /// The new generation is observed, updated and available.
    pub done: bool,
    /// What `kubectl rollout status` would print.
    pub message: String,
    /// The rollout cannot finish by itself (the Progressing condition says the deadline passed).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    /// Why it is not done: the Progressing condition and the pods' waiting reasons.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// Workloads named `kind/name` (`deployment/api`, `statefulsets.apps/db`) in `namespace`.
pub fn named(
    c: &mut Cluster,
    names: &[String],
    namespace: &str,
) -> Result<Vec<Workload>, ToolError> {
    check_namespace("namespace", namespace)?;
    let mut out = Vec::new();
    for n in names {
        let Some((kind, name)) = n.split_once('/') else {
            return Err(ToolError::invalid(
                "workloads",
                format!("{n:?}: write `kind/name`, e.g. `deployment/api` or `statefulset/db`"),
            ));
        };
        check_name("workloads", name)?;
        let r = c.resolve(kind)?;
        if !is_workload(&r) {
            return Err(ToolError::invalid(
                "workloads",
                format!(
                    "{n:?} is a {}; rollout status covers Deployments, StatefulSets and DaemonSets",
                    r.kind
                ),
            ));
        }
        out.push(Workload {
            resource: r,
            namespace: namespace.into(),
            name: name.into(),
        });
    }
    Ok(out)
}

/// The workloads among a set of objects.
pub fn from_objects(objs: &[Obj]) -> Vec<Workload> {
    objs.iter()
        .filter_map(|o| {
            let r = o.resource.clone()?;
            is_workload(&r).then(|| Workload {
                resource: r,
                namespace: o.namespace.clone().unwrap_or_default(),
                name: o.name.clone(),
            })
        })
        .collect()
}

fn is_workload(r: &ApiResource) -> bool {
    r.group == "apps" && matches!(r.kind.as_str(), "Deployment" | "StatefulSet" | "DaemonSet")
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// The status of one workload object by its kind's rules: `(done, failed, message)`.
pub fn assess(kind: &str, obj: &Value) -> (bool, bool, String) {
    let spec = &obj["spec"];
    let st = &obj["status"];
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    if int(&obj["metadata"]["generation"]) > int(&st["observedGeneration"]) {
        return (
            false,
            false,
            format!("waiting for {kind} {name:?} spec update to be observed"),
        );
    }
    match kind {
        "Deployment" => {
            let progressing = st["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Progressing");
            if progressing.is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded") {
                return (
                    false,
                    true,
                    format!("deployment {name:?} exceeded its progress deadline"),
                );
            }
            let want = spec["replicas"].as_i64().unwrap_or(1);
            let (updated, replicas, available) = (
                int(&st["updatedReplicas"]),
                int(&st["replicas"]),
                int(&st["availableReplicas"]),
            );
            if updated < want {
                (
                    false,
                    false,
                    format!(
                        "waiting for deployment {name:?} rollout to finish: {updated} out of {want} new replicas have been updated"
                    ),
                )
            } else if replicas > updated {
                (
                    false,
                    false,
                    format!(
                        "waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination",
                        replicas - updated
                    ),
                )
            } else if available < updated {
                (
                    false,
                    false,
                    format!(
                        "waiting for deployment {name:?} rollout to finish: {available} of {updated} updated replicas are available"
                    ),
                )
            } else {
                (
                    true,
                    false,
                    format!("deployment {name:?} successfully rolled out"),
                )
            }
        }
        "StatefulSet" => {
            if spec["updateStrategy"]["type"]
                .as_str()
                .is_some_and(|t| t != "RollingUpdate")
            {
                return (
                    true,
                    false,
                    format!(
                        "statefulset {name:?} uses the {} strategy: its rollout is not tracked",
                        spec["updateStrategy"]["type"].as_str().unwrap_or_default()
                    ),
                );
            }
            let want = spec["replicas"].as_i64().unwrap_or(1);
            let ready = int(&st["readyReplicas"]);
            if ready < want {
                return (
                    false,
                    false,
                    format!("waiting for {} pods to be ready", want - ready),
                );
            }
            let partition = int(&spec["updateStrategy"]["rollingUpdate"]["partition"]);
            if partition > 0 {
                let updated = int(&st["updatedReplicas"]);
                if updated < want - partition {
                    return (
                        false,
                        false,
                        format!(
                            "waiting for partitioned roll out to finish: {updated} out of {} new pods have been updated",
                            want - partition
                        ),
                    );
                }
                return (
                    true,
                    false,
                    format!("partitioned roll out complete: {updated} new pods have been updated"),
                );
            }
            if st["updateRevision"] != st["currentRevision"] {
                return (
                    false,
                    false,
                    format!(
                        "waiting for statefulset rolling update to complete {} pods at revision {}",
                        int(&st["updatedReplicas"]),
                        st["updateRevision"].as_str().unwrap_or("?")
                    ),
                );
            }
            (
                true,
                false,
                format!(
                    "statefulset rolling update complete {ready} pods at revision {}",
                    st["currentRevision"].as_str().unwrap_or("?")
                ),
            )
        }
        _ => {
            if spec["updateStrategy"]["type"]
                .as_str()
                .is_some_and(|t| t != "RollingUpdate")
            {
                return (
                    true,
                    false,
                    format!(
                        "daemon set {name:?} uses the OnDelete strategy: its rollout is not tracked"
                    ),
                );
            }
            let desired = int(&st["desiredNumberScheduled"]);
            let updated = int(&st["updatedNumberScheduled"]);
            let available = int(&st["numberAvailable"]);
            if updated < desired {
                (
                    false,
                    false,
                    format!(
                        "waiting for daemon set {name:?} rollout to finish: {updated} out of {desired} new pods have been updated"
                    ),
                )
            } else if available < desired {
                (
                    false,
                    false,
                    format!(
                        "waiting for daemon set {name:?} rollout to finish: {available} of {desired} updated pods are available"
                    ),
                )
            } else {
                (
                    true,
                    false,
                    format!("daemon set {name:?} successfully rolled out"),
                )
            }
        }
    }
}

/// Why a workload is not done: its Progressing/Available conditions and its pods' waiting
/// reasons (read once, at the end).
fn reasons(c: &Cluster, w: &Workload, obj: &Value) -> Vec<String> {
    let mut out: Vec<String> = obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["status"] != "True" || c["reason"] == "ProgressDeadlineExceeded")
        .map(|c| {
            format!(
                "condition {}={} ({}): {}",
                c["type"].as_str().unwrap_or("?"),
                c["status"].as_str().unwrap_or("?"),
                c["reason"].as_str().unwrap_or(""),
                c["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    let Some(labels) = obj["spec"]["selector"]["matchLabels"].as_object() else {
        return out;
    };
    let selector: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    let path = format!(
        "/api/v1/namespaces/{}/pods{}",
        infra_sdk::kube::encode(&w.namespace),
        query_string(&[
            ("labelSelector", selector.join(",")),
            ("limit", PODS_EXAMINED.to_string())
        ])
    );
    let Ok(pods) = c.get(&path, &c.access("list", "pods", Some(&w.namespace), None)) else {
        return out;
    };
    for p in pods["items"].as_array().into_iter().flatten() {
        let pod = p["metadata"]["name"].as_str().unwrap_or("?");
        if p["status"]["phase"] == "Pending" {
            for cond in p["status"]["conditions"].as_array().into_iter().flatten() {
                if cond["type"] == "PodScheduled" && cond["status"] == "False" {
                    out.push(format!(
                        "pod {pod}: unschedulable: {}",
                        cond["message"].as_str().unwrap_or("")
                    ));
                }
            }
        }
        for cs in p["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(w) = cs["state"]["waiting"].as_object() {
                let reason = w.get("reason").and_then(Value::as_str).unwrap_or("waiting");
                let msg = w.get("message").and_then(Value::as_str).unwrap_or("");
                out.push(
                    format!(
                        "pod {pod} container {}: {reason} {msg}",
                        cs["name"].as_str().unwrap_or("?")
                    )
                    .trim_end()
                    .to_string(),
                );
            }
            if let Some(t) = cs["lastState"]["terminated"]["reason"].as_str() {
                out.push(format!(
                    "pod {pod} container {}: last terminated: {t} (exit code {})",
                    cs["name"].as_str().unwrap_or("?"),
                    cs["lastState"]["terminated"]["exitCode"]
                ));
            }
        }
    }
    out
}

/// Waits for every workload; returns each one's state (`reasons` filled for those not done).
pub fn watch(
    c: &Cluster,
    ws: &[Workload],
    budget: std::time::Duration,
) -> Result<Vec<Rollout>, ToolError> {
    let mut last: Vec<(Rollout, Value)> = Vec::new();
    let read = |w: &Workload| -> Result<(Rollout, Value), ToolError> {
        let path = w.resource.object_path(Some(&w.namespace), &w.name);
        let qualified = w.resource.qualified();
        let obj = c.get(
            &path,
            &c.access("get", &qualified, Some(&w.namespace), Some(&w.name)),
        )?;
        let (done, failed, message) = assess(&w.resource.kind, &obj);
        Ok((
            Rollout {
                workload: w.label(),
                done,
                failed,
                message,
                reasons: Vec::new(),
            },
            obj,
        ))
    };
    let outcome = until(budget, "rollout", || {
        last = ws.iter().map(read).collect::<Result<_, _>>()?;
        let pending: Vec<&Rollout> = last.iter().map(|(r, _)| r).filter(|r| !r.done).collect();
        if pending.is_empty() || pending.iter().all(|r| r.failed) {
            return Ok(Step::Done(()));
        }
        Ok(Step::Waiting(
            pending
                .iter()
                .map(|r| r.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        ))
    })?;
    let _ = outcome;
    Ok(last
        .into_iter()
        .zip(ws)
        .map(|((mut r, obj), w)| {
            if !r.done {
                r.reasons = reasons(c, w, &obj);
            }
            r
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_rules() {
        let d = |generation: i64, st: Value| {
            json!({"metadata": {"name": "api", "generation": generation},
            "spec": {"replicas": 2}, "status": st})
        };
        let (done, _, m) = assess("Deployment", &d(3, json!({"observedGeneration": 2})));
        assert!(!done && m.contains("spec update to be observed"), "{m}");
        let (done, _, m) = assess(
            "Deployment",
            &d(
                3,
                json!({"observedGeneration": 3,
            "updatedReplicas": 1, "replicas": 2, "availableReplicas": 1}),
            ),
        );
        assert!(!done && m.contains("1 out of 2 new replicas"), "{m}");
        let (done, _, m) = assess(
            "Deployment",
            &d(
                3,
                json!({"observedGeneration": 3,
            "updatedReplicas": 2, "replicas": 2, "availableReplicas": 2}),
            ),
        );
        assert!(done, "{m}");
        let (done, failed, _) = assess(
            "Deployment",
            &d(
                3,
                json!({"observedGeneration": 3,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
            ),
        );
        assert!(!done && failed);
    }

    #[test]
    fn statefulset_and_daemonset_rules() {
        let s = json!({"metadata": {"name": "db", "generation": 1}, "spec": {"replicas": 3},
            "status": {"observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 3,
                       "currentRevision": "db-1", "updateRevision": "db-2"}});
        let (done, _, m) = assess("StatefulSet", &s);
        assert!(!done && m.contains("rolling update"), "{m}");
        let ds = json!({"metadata": {"name": "agent", "generation": 1}, "spec": {},
            "status": {"observedGeneration": 1, "desiredNumberScheduled": 3,
                       "updatedNumberScheduled": 3, "numberAvailable": 2}});
        let (done, _, m) = assess("DaemonSet", &ds);
        assert!(!done && m.contains("2 of 3"), "{m}");
    }
}
