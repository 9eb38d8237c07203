//! The tools as listed: host tools and every loaded plugin's, each input schema with the
//! fields every tool accepts and made portable, each output schema the common envelope.

use serde_json::{Value, json};

use crate::flags::Flags;
use crate::runtime::Plugin;
use crate::tool::{COMMON_FIELDS, ToolSpec};

/// The tool specs as listed: `host` then each plugin's that is on under `flags`, with the
/// common fields and envelope added to the schemas.
pub fn build_tools(host: Vec<ToolSpec>, plugins: &[Plugin], flags: Flags) -> Vec<ToolSpec> {
    let mut tools = host;
    tools.extend(
        plugins
            .iter()
            .filter(|p| p.manifest.gated(flags).is_none())
            .flat_map(|p| p.tools.iter().cloned()),
    );
    for t in &mut tools {
        add_common_fields(&mut t.input_schema);
        crate::schema::portable(&mut t.input_schema);
        t.output_schema = envelope_schema(&t.output_schema);
    }
    tools
}

/// Adds `timeout_ms` and `trace_id` to a tool's input schema (to every branch of a `oneOf`).
fn add_common_fields(schema: &mut Value) {
    let props = json!({
        "timeout_ms": {"type": "integer", "minimum": 1, "description": "Deadline for this call in milliseconds (the policy caps it)."},
        "trace_id": {"type": "string", "description": "Correlates this call with others in the audit log; generated when absent."}
    });
    let targets: Vec<&mut Value> = if schema.get("oneOf").is_some_and(Value::is_array) {
        schema["oneOf"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .collect()
    } else {
        vec![schema]
    };
    for t in targets {
        if let Some(obj) = t.as_object_mut() {
            let p = obj.entry("properties").or_insert_with(|| json!({}));
            if let Some(p) = p.as_object_mut() {
                for k in COMMON_FIELDS {
                    p.entry(*k).or_insert_with(|| props[*k].clone());
                }
            }
        }
    }
}

/// The output schema every tool shares: the envelope plus the tool's own properties.
fn envelope_schema(own: &Value) -> Value {
    let mut props = json!({
        "ok": {"type": "boolean", "description": "false when the call failed; see `error`"},
        "tool": {"type": "string"},
        "action": {"type": "string", "description": "the action run, for tools that have actions"},
        "duration_ms": {"type": "integer"},
        "trace_id": {"type": "string"},
        "artifacts": {"type": "array", "items": {"type": "string"}, "description": "artifact:// URIs stored by this call"},
        "error": {"type": "object", "description": "kind, message and the field at fault", "properties": {
            "kind": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}
        }},
        "truncated": {"type": "boolean"},
        "preview": {"type": "string"},
        "note": {"type": "string"}
    });
    if let (Some(own_props), Some(p)) = (
        own.get("properties").and_then(Value::as_object),
        props.as_object_mut(),
    ) {
        let defs = own
            .get("$defs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (k, v) in own_props {
            p.entry(k.clone()).or_insert_with(|| {
                let mut v = v.clone();
                crate::schema::portable_detached(&mut v, &defs);
                v
            });
        }
    }
    json!({
        "type": "object",
        "properties": props,
        "required": ["ok", "tool", "duration_ms", "trace_id"],
        "additionalProperties": true
    })
}
