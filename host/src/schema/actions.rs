//! Per-action argument schemas, listed as one portable object.
//!
//! A plugin's typed actions (`#[serde(tag = "action")]`) come out of schemars as a top-level
//! `oneOf` whose branches each pin `action` with `const`. Several clients refuse a top-level
//! `oneOf`, so [`merge`] lists the union as one object: every field of every action, `action` an
//! enum, each field's description saying which actions use it — and the per-action field sets
//! kept, as data, in the `x-actions` annotation. [`for_action`] and [`tagged`] read that
//! annotation back for `help` and for the argument validator: which field belongs to which
//! action comes from the schema, never from prose.

use serde_json::{Map, Value, json};

/// The annotation holding each action's description, fields, required fields and, where the
/// actions describe a field differently, its own description of it (`docs`).
pub const X_ACTIONS: &str = "x-actions";

/// The discriminator of a typed-action union.
const TAG: &str = "action";

/// An action that takes a field, with the field's description there.
type Use = (String, Option<String>);

/// One branch of the union: the action it stands for and what it says about its fields.
struct Branch {
    name: String,
    description: Option<String>,
    properties: Map<String, Value>,
    required: Vec<String>,
    /// The branch refuses fields it does not declare.
    closed: bool,
}

/// A branch's own properties and required fields, following `$ref`s into `defs` and `allOf`s.
fn collect(schema: &Value, defs: &Map<String, Value>, branch: &mut Branch, depth: usize) {
    if depth > 8 {
        return;
    }
    if schema["additionalProperties"] == Value::Bool(false) {
        branch.closed = true;
    }
    if let Some(r) = schema["$ref"].as_str()
        && let Some(def) = defs.get(r.rsplit('/').next().unwrap_or_default())
    {
        collect(def, defs, branch, depth + 1);
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        collect(part, defs, branch, depth + 1);
    }
    for (k, v) in schema["properties"].as_object().into_iter().flatten() {
        branch
            .properties
            .entry(k.clone())
            .or_insert_with(|| v.clone());
    }
    for r in schema["required"].as_array().into_iter().flatten() {
        if let Some(r) = r
            .as_str()
            .filter(|r| !branch.required.iter().any(|x| x == r))
        {
            branch.required.push(r.to_string());
        }
    }
}

/// The branches of a top-level typed-action `oneOf`, or `None` when the schema is not one.
fn branches(schema: &Value) -> Option<Vec<Branch>> {
    let defs = schema["$defs"].as_object().cloned().unwrap_or_default();
    let list = schema["oneOf"].as_array()?;
    let mut out = Vec::new();
    for b in list {
        let mut branch = Branch {
            name: String::new(),
            description: b["description"].as_str().map(String::from),
            properties: Map::new(),
            required: Vec::new(),
            closed: false,
        };
        collect(b, &defs, &mut branch, 0);
        let tag = branch.properties.remove(TAG)?;
        branch.name = tag["const"]
            .as_str()
            .or(tag["enum"][0].as_str())?
            .to_string();
        branch.required.retain(|r| r != TAG);
        out.push(branch);
    }
    (!out.is_empty()).then_some(out)
}

