//! Server-side apply and field ownership: the applied configuration is merged into the live
//! object (maps merge, lists and scalars replace), fields the manager applied before and no
//! longer does are removed, and `metadata.managedFields` records who owns which field. A field
//! another manager owns with a different value is a conflict unless `force`.

use std::collections::BTreeSet;
use std::time::SystemTime;

use serde_json::{Map, Value, json};

use super::store::rfc3339;

type Path = Vec<String>;

/// Metadata the server owns: never part of a manager's field set.
const SERVER_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
];

/// One `managedFields` entry.
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    fields: BTreeSet<Path>,
    /// Other keys as they were (time, subresource): kept when the entry is unchanged.
    rest: Map<String, Value>,
}

/// The leaf paths of `v` (empty maps and lists are leaves), skipping server metadata and
/// status at the top.
fn leaves(v: &Value) -> BTreeSet<Path> {
    fn walk(v: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, child) in m {
                    let top = path.is_empty();
                    if top && ["apiVersion", "kind", "status"].contains(&k.as_str()) {
                        continue;
                    }
                    if path.len() == 1 && path[0] == "metadata" && SERVER_META.contains(&k.as_str())
                    {
                        continue;
                    }
                    path.push(k.clone());
                    walk(child, path, out);
                    path.pop();
                }
            }
            _ if !path.is_empty() => {
                out.insert(path.clone());
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn at<'a>(v: &'a Value, p: &[String]) -> Option<&'a Value> {
    p.iter().try_fold(v, |v, k| v.get(k))
}

/// Removes the field at `p`, then any map that removal left empty (as SSA does when the last
/// owned key of a map goes).
fn remove_at(v: &mut Value, p: &[String]) -> bool {
    let Some((first, rest)) = p.split_first() else {
        return false;
    };
    let Some(m) = v.as_object_mut() else {
        return false;
    };
    if rest.is_empty() {
        m.remove(first);
    } else if let Some(child) = m.get_mut(first)
        && remove_at(child, rest)
    {
        m.remove(first);
    }
    m.is_empty()
}

/// Maps merge key by key; anything else replaces.
pub fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (into, from) => *into = from.clone(),
    }
}

