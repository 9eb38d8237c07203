//! `diagnose`: the usual suspects of a namespace or a cluster, each with its evidence —
//! crash loops, image pulls, OOM kills, pods the scheduler cannot place (with its reason),
//! failed pods, not-ready nodes, rollouts that lag or stopped progressing.

use infra_sdk::kube::{now_unix, parse_time};
use infra_sdk::prelude::*;

use crate::args::{LIST_MAX, bounded};
use crate::discovery::{Cluster, list_namespace};
use crate::events::{Subject, about};
use crate::out::K8sOutput;
use crate::read::{ListQuery, list_objects};
use crate::rows::condition;

/// Pods whose events are read for evidence at most (one request each).
const EVENT_LOOKUPS: usize = 20;
/// Deployments and nodes examined at most.
const OTHERS_MAX: u32 = 2000;
/// A scheduled pod still pending after this long is worth a finding (image pulls, volumes).
const PENDING_GRACE_SECS: i64 = 300;

/// One thing that looks wrong, with what shows it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Finding {
    /// `critical` (not serving) or `warning` (degraded or at risk).
    pub severity: String,
    /// `CrashLoopBackOff`, `ImagePullBackOff`, `ErrImagePull`, `OOMKilled`, `Pending`,
    /// `PodFailed`, `ContainerNotReady`, `NodeNotReady`, `NodePressure`, `RolloutStuck`,
    /// `RolloutLagging`, or a container's waiting reason.
    pub problem: String,
    /// The object, `Kind/namespace/name` (`Kind/name` when cluster-scoped).
    pub object: String,
    /// The container, for container problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The API's reason (a waiting, terminated or condition reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The API's message for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The container's restart count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u64>,
    /// The last terminated instance's exit code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// The latest matching event, `Reason: message` (e.g. the scheduler's FailedScheduling).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// What to look at next.
    pub advice: String,
}

/// What `diagnose` examined.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct Checked {
    /// Pods examined.
    pub pods: usize,
    /// Deployments examined.
    pub deployments: usize,
    /// Nodes examined (whole-cluster runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<usize>,
    /// More pods exist than `limit` allowed examining.
    pub pods_truncated: bool,
}

fn s(v: &Value) -> Option<String> {
    v.as_str().filter(|x| !x.is_empty()).map(str::to_string)
}

fn finding(severity: &str, problem: &str, object: String, advice: &str) -> Finding {
    Finding {
        severity: severity.into(),
        problem: problem.into(),
        object,
        container: None,
        reason: None,
        message: None,
        restarts: None,
        exit_code: None,
        event: None,
        advice: advice.into(),
    }
}

/// `Kind/namespace/name`, or `Kind/name`.
fn object_name(kind: &str, obj: &Value) -> String {
    let m = &obj["metadata"];
    match m["namespace"].as_str() {
        Some(ns) => format!("{kind}/{ns}/{}", m["name"].as_str().unwrap_or("?")),
        None => format!("{kind}/{}", m["name"].as_str().unwrap_or("?")),
    }
}

/// A container's memory limit, for an OOM kill's advice.
fn memory_limit(pod: &Value, container: &str) -> Option<String> {
    ["containers", "initContainers"]
        .iter()
        .flat_map(|k| pod["spec"][*k].as_array().cloned().unwrap_or_default())
        .find(|c| c["name"] == container)
        .and_then(|c| s(&c["resources"]["limits"]["memory"]))
}