/// Lists a top-level typed-action `oneOf` as one object (see the module docs); any other schema
/// is left as it is.
pub fn merge(schema: &mut Value) {
    let Some(branches) = branches(schema) else {
        return;
    };
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    obj.remove("oneOf");
    let mut common: Vec<String> = obj
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let mut common_required: Vec<String> = obj
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let closed = obj.get("additionalProperties") == Some(&Value::Bool(false))
        || branches.iter().all(|b| b.closed);
    let mut properties = obj
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    // Which actions use each action-specific field, and with which description.
    let mut users: Vec<(String, Vec<Use>)> = Vec::new();
    for b in &branches {
        for (k, v) in &b.properties {
            if common.contains(k) {
                continue;
            }
            properties.entry(k.clone()).or_insert_with(|| v.clone());
            let doc = v["description"].as_str().map(String::from);
            match users.iter_mut().find(|(name, _)| name == k) {
                Some((_, list)) => list.push((b.name.clone(), doc)),
                None => users.push((k.clone(), vec![(b.name.clone(), doc)])),
            }
        }
    }
    for (field, list) in &users {
        // A field every action takes alike (e.g. the host's `timeout_ms`) is a common field.
        if list.len() == branches.len() && list.iter().all(|(_, d)| *d == list[0].1) {
            common.push(field.clone());
            continue;
        }
        if let Some(p) = properties.get_mut(field).and_then(Value::as_object_mut) {
            p.insert("description".into(), Value::String(describe_users(list)));
        }
    }
    // A field every action requires is required of the merged object too.
    for (field, _) in &users {
        if branches.iter().all(|b| b.required.contains(field)) {
            common_required.push(field.clone());
        }
    }
    let names: Vec<&str> = branches.iter().map(|b| b.name.as_str()).collect();
    let doc = branches
        .iter()
        .map(|b| match &b.description {
            Some(d) => format!("`{}`: {}", b.name, d.trim()),
            None => format!("`{}`", b.name),
        })
        .collect::<Vec<_>>()
        .join(" ");
    properties.insert(
        TAG.into(),
        json!({"type": "string", "enum": names, "description": format!("What to do. {doc}")}),
    );
    if !common_required.iter().any(|r| r == TAG) {
        common_required.insert(0, TAG.into());
    }
    let actions: Map<String, Value> = branches
        .iter()
        .map(|b| {
            let mut fields: Vec<&str> = vec![TAG];
            fields.extend(common.iter().map(String::as_str).filter(|f| *f != TAG));
            fields.extend(
                b.properties
                    .keys()
                    .map(String::as_str)
                    .filter(|f| !common.iter().any(|c| c == f)),
            );
            let mut required: Vec<&str> = common_required.iter().map(String::as_str).collect();
            for r in &b.required {
                if !required.contains(&r.as_str()) {
                    required.push(r);
                }
            }
            // Where actions describe a field differently, each keeps its own words, so the
            // narrowed schema (help, validation errors) reads as that action's.
            let own_docs: Map<String, Value> = users
                .iter()
                .filter(|(_, list)| list.iter().any(|(_, d)| *d != list[0].1))
                .filter_map(|(field, list)| {
                    let (_, doc) = list.iter().find(|(a, _)| *a == b.name)?;
                    Some((field.clone(), json!(doc.as_deref()?.trim())))
                })
                .collect();
            let mut entry =
                json!({"description": b.description, "fields": fields, "required": required});
            if !own_docs.is_empty() {
                entry["docs"] = Value::Object(own_docs);
            }
            (b.name.clone(), entry)
        })
        .collect();
    obj.insert("type".into(), json!("object"));
    obj.insert("properties".into(), Value::Object(properties));
    obj.insert("required".into(), json!(common_required));
    if closed {
        obj.insert("additionalProperties".into(), Value::Bool(false));
    }
    obj.insert(X_ACTIONS.into(), Value::Object(actions));
}

