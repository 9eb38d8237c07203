//! core/v1 Events the test records about an object, as the kubelet and controllers would
//! (a pod's BackOff, a scheduler's FailedScheduling), so `describe` and `events` have evidence.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::store::rfc3339;

/// An Event about `involved` (an object with apiVersion, kind and metadata) in its namespace.
pub fn event(involved: &Value, type_: &str, reason: &str, message: &str, seq: u64) -> Value {
    let meta = &involved["metadata"];
    let name = meta["name"].as_str().unwrap_or_default();
    let ns = meta["namespace"].as_str().unwrap_or("default");
    let now = rfc3339(SystemTime::now());
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{name}.{seq:016x}"), "namespace": ns},
        "involvedObject": {"apiVersion": involved["apiVersion"], "kind": involved["kind"],
                           "name": name, "namespace": ns, "uid": meta["uid"]},
        "type": type_, "reason": reason, "message": message, "count": 1,
        "firstTimestamp": now, "lastTimestamp": now,
        "source": {"component": "standin"}, "reportingComponent": "standin",
    })
}