/// The problems of one pod at `now`.
pub fn pod_findings(pod: &Value, now: i64) -> Vec<Finding> {
    let obj = object_name("Pod", pod);
    let st = &pod["status"];
    let mut out = Vec::new();
    let statuses = ["initContainerStatuses", "containerStatuses"]
        .iter()
        .flat_map(|k| st[*k].as_array().cloned().unwrap_or_default());
    for c in statuses {
        let cname = s(&c["name"]);
        let restarts = c["restartCount"].as_u64();
        let last = &c["lastState"]["terminated"];
        let mut add = |mut f: Finding| {
            f.container = cname.clone();
            f.restarts = restarts;
            out.push(f);
        };
        let waiting = &c["state"]["waiting"];
        match waiting["reason"].as_str() {
            Some("CrashLoopBackOff") => {
                let mut f = finding(
                    "critical",
                    "CrashLoopBackOff",
                    obj.clone(),
                    "the container keeps exiting: read its previous log (`logs` with \
                     `previous: true`) and the exit reason",
                );
                f.reason = s(&last["reason"]).or(Some("CrashLoopBackOff".into()));
                f.exit_code = last["exitCode"].as_i64();
                f.message = s(&last["message"]).or_else(|| s(&waiting["message"]));
                add(f);
            }
            Some(
                r
                @ ("ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" | "ErrImageNeverPull"),
            ) => {
                let mut f = finding(
                    "critical",
                    r,
                    obj.clone(),
                    "the image cannot be pulled: check the image name and tag, that it exists in \
                     the registry, and the pod's imagePullSecrets",
                );
                f.reason = Some(r.into());
                f.message =
                    s(&waiting["message"]).or_else(|| s(&c["image"]).map(|i| format!("image {i}")));
                add(f);
            }
            Some(
                r @ ("CreateContainerConfigError"
                | "CreateContainerError"
                | "RunContainerError"
                | "ContainerCannotRun"),
            ) => {
                let mut f = finding(
                    "critical",
                    r,
                    obj.clone(),
                    "the container cannot start: check the ConfigMaps, Secrets and volumes it \
                     references, and its command",
                );
                f.reason = Some(r.into());
                f.message = s(&waiting["message"]);
                add(f);
            }
            _ => {}
        }
        let term_now = &c["state"]["terminated"];
        let oom = [last, term_now]
            .into_iter()
            .find(|t| t["reason"] == "OOMKilled");
        if let Some(t) = oom {
            let limit = cname
                .as_deref()
                .and_then(|n| memory_limit(pod, n))
                .map_or("no memory limit set".to_string(), |l| {
                    format!("memory limit {l}")
                });
            let mut f = finding(
                "critical",
                "OOMKilled",
                obj.clone(),
                "the container ran out of memory: raise its memory limit or find the leak",
            );
            f.reason = Some("OOMKilled".into());
            f.exit_code = t["exitCode"].as_i64();
            f.message = Some(format!(
                "killed for exceeding its memory ({limit}){}",
                s(&t["finishedAt"])
                    .map(|at| format!(" at {at}"))
                    .unwrap_or_default()
            ));
            add(f);
        }
        let running_since = c["state"]["running"]["startedAt"]
            .as_str()
            .and_then(parse_time);
        if c["ready"] == false
            && st["phase"] == "Running"
            && running_since.is_some_and(|t| now - t > 120)
            && waiting.is_null()
        {
            let mut f = finding(
                "warning",
                "ContainerNotReady",
                obj.clone(),
                "running but failing its readiness probe: check the probe and the log",
            );
            f.reason = Some("NotReady".into());
            add(f);
        }
    }
    match st["phase"].as_str() {
        Some("Pending") if out.is_empty() => {
            let sched = condition(pod, "PodScheduled");
            if let Some(c) = sched.filter(|c| c["status"] == "False") {
                let mut f = finding(
                    "critical",
                    "Pending",
                    obj.clone(),
                    "the scheduler cannot place the pod: compare its requests, node selector, \
                     affinity and tolerations with the nodes (the event says which failed)",
                );
                f.reason = s(&c["reason"]).or(Some("Unschedulable".into()));
                f.message = s(&c["message"]);
                out.push(f);
            } else {
                let created =
                    parse_time(pod["metadata"]["creationTimestamp"].as_str().unwrap_or(""));
                let unscheduled = s(&pod["spec"]["nodeName"]).is_none();
                if unscheduled || created.is_some_and(|t| now - t > PENDING_GRACE_SECS) {
                    let mut f = finding(
                        "warning",
                        "Pending",
                        obj.clone(),
                        "the pod has not started: read its events (`describe`)",
                    );
                    f.reason = Some(
                        if unscheduled {
                            "NotScheduled"
                        } else {
                            "ContainersNotStarted"
                        }
                        .into(),
                    );
                    out.push(f);
                }
            }
        }
        Some("Failed") => {
            let mut f = finding(
                "warning",
                "PodFailed",
                obj.clone(),
                "the pod ended in failure: read its log and events; an evicted pod points at \
                 node pressure",
            );
            f.reason = s(&st["reason"]);
            f.message = s(&st["message"]);
            out.push(f);
        }
        _ => {}
    }
    out
}

