//! Objects as compact rows — name, namespace, age, a status word, readiness and restarts — as
//! `kubectl get` prints them, per kind; `get` returns the full object.

use infra_sdk::kube::{age, parse_time};
use infra_sdk::prelude::*;

/// One object in a list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct Row {
    /// The object's name.
    pub name: String,
    /// Its namespace, for namespaced kinds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Time since creation, as kubectl prints it (`5m`, `3h20m`, `12d`).
    pub age: String,
    /// The status in a word or two: a pod's phase or waiting reason (`CrashLoopBackOff`), a
    /// node's `Ready`/`NotReady`, a deployment's `Available`/`Progressing`, an Argo CD app's
    /// `Synced/Healthy`.
    pub status: String,
    /// Ready out of wanted: containers for a pod, replicas for a workload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    /// Container restarts (pods).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u64>,
    /// The rest worth a glance: a pod's node, a service's type and ports, a job's completions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The condition of `type` in `status.conditions`.
pub fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// The row of `obj`, a `kind` object, at `now` (seconds since the epoch).
pub fn row(kind: &str, obj: &Value, now: i64) -> Row {
    let meta = &obj["metadata"];
    let mut r = Row {
        name: text(&meta["name"]).to_string(),
        namespace: meta["namespace"].as_str().map(str::to_string),
        age: parse_time(text(&meta["creationTimestamp"]))
            .map_or_else(|| "-".into(), |t| age(now - t)),
        ..Row::default()
    };
    let s = &obj["status"];
    let spec = &obj["spec"];
    match kind {
        "Pod" => {
            let statuses = s["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let ready = statuses.iter().filter(|c| c["ready"] == true).count();
            let total = spec["containers"]
                .as_array()
                .map_or(statuses.len(), Vec::len);
            r.ready = Some(format!("{ready}/{total}"));
            r.restarts = Some(statuses.iter().map(|c| num(&c["restartCount"])).sum());
            r.status = pod_status(obj);
            let node = text(&spec["nodeName"]);
            if !node.is_empty() {
                r.detail = Some(format!("node {node}"));
            }
        }
        "Deployment" | "StatefulSet" | "ReplicaSet" | "ReplicationController" => {
            let want = spec["replicas"].as_u64().unwrap_or(1);
            let ready = num(&s["readyReplicas"]);
            r.ready = Some(format!("{ready}/{want}"));
            r.status = workload_status(obj, want, ready);
            if kind == "Deployment" {
                r.detail = Some(format!(
                    "up-to-date {}, available {}",
                    num(&s["updatedReplicas"]),
                    num(&s["availableReplicas"])
                ));
            }
        }
        "DaemonSet" => {
            let want = num(&s["desiredNumberScheduled"]);
            let ready = num(&s["numberReady"]);
            r.ready = Some(format!("{ready}/{want}"));
            r.status = workload_status(obj, want, ready);
        }
        "Job" => {
            let want = spec["completions"].as_u64().unwrap_or(1);
            r.ready = Some(format!("{}/{want}", num(&s["succeeded"])));
            r.status = if condition(obj, "Complete").is_some_and(|c| c["status"] == "True") {
                "Complete".into()
            } else if let Some(c) = condition(obj, "Failed").filter(|c| c["status"] == "True") {
                format!("Failed: {}", text(&c["reason"]))
            } else {
                "Running".into()
            };
        }
        "CronJob" => {
            r.status = if spec["suspend"] == true {
                "Suspended"
            } else {
                "Scheduled"
            }
            .into();
            r.detail = Some(format!("schedule {}", text(&spec["schedule"])));
        }
        "Node" => {
            let ready = condition(obj, "Ready").map(|c| text(&c["status"]).to_string());
            r.status = match ready.as_deref() {
                Some("True") => "Ready".to_string(),
                Some("False") => "NotReady".to_string(),
                _ => "Unknown".to_string(),
            };
            if spec["unschedulable"] == true {
                r.status.push_str(",SchedulingDisabled");
            }
            let version = text(&s["nodeInfo"]["kubeletVersion"]);
            if !version.is_empty() {
                r.detail = Some(format!("kubelet {version}"));
            }
        }
        "Service" => {
            r.status = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
            let ports: Vec<String> = spec["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")))
                .collect();
            r.detail = Some(format!(
                "cluster IP {}, ports {}",
                spec["clusterIP"].as_str().unwrap_or("-"),
                if ports.is_empty() {
                    "-".into()
                } else {
                    ports.join(",")
                }
            ));
        }
        "Event" => {
            r.status = format!("{} {}", text(&obj["type"]), text(&obj["reason"]));
            r.detail = Some(text(&obj["message"]).to_string());
        }
        "Application" if s["sync"].is_object() || s["health"].is_object() => {
            r.status = format!(
                "{}/{}",
                s["sync"]["status"].as_str().unwrap_or("Unknown"),
                s["health"]["status"].as_str().unwrap_or("Unknown")
            );
        }
        _ => r.status = generic_status(obj),
    }
    r
}

/// A workload's status word: a stopped rollout's reason, else whether it is all there.
fn workload_status(obj: &Value, want: u64, ready: u64) -> String {
    if let Some(c) = condition(obj, "Progressing").filter(|c| c["status"] == "False") {
        return text(&c["reason"]).to_string();
    }
    if ready >= want {
        "Available".into()
    } else if want > 0 && ready == 0 {
        "Unavailable".into()
    } else {
        "Progressing".into()
    }
}