/// A field's description that names the actions using it, e.g. "`check`: Text the body must
/// contain." or, when the actions describe it differently, each description with its actions.
fn describe_users(list: &[Use]) -> String {
    let mut groups: Vec<(Vec<&str>, &str)> = Vec::new();
    for (action, doc) in list {
        let doc = doc.as_deref().unwrap_or("").trim();
        match groups.iter_mut().find(|(_, d)| *d == doc) {
            Some((names, _)) => names.push(action),
            None => groups.push((vec![action], doc)),
        }
    }
    groups
        .iter()
        .map(|(names, doc)| {
            let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("{}: {doc}", names.join("/")).trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The actions of a merged schema with their `x-actions` entry, in the order of the `action`
/// enum (the plugin's declaration order; the annotation's keys may come back sorted).
pub fn actions(schema: &Value) -> Vec<(&str, &Value)> {
    let Some(entries) = schema[X_ACTIONS].as_object() else {
        return Vec::new();
    };
    schema["properties"][TAG]["enum"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|a| entries.get(a).map(|e| (a, e)))
        .collect()
}

/// The schema of one action of a merged schema: only its fields, `action` pinned, its required
/// fields; `None` when the schema has no such action.
pub fn for_action(schema: &Value, action: &str) -> Option<Value> {
    let entry = schema[X_ACTIONS].get(action)?;
    let props = schema["properties"].as_object()?;
    let mut kept = Map::new();
    for f in entry["fields"].as_array().into_iter().flatten() {
        let Some(f) = f.as_str() else { continue };
        if f == TAG {
            kept.insert(TAG.into(), json!({"type": "string", "const": action}));
        } else if let Some(p) = props.get(f) {
            let mut p = p.clone();
            if let Some(doc) = entry["docs"].get(f) {
                p["description"] = doc.clone();
            }
            kept.insert(f.into(), p);
        }
    }
    let mut out = json!({
        "type": "object",
        "properties": kept,
        "required": entry["required"],
        "additionalProperties": false,
    });
    if let Some(d) = entry["description"].as_str() {
        out["description"] = json!(d);
    }
    if let Some(defs) = schema.get("$defs") {
        out["$defs"] = defs.clone();
    }
    Some(out)
}

/// A merged schema read back as the tagged union it was listed from (one `oneOf` branch per
/// action), for validating arguments against the fields of their own action; `None` when the
/// schema has no `x-actions`.
pub fn tagged(schema: &Value) -> Option<Value> {
    let branches: Vec<Value> = actions(schema)
        .into_iter()
        .filter_map(|(a, _)| for_action(schema, a))
        .map(|mut b| {
            if let Some(o) = b.as_object_mut() {
                o.remove("$defs");
            }
            b
        })
        .collect();
    if branches.is_empty() {
        return None;
    }
    let mut out = json!({"type": "object", "oneOf": branches});
    if let Some(defs) = schema.get("$defs") {
        out["$defs"] = defs.clone();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped as schemars writes `struct { #[serde(flatten)] common, #[serde(flatten)] action }`
    /// with the router's common fields added to each branch.
    fn typed() -> Value {
        json!({
            "type": "object",
            "properties": {"url": {"type": "string", "description": "The URL."}},
            "additionalProperties": false,
            "oneOf": [
                {"description": "One request.", "type": "object", "properties": {
                    "action": {"type": "string", "const": "request"},
                    "max_bytes": {"type": "integer", "description": "Cap on the body."},
                    "timeout_ms": {"type": "integer", "description": "Deadline."}},
                 "required": ["action"]},
                {"description": "Pages.", "type": "object",
                 "properties": {"action": {"type": "string", "const": "paginate"},
                    "timeout_ms": {"type": "integer", "description": "Deadline."}},
                 "$ref": "#/$defs/Paging", "required": ["action"]},
            ],
            "$defs": {"Paging": {"type": "object", "properties": {
                "max_pages": {"type": "integer", "description": "Pages at most."}},
                "required": ["max_pages"]}},
        })
    }

    #[test]
    fn a_typed_union_is_listed_as_one_closed_object_with_its_actions() {
        let mut s = typed();
        merge(&mut s);
        assert!(s.get("oneOf").is_none(), "{s}");
        assert_eq!(s["type"], "object");
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["required"], json!(["action"]));
        assert_eq!(
            s["properties"]["action"]["enum"],
            json!(["request", "paginate"])
        );
        assert_eq!(
            s["properties"]["max_bytes"]["description"],
            "`request`: Cap on the body."
        );
        assert_eq!(s["properties"]["timeout_ms"]["description"], "Deadline.");
        assert_eq!(
            s[X_ACTIONS]["paginate"]["fields"],
            json!(["action", "url", "timeout_ms", "max_pages"])
        );
        assert_eq!(
            s[X_ACTIONS]["paginate"]["required"],
            json!(["action", "max_pages"])
        );
        let names: Vec<&str> = actions(&s).into_iter().map(|(a, _)| a).collect();
        assert_eq!(names, ["request", "paginate"]);
    }

    #[test]
    fn one_action_and_the_union_are_read_back_from_the_listing() {
        let mut s = typed();
        merge(&mut s);
        let one = for_action(&s, "request").unwrap();
        let keys: Vec<&String> = one["properties"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["action", "max_bytes", "timeout_ms", "url"]);
        assert_eq!(one["properties"]["action"]["const"], "request");
        assert_eq!(one["description"], "One request.");
        assert!(for_action(&s, "drop").is_none());
        let union = tagged(&s).unwrap();
        assert_eq!(union["oneOf"].as_array().unwrap().len(), 2);
        assert!(union["$defs"]["Paging"].is_object());
    }

    #[test]
    fn a_field_the_actions_describe_differently_keeps_each_actions_words() {
        let mut s = json!({
            "type": "object",
            "oneOf": [
                {"type": "object", "properties": {
                    "action": {"type": "string", "const": "exec"},
                    "command": {"type": "string", "description": "Run by the shell."}},
                 "required": ["action", "command"]},
                {"type": "object", "properties": {
                    "action": {"type": "string", "const": "detach"},
                    "command": {"type": "string", "description": "Run in its own session."}},
                 "required": ["action", "command"]},
            ],
        });
        merge(&mut s);
        assert_eq!(
            s["properties"]["command"]["description"],
            "`exec`: Run by the shell. `detach`: Run in its own session."
        );
        let exec = for_action(&s, "exec").unwrap();
        assert_eq!(
            exec["properties"]["command"]["description"],
            "Run by the shell."
        );
        let union = tagged(&s).unwrap();
        assert_eq!(
            union["oneOf"][1]["properties"]["command"]["description"],
            "Run in its own session."
        );
    }

    #[test]
    fn other_schemas_are_left_alone() {
        let flat = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let mut s = flat.clone();
        merge(&mut s);
        assert_eq!(s, flat);
        assert!(tagged(&s).is_none());
        let untagged = json!({"oneOf": [{"type": "string"}, {"type": "integer"}]});
        let mut s = untagged.clone();
        merge(&mut s);
        assert_eq!(s, untagged);
    }
}