/// RFC 7386 JSON merge patch (`null` deletes).
pub fn merge_patch(into: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !into.is_object() {
                *into = json!({});
            }
            let a = into.as_object_mut().expect("made an object");
            for (k, v) in p {
                if v.is_null() {
                    a.remove(k);
                } else {
                    merge_patch(a.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *into = patch.clone(),
    }
}

fn to_fields_v1(paths: &BTreeSet<Path>) -> Value {
    let mut root = json!({});
    for p in paths {
        let mut cur = &mut root;
        for k in p {
            cur = cur
                .as_object_mut()
                .expect("fieldsV1 nodes are maps")
                .entry(format!("f:{k}"))
                .or_insert_with(|| json!({}));
        }
    }
    root
}

fn from_fields_v1(v: &Value) -> BTreeSet<Path> {
    fn walk(v: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
        let children: Vec<(&String, &Value)> = v
            .as_object()
            .map(|m| m.iter().filter(|(k, _)| k.starts_with("f:")).collect())
            .unwrap_or_default();
        if children.is_empty() {
            if !path.is_empty() {
                out.insert(path.clone());
            }
            return;
        }
        for (k, child) in children {
            path.push(k[2..].to_string());
            walk(child, path, out);
            path.pop();
        }
    }
    let mut out = BTreeSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn entries(obj: &Value) -> Vec<Entry> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    let mut rest = e.as_object().cloned().unwrap_or_default();
                    for k in [
                        "manager",
                        "operation",
                        "apiVersion",
                        "fieldsV1",
                        "fieldsType",
                    ] {
                        rest.remove(k);
                    }
                    Entry {
                        manager: e["manager"].as_str().unwrap_or_default().into(),
                        operation: e["operation"].as_str().unwrap_or("Update").into(),
                        api_version: e["apiVersion"].as_str().unwrap_or_default().into(),
                        fields: from_fields_v1(&e["fieldsV1"]),
                        rest,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn write_entries(obj: &mut Value, entries: Vec<Entry>) {
    let list: Vec<Value> = entries
        .into_iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut m = e.rest;
            m.insert("manager".into(), json!(e.manager));
            m.insert("operation".into(), json!(e.operation));
            m.insert("apiVersion".into(), json!(e.api_version));
            m.insert("fieldsType".into(), json!("FieldsV1"));
            m.insert("fieldsV1".into(), to_fields_v1(&e.fields));
            Value::Object(m)
        })
        .collect();
    if list.is_empty() {
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
    } else {
        obj["metadata"]["managedFields"] = Value::Array(list);
    }
}

fn dotted(p: &Path) -> String {
    p.iter().map(|k| format!(".{k}")).collect()
}

/// Applies `config` as `manager` onto `live` (None: the object is new). Conflicts (another
/// manager owns a field this one sets to a different value) are the error, one line each,
/// unless `force` takes the fields over.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, Vec<String>> {
    let api_version = config["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let applied = leaves(config);
    let mut result = live.cloned().unwrap_or_else(|| json!({}));
    let mut owners = live.map(entries).unwrap_or_default();

    let mut conflicts = Vec::new();
    let mut changed = BTreeSet::new();
    for p in &applied {
        let (old, new) = (live.and_then(|l| at(l, p)), at(config, p));
        if old.is_some() && old != new {
            changed.insert(p.clone());
            for e in owners
                .iter()
                .filter(|e| !(e.manager == manager && e.operation == "Apply"))
            {
                if e.fields.contains(p) {
                    conflicts.push(format!(
                        "conflict with \"{}\" using {}: {}",
                        e.manager,
                        e.api_version,
                        dotted(p)
                    ));
                }
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }

    // Fields this manager applied before and has now dropped go, unless someone else owns them.
    if let Some(mine) = owners
        .iter()
        .find(|e| e.manager == manager && e.operation == "Apply")
    {
        let others: BTreeSet<&Path> = owners
            .iter()
            .filter(|e| !(e.manager == manager && e.operation == "Apply"))
            .flat_map(|e| e.fields.iter())
            .collect();
        for p in mine.fields.difference(&applied) {
            if !others.contains(p) {
                remove_at(&mut result, p);
            }
        }
    }
    let mut body = config.clone();
    if let Some(m) = body.as_object_mut() {
        m.remove("status");
    }
    merge(&mut result, &body);

    // Forced fields change hands; equal values stay shared.
    for e in owners.iter_mut() {
        e.fields.retain(|p| !changed.contains(p));
    }
    owners.retain(|e| !(e.manager == manager && e.operation == "Apply"));
    owners.push(Entry {
        manager: manager.into(),
        operation: "Apply".into(),
        api_version,
        fields: applied,
        rest: Map::from_iter([("time".to_string(), json!(rfc3339(SystemTime::now())))]),
    });
    write_entries(&mut result, owners);
    Ok(result)
}

/// Records a non-apply write (create, update, patch) by `manager`: it owns the fields it
/// changed, which other managers lose.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
) {
    let before = old.map(leaves).unwrap_or_default();
    let after = leaves(new);
    let changed: BTreeSet<Path> = after
        .iter()
        .filter(|p| !before.contains(*p) || old.and_then(|o| at(o, p)) != at(new, p))
        .cloned()
        .collect();
    let mut owners = old.map(entries).unwrap_or_default();
    for e in owners.iter_mut() {
        e.fields
            .retain(|p| !changed.contains(p) && after.contains(p));
    }
    let api_version = new["apiVersion"].as_str().unwrap_or_default().to_string();
    match owners
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == "Update")
    {
        Some(e) => e.fields.extend(changed),
        None => {
            let mut rest = Map::new();
            if let Some(s) = subresource {
                rest.insert("subresource".into(), json!(s));
            }
            owners.push(Entry {
                manager: manager.into(),
                operation: "Update".into(),
                api_version,
                fields: changed,
                rest,
            })
        }
    }
    for e in owners.iter_mut() {
        e.rest
            .insert("time".into(), json!(rfc3339(SystemTime::now())));
    }
    write_entries(new, owners);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(replicas: u64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "labels": {"app": "web"}},
               "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "c", "image": image}]}}}})
    }

    #[test]
    fn apply_merges_and_owns() {
        let first = apply(None, &deploy(1, "a"), "infra", false).unwrap();
        let mf = &first["metadata"]["managedFields"][0];
        assert_eq!(mf["manager"], "infra");
        assert!(mf["fieldsV1"]["f:spec"]["f:replicas"].is_object());
        // Another manager changing an owned field conflicts; force takes it over.
        let err = apply(Some(&first), &deploy(3, "a"), "other", false).unwrap_err();
        assert!(
            err[0].contains(".spec.replicas") && err[0].contains("infra"),
            "{err:?}"
        );
        let forced = apply(Some(&first), &deploy(3, "a"), "other", true).unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        // The same manager dropping a label removes it.
        let mut less = deploy(1, "b");
        less["metadata"].as_object_mut().unwrap().remove("labels");
        let again = apply(Some(&first), &less, "infra", false).unwrap();
        assert!(again["metadata"].get("labels").is_none(), "{again}");
        assert_eq!(
            again["spec"]["template"]["spec"]["containers"][0]["image"],
            "b"
        );
    }

    #[test]
    fn merge_patch_deletes_with_null() {
        let mut v = json!({"a": {"b": 1, "c": 2}});
        merge_patch(&mut v, &json!({"a": {"b": null, "d": 3}}));
        assert_eq!(v, json!({"a": {"c": 2, "d": 3}}));
    }
}
