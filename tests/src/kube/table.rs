//! Server-side printing: the `meta.k8s.io/v1` Table kubectl asks for (`Accept: …;as=Table`),
//! with the columns `kubectl get` shows for pods, deployments and namespaces, NAME and AGE for
//! the rest.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::store::parse_rfc3339;

/// Kubernetes' short age ("5s", "3m", "2h", "4d").
fn age(obj: &Value) -> String {
    let Some(t) = obj["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(parse_rfc3339)
    else {
        return "<unknown>".into();
    };
    let s = SystemTime::now()
        .duration_since(t)
        .unwrap_or_default()
        .as_secs();
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        7200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

fn pod_cells(p: &Value) -> Vec<Value> {
    let statuses = p["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = p["spec"]["containers"]
        .as_array()
        .map_or(statuses.len(), Vec::len);
    let ready = statuses.iter().filter(|c| c["ready"] == true).count();
    let restarts: i64 = statuses
        .iter()
        .filter_map(|c| c["restartCount"].as_i64())
        .sum();
    // As kubectl shows it: a waiting or terminated reason wins over the phase.
    let reason = statuses
        .iter()
        .find_map(|c| {
            c["state"]["waiting"]["reason"]
                .as_str()
                .or(c["state"]["terminated"]["reason"].as_str())
        })
        .or(p["status"]["reason"].as_str())
        .or(p["status"]["phase"].as_str())
        .unwrap_or("Pending");
    vec![
        json!(p["metadata"]["name"]),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts),
        json!(age(p)),
    ]
}

fn columns(names: &[(&str, &str)]) -> Vec<Value> {
    names
        .iter()
        .map(|(n, t)| {
            let format = if *n == "Name" { "name" } else { "" };
            json!({"name": n, "type": t, "format": format, "description": "", "priority": 0})
        })
        .collect()
}

/// A row's cells from an object.
type Cells = fn(&Value) -> Vec<Value>;

/// A Table of `items` of `kind`; `list_meta` is the list's metadata (resourceVersion, continue).
pub fn table(kind: &str, items: &[&Value], list_meta: Value) -> Value {
    let (cols, cells): (Vec<Value>, Cells) = match kind {
        "Pod" => (
            columns(&[
                ("Name", "string"),
                ("Ready", "string"),
                ("Status", "string"),
                ("Restarts", "integer"),
                ("Age", "string"),
            ]),
            pod_cells,
        ),
        "Deployment" => (
            columns(&[
                ("Name", "string"),
                ("Ready", "string"),
                ("Up-to-date", "integer"),
                ("Available", "integer"),
                ("Age", "string"),
            ]),
            |d| {
                let s = &d["status"];
                vec![
                    json!(d["metadata"]["name"]),
                    json!(format!(
                        "{}/{}",
                        s["readyReplicas"].as_i64().unwrap_or(0),
                        d["spec"]["replicas"].as_i64().unwrap_or(1)
                    )),
                    json!(s["updatedReplicas"].as_i64().unwrap_or(0)),
                    json!(s["availableReplicas"].as_i64().unwrap_or(0)),
                    json!(age(d)),
                ]
            },
        ),
        "Namespace" => (
            columns(&[("Name", "string"), ("Status", "string"), ("Age", "string")]),
            |n| {
                vec![
                    json!(n["metadata"]["name"]),
                    json!(n["status"]["phase"].as_str().unwrap_or("Active")),
                    json!(age(n)),
                ]
            },
        ),
        _ => (columns(&[("Name", "string"), ("Age", "string")]), |o| {
            vec![json!(o["metadata"]["name"]), json!(age(o))]
        }),
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            json!({"cells": cells(o), "object": {"kind": "PartialObjectMetadata",
                   "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
           "columnDefinitions": cols, "rows": rows})
}