/// The problems of one node.
pub fn node_findings(node: &Value) -> Vec<Finding> {
    let obj = object_name("Node", node);
    let mut out = Vec::new();
    match condition(node, "Ready") {
        Some(c) if c["status"] == "True" => {}
        c => {
            let mut f = finding(
                "critical",
                "NodeNotReady",
                obj.clone(),
                "the node's kubelet is not reporting Ready: check the machine, the kubelet and \
                 its network; its pods will be evicted",
            );
            f.reason = c
                .and_then(|c| s(&c["reason"]))
                .or(Some("NoReadyCondition".into()));
            f.message = c.and_then(|c| s(&c["message"]));
            out.push(f);
        }
    }
    for kind in [
        "MemoryPressure",
        "DiskPressure",
        "PIDPressure",
        "NetworkUnavailable",
    ] {
        if let Some(c) = condition(node, kind).filter(|c| c["status"] == "True") {
            let mut f = finding(
                "warning",
                "NodePressure",
                obj.clone(),
                "the node is short of a resource and may evict pods: free it or add capacity",
            );
            f.reason = Some(kind.into());
            f.message = s(&c["message"]);
            out.push(f);
        }
    }
    out
}

/// The problems of one Deployment's rollout.
pub fn deployment_findings(d: &Value) -> Vec<Finding> {
    let obj = object_name("Deployment", d);
    let st = &d["status"];
    let want = d["spec"]["replicas"].as_u64().unwrap_or(1);
    let n = |k: &str| st[k].as_u64().unwrap_or(0);
    let numbers = format!(
        "{} of {want} updated, {} available, {} ready",
        n("updatedReplicas"),
        n("availableReplicas"),
        n("readyReplicas")
    );
    if let Some(c) = condition(d, "Progressing").filter(|c| c["status"] == "False") {
        let mut f = finding(
            "critical",
            "RolloutStuck",
            obj,
            "the rollout stopped progressing: look at the new ReplicaSet's pods (`diagnose` \
             lists their problems) and consider rolling back",
        );
        f.reason = s(&c["reason"]);
        f.message = Some(match s(&c["message"]) {
            Some(m) => format!("{m} ({numbers})"),
            None => numbers,
        });
        return vec![f];
    }
    if d["spec"]["paused"] != true && (n("updatedReplicas") < want || n("availableReplicas") < want)
    {
        let mut f = finding(
            "warning",
            "RolloutLagging",
            obj,
            "fewer replicas are updated or available than wanted: a rollout in progress, or \
             pods that do not become ready (see the pod findings)",
        );
        f.reason = condition(d, "Available")
            .filter(|c| c["status"] == "False")
            .and_then(|c| s(&c["reason"]))
            .or(Some("ReplicasLag".into()));
        f.message = Some(numbers);
        return vec![f];
    }
    vec![]
}

/// The newest event's `Reason: message`, among `events` with one of `reasons` (any when empty).
pub fn latest_event(events: &[Value], reasons: &[&str]) -> Option<String> {
    let time = |e: &Value| {
        ["lastTimestamp", "eventTime"]
            .iter()
            .find_map(|k| e[*k].as_str().and_then(parse_time))
            .unwrap_or(0)
    };
    events
        .iter()
        .filter(|e| reasons.is_empty() || reasons.iter().any(|r| e["reason"] == *r))
        .max_by_key(|e| time(e))
        .map(|e| {
            format!(
                "{}: {}",
                e["reason"].as_str().unwrap_or_default(),
                e["message"].as_str().unwrap_or_default().trim()
            )
        })
}

