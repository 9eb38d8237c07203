//! What the cluster's controllers would do, for tests that need moving status: a rollout that
//! completes or stalls, a container that crash-loops (with its BackOff event).

use serde_json::{Value, json};

use super::KubeApi;

impl KubeApi {
    fn live(&self, api_version: &str, kind: &str, ns: &str, name: &str) -> Value {
        self.get(api_version, kind, Some(ns), name)
            .unwrap_or_else(|| panic!("stand-in: {kind} {ns}/{name} does not exist"))
    }

    /// Completes the rollout of a Deployment, StatefulSet or DaemonSet: the current generation
    /// observed and every replica updated, ready and available.
    pub fn complete_rollout(&self, kind: &str, ns: &str, name: &str) {
        let obj = self.live("apps/v1", kind, ns, name);
        let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1);
        let n = obj["spec"]["replicas"].as_i64().unwrap_or(1);
        let status = match kind {
            "DaemonSet" => json!({"observedGeneration": generation, "desiredNumberScheduled": n,
                "currentNumberScheduled": n, "updatedNumberScheduled": n, "numberReady": n,
                "numberAvailable": n, "numberUnavailable": null}),
            "StatefulSet" => json!({"observedGeneration": generation, "replicas": n,
                "currentReplicas": n, "updatedReplicas": n, "readyReplicas": n,
                "availableReplicas": n, "currentRevision": format!("{name}-{generation}"),
                "updateRevision": format!("{name}-{generation}")}),
            _ => json!({"observedGeneration": generation, "replicas": n, "updatedReplicas": n,
                "readyReplicas": n, "availableReplicas": n, "unavailableReplicas": null,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                     "message": "Deployment has minimum availability."},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                     "message": format!("ReplicaSet \"{name}\" has successfully progressed.")}]}),
        };
        self.patch_status("apps/v1", kind, Some(ns), name, status);
    }

    /// Stalls a Deployment's rollout: the generation observed, no new replica available, and
    /// `Progressing` False with ProgressDeadlineExceeded (what `rollout status` reports).
    pub fn stall_rollout(&self, ns: &str, name: &str, message: &str) {
        let obj = self.live("apps/v1", "Deployment", ns, name);
        let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1);
        let n = obj["spec"]["replicas"].as_i64().unwrap_or(1);
        self.patch_status(
            "apps/v1",
            "Deployment",
            Some(ns),
            name,
            json!({
            "observedGeneration": generation, "replicas": n, "updatedReplicas": n,
            "readyReplicas": 0, "availableReplicas": 0, "unavailableReplicas": n,
            "conditions": [
                {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                 "message": "Deployment does not have minimum availability."},
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                 "message": message}]}),
        );
    }

    /// Makes a pod's container crash-loop: waiting in CrashLoopBackOff after `restarts`
    /// restarts, the last instance terminated with `last_reason` ("Error", "OOMKilled"), and
    /// the kubelet's BackOff event.
    pub fn crash_loop(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        restarts: u32,
        last_reason: &str,
    ) {
        let obj = self.live("v1", "Pod", ns, pod);
        let exit_code = if last_reason == "OOMKilled" { 137 } else { 1 };
        let crashing = json!({"name": container, "ready": false, "started": false,
            "restartCount": restarts,
            "image": obj["spec"]["containers"].as_array().and_then(|cs| cs.iter().find(|c| c["name"] == container)).map_or(Value::Null, |c| c["image"].clone()),
            "state": {"waiting": {"reason": "CrashLoopBackOff",
                "message": format!("back-off 5m0s restarting failed container={container} pod={pod}")}},
            "lastState": {"terminated": {"exitCode": exit_code, "reason": last_reason}}});
        let mut statuses: Vec<Value> = obj["status"]["containerStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c["name"] != container)
            .collect();
        statuses.push(crashing);
        self.patch_status(
            "v1",
            "Pod",
            Some(ns),
            pod,
            json!({"phase": "Running",
            "containerStatuses": statuses}),
        );
        self.add_event(
            "Pod",
            ns,
            pod,
            "Warning",
            "BackOff",
            &format!("Back-off restarting failed container {container} in pod {pod}"),
        );
    }
}
