//! Makes tool schemas portable: what every MCP client (and every model provider's function-call
//! dialect) accepts, checked in CI by the MCP Inspector's `--strict` mode.
//!
//! schemars writes `Option<T>` as `"type": [T, "null"]` and `serde_json::Value` as `true`; both
//! are legal JSON Schema but single-`type` dialects (e.g. the OpenAPI subset used for Gemini)
//! reject them. Tools are normalised here, once, at load — for built-in and third-party plugins
//! alike — rather than in each plugin. A top-level `oneOf` of typed actions, which several
//! clients refuse, becomes one object with the per-action field sets in `x-actions`.

pub mod actions;

use serde_json::{Map, Value, json};

/// Keywords that only annotate; a schema with nothing else accepts any value.
const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "default",
    "examples",
    "$comment",
    "deprecated",
];

/// Any JSON value, spelled so that every branch has one `type`.
fn any_json(annotations: Map<String, Value>) -> Value {
    let mut out = annotations;
    out.insert(
        "anyOf".into(),
        json!([
            {"type": "object", "additionalProperties": true},
            {"type": "array"},
            {"type": "string"},
            {"type": "number"},
            {"type": "boolean"}
        ]),
    );
    Value::Object(out)
}

/// Normalises a schema in place (see the module docs). `defs` resolves `$ref`s when `inline` is set.
fn walk(schema: &mut Value, defs: &Map<String, Value>, inline: bool, depth: usize) {
    if depth > 32 {
        return;
    }
    if let Value::Bool(true) = schema {
        *schema = any_json(Map::new());
        return;
    }
    let Value::Object(obj) = schema else { return };
    // `anyOf: [X, {"type": "null"}]` (schemars' nullable `$ref`) → X.
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = obj.get_mut(key) {
            branches.retain(|b| b.get("type").and_then(Value::as_str) != Some("null"));
            if branches.len() == 1 && key == "anyOf" {
                let only = branches.remove(0);
                obj.remove(key);
                if let Value::Object(o) = only {
                    for (k, v) in o {
                        obj.entry(k).or_insert(v);
                    }
                }
            }
        }
    }
    if inline && let Some(Value::String(r)) = obj.get("$ref") {
        let name = r.rsplit('/').next().unwrap_or_default();
        if let Some(def) = defs.get(name) {
            let mut def = def.clone();
            if let (Some(d), Value::Object(o)) = (obj.get("description").cloned(), &mut def) {
                o.insert("description".into(), d);
            }
            *schema = def;
            walk(schema, defs, inline, depth + 1);
            return;
        }
    }
    if obj.keys().all(|k| ANNOTATIONS.contains(&k.as_str())) {
        *schema = any_json(std::mem::take(obj));
        return;
    }
    // `[T, "null"]` → `T`: an optional field is omitted, not sent as null.
    if let Some(Value::Array(types)) = obj.get("type") {
        let non_null: Vec<Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .cloned()
            .collect();
        match non_null.len() {
            1 => {
                obj.insert("type".into(), non_null[0].clone());
            }
            _ => {
                let branches: Vec<Value> = non_null.iter().map(|t| json!({"type": t})).collect();
                obj.remove("type");
                obj.insert("anyOf".into(), Value::Array(branches));
            }
        }
    }
    for (key, value) in obj.iter_mut() {
        match key.as_str() {
            "properties" | "$defs" | "definitions" | "patternProperties" => {
                if let Value::Object(props) = value {
                    props
                        .values_mut()
                        .for_each(|p| walk(p, defs, inline, depth + 1));
                }
            }
            // `additionalProperties: true` is a deliberate open map, and `false` a closed one.
            "additionalProperties" if value.is_boolean() => {}
            "items" | "additionalProperties" | "not" | "contains"
                if value != &Value::Bool(false) =>
            {
                walk(value, defs, inline, depth + 1);
            }
            "anyOf" | "oneOf" | "allOf" | "prefixItems" => {
                if let Value::Array(branches) = value {
                    branches
                        .iter_mut()
                        .for_each(|b| walk(b, defs, inline, depth + 1));
                }
            }
            _ => {}
        }
    }
}

/// Normalises a schema that keeps its `$defs` (an input schema: `$ref`s stay references); a
/// typed-action union is listed as one object (see [`actions`]).
pub fn portable(schema: &mut Value) {
    actions::merge(schema);
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    walk(schema, &defs, false, 0);
}

/// Normalises a property schema taken out of its document: `$ref`s into `defs` are inlined.
pub fn portable_detached(schema: &mut Value, defs: &Map<String, Value>) {
    walk(schema, defs, true, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_types_become_single_types() {
        let mut s = json!({"type": "object", "properties": {"a": {"type": ["string", "null"]}, "b": {"type": ["integer", "string"]}}});
        portable(&mut s);
        assert_eq!(s["properties"]["a"], json!({"type": "string"}));
        assert_eq!(
            s["properties"]["b"],
            json!({"anyOf": [{"type": "integer"}, {"type": "string"}]})
        );
    }

    #[test]
    fn anything_goes_schemas_declare_what_they_accept() {
        let mut s = json!({"type": "object", "properties": {"j": {"description": "any"}, "k": true, "l": {"type": "array", "items": true}}});
        portable(&mut s);
        assert_eq!(s["properties"]["j"]["description"], "any");
        assert!(s["properties"]["j"]["anyOf"].is_array());
        assert!(s["properties"]["k"]["anyOf"].is_array());
        assert!(s["properties"]["l"]["items"]["anyOf"].is_array());
    }

    #[test]
    fn detached_refs_are_inlined_and_nullable_refs_unwrapped() {
        let defs = json!({"A": {"type": "object", "properties": {"uri": {"type": "string"}}}});
        let mut s = json!({"anyOf": [{"$ref": "#/$defs/A"}, {"type": "null"}], "description": "d"});
        portable_detached(&mut s, defs.as_object().unwrap());
        assert_eq!(s["type"], "object");
        assert_eq!(s["properties"]["uri"]["type"], "string");
        assert_eq!(s["description"], "d");
    }
}