/// `diagnose`.
pub fn diagnose(
    c: &mut Cluster,
    namespace: Option<&str>,
    limit: Option<u64>,
    o: &mut K8sOutput,
) -> Result<(), ToolError> {
    let ns = list_namespace(namespace)?;
    let limit = bounded("limit", limit, 2000, LIST_MAX)?;
    let now = now_unix();
    let mut checked = Checked::default();
    let mut findings = Vec::new();

    let pods_r = c.resolve("pods", "list")?;
    let pods = list_objects(
        c,
        &ListQuery {
            resource: &pods_r,
            namespace: ns.as_deref(),
            label_selector: None,
            field_selector: None,
            limit,
            continue_token: None,
        },
    )?;
    checked.pods = pods.items.len();
    checked.pods_truncated = pods.continue_token.is_some();
    let mut lookups = 0;
    for pod in &pods.items {
        let mut fs = pod_findings(pod, now);
        let wants_event = fs.iter().any(|f| {
            matches!(
                f.problem.as_str(),
                "Pending" | "ImagePullBackOff" | "ErrImagePull"
            )
        });
        if wants_event && lookups < EVENT_LOOKUPS {
            lookups += 1;
            let m = &pod["metadata"];
            let events = about(
                c,
                &Subject {
                    kind: "Pod",
                    namespace: m["namespace"].as_str(),
                    name: m["name"].as_str().unwrap_or_default(),
                    uid: m["uid"].as_str(),
                },
                true,
            )
            .unwrap_or_default();
            for f in &mut fs {
                let reasons: &[&str] = match f.problem.as_str() {
                    "Pending" => &["FailedScheduling"],
                    _ => &["Failed"],
                };
                f.event = latest_event(&events, reasons);
                // The scheduler's event says why better than the condition when both exist.
                if f.problem == "Pending"
                    && f.message.is_none()
                    && let Some(e) = &f.event
                {
                    f.message = Some(e.clone());
                }
            }
        }
        findings.extend(fs);
    }

    let deploys_r = c.resolve("deployments.apps", "list")?;
    let deploys = list_objects(
        c,
        &ListQuery {
            resource: &deploys_r,
            namespace: ns.as_deref(),
            label_selector: None,
            field_selector: None,
            limit: OTHERS_MAX,
            continue_token: None,
        },
    )?;
    checked.deployments = deploys.items.len();
    findings.extend(deploys.items.iter().flat_map(deployment_findings));

    if ns.is_none() {
        let nodes_r = c.resolve("nodes", "list")?;
        let nodes = list_objects(
            c,
            &ListQuery {
                resource: &nodes_r,
                namespace: None,
                label_selector: None,
                field_selector: None,
                limit: OTHERS_MAX,
                continue_token: None,
            },
        )?;
        checked.nodes = Some(nodes.items.len());
        findings.extend(nodes.items.iter().flat_map(node_findings));
    }

    findings.sort_by(|a, b| {
        (a.severity != "critical", &a.object).cmp(&(b.severity != "critical", &b.object))
    });
    if checked.pods_truncated {
        o.notes.push(format!(
            "only the first {limit} pods were examined; raise `limit` or name a namespace"
        ));
    }
    if lookups == EVENT_LOOKUPS {
        o.notes.push(format!(
            "events were read for the first {EVENT_LOOKUPS} pods with problems only"
        ));
    }
    o.findings = Some(findings);
    o.checked = Some(checked);
    o.namespace = ns;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_709_296_205; // 2024-03-01T12:30:05Z

    #[test]
    fn a_crash_looping_oom_killed_container_with_its_evidence() {
        let pod = json!({"metadata": {"name": "api-1", "namespace": "shop"},
            "spec": {"containers": [{"name": "app", "resources": {"limits": {"memory": "64Mi"}}}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "app", "ready": false,
                "restartCount": 12,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
                "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}});
        let f = pod_findings(&pod, NOW);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].problem, "CrashLoopBackOff");
        assert_eq!(f[0].object, "Pod/shop/api-1");
        assert_eq!(f[0].container.as_deref(), Some("app"));
        assert_eq!(f[0].reason.as_deref(), Some("OOMKilled"));
        assert_eq!((f[0].restarts, f[0].exit_code), (Some(12), Some(137)));
        assert_eq!(f[1].problem, "OOMKilled");
        assert!(
            f[1].message
                .as_deref()
                .unwrap()
                .contains("memory limit 64Mi")
        );
    }

    #[test]
    fn image_pulls_pending_and_failed_pods() {
        let pull = json!({"metadata": {"name": "w", "namespace": "a"}, "status": {
            "phase": "Pending", "containerStatuses": [{"name": "app", "image": "nope:1",
            "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff",
            "message": "Back-off pulling image \"nope:1\""}}}]}});
        let f = pod_findings(&pull, NOW);
        assert_eq!(f.len(), 1, "pending is not reported twice: {f:?}");
        assert_eq!(f[0].problem, "ImagePullBackOff");
        assert!(f[0].message.as_deref().unwrap().contains("nope:1"));

        let pending = json!({"metadata": {"name": "big", "namespace": "a"}, "status": {
            "phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient cpu."}]}});
        let f = pod_findings(&pending, NOW);
        assert_eq!(f[0].problem, "Pending");
        assert_eq!(f[0].reason.as_deref(), Some("Unschedulable"));
        assert!(
            f[0].message
                .as_deref()
                .unwrap()
                .contains("Insufficient cpu")
        );

        let fresh = json!({"metadata": {"name": "new", "creationTimestamp": "2024-03-01T12:30:00Z"},
            "spec": {"nodeName": "n1"}, "status": {"phase": "Pending"}});
        assert!(
            pod_findings(&fresh, NOW).is_empty(),
            "a pod just scheduled is not a problem"
        );

        let evicted = json!({"metadata": {"name": "e"}, "status": {"phase": "Failed",
            "reason": "Evicted", "message": "The node was low on resource: memory."}});
        assert_eq!(
            pod_findings(&evicted, NOW)[0].reason.as_deref(),
            Some("Evicted")
        );

        let healthy = json!({"metadata": {"name": "ok"}, "status": {"phase": "Running",
            "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0,
            "state": {"running": {"startedAt": "2024-03-01T10:00:00Z"}}}]}});
        assert!(pod_findings(&healthy, NOW).is_empty());
    }

    #[test]
    fn nodes_and_rollouts() {
        let node = json!({"metadata": {"name": "n2"}, "status": {"conditions": [
            {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
             "message": "Kubelet stopped posting node status."},
            {"type": "DiskPressure", "status": "True"}]}});
        let f = node_findings(&node);
        assert_eq!(f[0].problem, "NodeNotReady");
        assert_eq!(f[0].reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(f[1].reason.as_deref(), Some("DiskPressure"));
        let ok = json!({"metadata": {"name": "n1"}, "status": {"conditions": [
            {"type": "Ready", "status": "True"}]}});
        assert!(node_findings(&ok).is_empty());

        let stuck = json!({"metadata": {"name": "api", "namespace": "shop"},
            "spec": {"replicas": 3}, "status": {"updatedReplicas": 1, "availableReplicas": 2,
            "conditions": [{"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"api-2\" has timed out progressing."}]}});
        let f = deployment_findings(&stuck);
        assert_eq!(f[0].problem, "RolloutStuck");
        assert!(f[0].message.as_deref().unwrap().contains("1 of 3 updated"));
        let lag = json!({"metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": 2}, "status": {"updatedReplicas": 2, "availableReplicas": 1}});
        assert_eq!(deployment_findings(&lag)[0].problem, "RolloutLagging");
        let done = json!({"metadata": {"name": "web"}, "spec": {"replicas": 2},
            "status": {"updatedReplicas": 2, "availableReplicas": 2, "readyReplicas": 2}});
        assert!(deployment_findings(&done).is_empty());
    }

    #[test]
    fn the_latest_matching_event_is_the_evidence() {
        let events = vec![
            json!({"reason": "FailedScheduling", "message": "old", "lastTimestamp": "2024-03-01T10:00:00Z"}),
            json!({"reason": "FailedScheduling", "message": "0/3 nodes: Insufficient cpu ",
                   "lastTimestamp": "2024-03-01T12:00:00Z"}),
            json!({"reason": "Pulled", "message": "x", "lastTimestamp": "2024-03-01T12:10:00Z"}),
        ];
        assert_eq!(
            latest_event(&events, &["FailedScheduling"]).as_deref(),
            Some("FailedScheduling: 0/3 nodes: Insufficient cpu")
        );
        assert_eq!(latest_event(&events, &["Nope"]), None);
    }
}