/// Any other kind: its `Ready` condition (Flux, cert-manager, most CRDs), else its phase.
fn generic_status(obj: &Value) -> String {
    if let Some(c) = condition(obj, "Ready") {
        return match text(&c["status"]) {
            "True" => "Ready".into(),
            other => {
                let reason = text(&c["reason"]);
                if reason.is_empty() {
                    format!("NotReady ({other})")
                } else {
                    format!("NotReady: {reason}")
                }
            }
        };
    }
    obj["status"]["phase"].as_str().unwrap_or("-").to_string()
}

/// A pod's status as kubectl computes it: terminating, an init container's trouble, a
/// container's waiting or terminated reason, else the phase.
pub fn pod_status(pod: &Value) -> String {
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        return "Terminating".into();
    }
    let s = &pod["status"];
    if let Some(reason) = s["reason"].as_str() {
        return reason.to_string();
    }
    for c in s["initContainerStatuses"].as_array().into_iter().flatten() {
        let st = &c["state"];
        if let Some(w) = st["waiting"]["reason"].as_str()
            && w != "PodInitializing"
        {
            return format!("Init:{w}");
        }
        if let Some(t) = st["terminated"].as_object()
            && t.get("exitCode").and_then(Value::as_i64) != Some(0)
        {
            return format!(
                "Init:{}",
                t.get("reason").and_then(Value::as_str).unwrap_or("Error")
            );
        }
    }
    let mut running = None;
    for c in s["containerStatuses"].as_array().into_iter().flatten() {
        let st = &c["state"];
        if let Some(w) = st["waiting"]["reason"].as_str() {
            return w.to_string();
        }
        if let Some(t) = st["terminated"]["reason"].as_str() {
            running = Some(t.to_string());
        }
    }
    running.unwrap_or_else(|| s["phase"].as_str().unwrap_or("Unknown").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_709_296_205; // 2024-03-01T12:30:05Z

    #[test]
    fn pods_show_waiting_reasons_readiness_and_restarts() {
        let pod = json!({"metadata": {"name": "web-1", "namespace": "shop",
                                      "creationTimestamp": "2024-03-01T12:00:05Z"},
            "spec": {"nodeName": "n1", "containers": [{"name": "app"}, {"name": "side"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "ready": false, "restartCount": 7,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
                {"name": "side", "ready": true, "restartCount": 1, "state": {"running": {}}}]}});
        let r = row("Pod", &pod, NOW);
        assert_eq!(r.status, "CrashLoopBackOff");
        assert_eq!(r.ready.as_deref(), Some("1/2"));
        assert_eq!(r.restarts, Some(8));
        assert_eq!(r.age, "30m");
        assert_eq!(r.namespace.as_deref(), Some("shop"));
        assert_eq!(r.detail.as_deref(), Some("node n1"));
        let pending = json!({"metadata": {"name": "p"}, "status": {"phase": "Pending"}});
        assert_eq!(row("Pod", &pending, NOW).status, "Pending");
        let init = json!({"metadata": {"name": "p"}, "status": {"phase": "Pending",
            "initContainerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff"}}}]}});
        assert_eq!(pod_status(&init), "Init:ImagePullBackOff");
        let gone = json!({"metadata": {"name": "p", "deletionTimestamp": "2024-03-01T12:00:05Z"}});
        assert_eq!(pod_status(&gone), "Terminating");
    }

    #[test]
    fn workloads_nodes_and_custom_resources() {
        let d = json!({"metadata": {"name": "api"}, "spec": {"replicas": 3},
            "status": {"readyReplicas": 1, "updatedReplicas": 3, "availableReplicas": 1}});
        let r = row("Deployment", &d, NOW);
        assert_eq!(
            (r.status.as_str(), r.ready.as_deref()),
            ("Progressing", Some("1/3"))
        );
        let stuck = json!({"metadata": {"name": "api"}, "spec": {"replicas": 2}, "status": {
            "conditions": [{"type": "Progressing", "status": "False",
                            "reason": "ProgressDeadlineExceeded"}]}});
        assert_eq!(
            row("Deployment", &stuck, NOW).status,
            "ProgressDeadlineExceeded"
        );
        let node = json!({"metadata": {"name": "n1"}, "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "False"}],
                       "nodeInfo": {"kubeletVersion": "v1.30.1"}}});
        let r = row("Node", &node, NOW);
        assert_eq!(r.status, "NotReady,SchedulingDisabled");
        assert_eq!(r.age, "-");
        let app = json!({"metadata": {"name": "shop"}, "status": {
            "sync": {"status": "OutOfSync"}, "health": {"status": "Degraded"}}});
        assert_eq!(row("Application", &app, NOW).status, "OutOfSync/Degraded");
        let ks = json!({"metadata": {"name": "apps"}, "status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "BuildFailed"}]}});
        assert_eq!(
            row("Kustomization", &ks, NOW).status,
            "NotReady: BuildFailed"
        );
        let ns = json!({"metadata": {"name": "shop"}, "status": {"phase": "Active"}});
        assert_eq!(row("Namespace", &ns, NOW).status, "Active");
        let svc = json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort",
            "clusterIP": "10.0.0.1", "ports": [{"port": 80, "protocol": "TCP"}]}});
        assert_eq!(
            row("Service", &svc, NOW).detail.as_deref(),
            Some("cluster IP 10.0.0.1, ports 80/TCP")
        );
    }
}
