//! `events`: a namespace's, the cluster's or one object's events, newest first and bounded.

use infra_sdk::kube::{age, check_name, now_unix, parse_time};
use infra_sdk::prelude::*;

use crate::args::{EVENTS_MAX, bounded};
use crate::discovery::{Cluster, list_namespace, object_namespace};
use crate::out::K8sOutput;
use crate::read::{ListQuery, list_objects};

/// Events read at most before sorting: enough for a busy namespace, bounded for a cluster.
const EVENTS_READ: u32 = 2000;

/// One event.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EventRow {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The reason, e.g. `FailedScheduling`, `BackOff`, `Pulled`.
    pub reason: String,
    /// The object it is about, `Kind/name`.
    pub object: String,
    /// The object's namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// What happened.
    pub message: String,
    /// How many times it happened.
    pub count: u64,
    /// Time since it last happened (`5m`).
    pub last_seen: String,
    /// When it last happened (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_time: Option<String>,
}

/// When an event last happened: `lastTimestamp`, else `eventTime`, else the series' last
/// observation, else its creation.
fn last_time(e: &Value) -> Option<&str> {
    [
        &e["lastTimestamp"],
        &e["series"]["lastObservedTime"],
        &e["eventTime"],
        &e["metadata"]["creationTimestamp"],
    ]
    .into_iter()
    .find_map(|v| v.as_str().filter(|s| !s.is_empty()))
}

/// Events as rows, newest first, at most `limit`.
pub fn event_rows(mut events: Vec<Value>, limit: usize) -> Vec<EventRow> {
    let key = |e: &Value| last_time(e).and_then(parse_time).unwrap_or(0);
    events.sort_by_key(|e| std::cmp::Reverse(key(e)));
    let now = now_unix();
    events
        .iter()
        .take(limit)
        .map(|e| {
            let io = &e["involvedObject"];
            EventRow {
                event_type: e["type"].as_str().unwrap_or("Normal").into(),
                reason: e["reason"].as_str().unwrap_or_default().into(),
                object: format!(
                    "{}/{}",
                    io["kind"].as_str().unwrap_or("?"),
                    io["name"].as_str().unwrap_or("?")
                ),
                namespace: io["namespace"]
                    .as_str()
                    .or(e["metadata"]["namespace"].as_str())
                    .map(str::to_string),
                message: e["message"].as_str().unwrap_or_default().trim().into(),
                count: e["count"]
                    .as_u64()
                    .or(e["series"]["count"].as_u64())
                    .unwrap_or(1),
                last_seen: last_time(e)
                    .and_then(parse_time)
                    .map_or_else(|| "-".into(), |t| age(now - t)),
                last_time: last_time(e).map(str::to_string),
            }
        })
        .collect()
}

/// The object events are about: its kind, namespace, name and (when known) uid.
pub struct Subject<'a> {
    /// `Pod`.
    pub kind: &'a str,
    /// The namespace, for namespaced objects.
    pub namespace: Option<&'a str>,
    /// The name.
    pub name: &'a str,
    /// The uid, which tells this object from an earlier one of the same name.
    pub uid: Option<&'a str>,
}

/// The raw events about `s`, selected by the API (`involvedObject.name`/`.namespace`) and
/// checked here for kind and uid (the field selectors every API server supports).
pub fn about(c: &mut Cluster, s: &Subject, warnings_only: bool) -> Result<Vec<Value>, ToolError> {
    let r = c.resolve("events", "list")?;
    let mut selector = format!("involvedObject.name={}", s.name);
    if let Some(ns) = s.namespace {
        selector.push_str(&format!(",involvedObject.namespace={ns}"));
    }
    let listed = list_objects(
        c,
        &ListQuery {
            resource: &r,
            namespace: s.namespace,
            label_selector: None,
            field_selector: Some(&selector),
            limit: EVENTS_READ,
            continue_token: None,
        },
    )?;
    Ok(listed
        .items
        .into_iter()
        .filter(|e| {
            let io = &e["involvedObject"];
            io["name"] == s.name
                && io["kind"] == s.kind
                && match (s.uid, io["uid"].as_str()) {
                    (Some(want), Some(got)) => want == got,
                    _ => true,
                }
                && (!warnings_only || e["type"] == "Warning")
        })
        .collect())
}

/// `events`.
pub fn events(
    c: &mut Cluster,
    namespace: Option<&str>,
    kind: Option<&str>,
    name: Option<&str>,
    warnings_only: bool,
    limit: Option<u64>,
    o: &mut K8sOutput,
) -> Result<(), ToolError> {
    let limit = bounded("limit", limit, 50, EVENTS_MAX)? as usize;
    let raw = match (kind, name) {
        (Some(kind), Some(name)) => {
            check_name("name", name)?;
            list_namespace(namespace)?;
            let r = c.resolve(kind, "get")?;
            let ns = object_namespace(&r, namespace)?;
            o.namespace = ns.clone();
            o.resource = Some(r.clone());
            about(
                c,
                &Subject {
                    kind: &r.kind,
                    namespace: ns.as_deref(),
                    name,
                    uid: None,
                },
                warnings_only,
            )?
        }
        (None, None) => {
            let ns = list_namespace(namespace)?;
            let r = c.resolve("events", "list")?;
            o.namespace = ns.clone();
            let listed = list_objects(
                c,
                &ListQuery {
                    resource: &r,
                    namespace: ns.as_deref(),
                    label_selector: None,
                    field_selector: None,
                    limit: EVENTS_READ,
                    continue_token: None,
                },
            )?;
            if listed.continue_token.is_some() {
                o.notes.push(format!(
                    "only the first {EVENTS_READ} events were read; name a namespace or an object \
                     for the rest"
                ));
            }
            listed
                .items
                .into_iter()
                .filter(|e| !warnings_only || e["type"] == "Warning")
                .collect()
        }
        (Some(_), None) => {
            return Err(ToolError::invalid(
                "name",
                "missing: `kind` selects one object's events, so name it with `name` (or drop \
                 `kind` for the namespace's events)",
            ));
        }
        (None, Some(_)) => {
            return Err(ToolError::invalid(
                "kind",
                "missing: give the object's `kind` with `name` (e.g. \"pods\")",
            ));
        }
    };
    o.events = Some(event_rows(raw, limit));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_and_bounded() {
        let ev = |reason: &str, t: &str| {
            json!({"type": "Warning", "reason": reason, "message": " m ", "count": 2,
                   "involvedObject": {"kind": "Pod", "name": "web", "namespace": "shop"},
                   "lastTimestamp": t})
        };
        let rows = event_rows(
            vec![
                ev("Old", "2024-03-01T10:00:00Z"),
                ev("New", "2024-03-01T12:00:00Z"),
                json!({"reason": "Series", "eventTime": "2024-03-01T11:00:00.000000Z",
                       "series": {"count": 9}, "involvedObject": {"kind": "Pod", "name": "web"}}),
            ],
            2,
        );
        let reasons: Vec<_> = rows.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons, ["New", "Series"]);
        assert_eq!(rows[0].object, "Pod/web");
        assert_eq!(rows[0].message, "m");
        assert_eq!(rows[1].count, 9);
        assert_eq!(rows[1].event_type, "Normal");
    }
}
