//! `infra docs tools`: docs/tools.md, written from the live tool schemas.
//!
//! The reference of every tool is generated, never written by hand, so it cannot drift from what
//! `tools/list` answers; a test regenerates it and fails when the checked-in file is stale.

use std::fmt::Write;

use serde_json::Value;

use crate::tool::ToolSpec;

/// The command that regenerates docs/tools.md, as the file's header and the staleness test say.
pub const REGENERATE: &str = "INFRA_HOME=$(mktemp -d) infra docs tools > docs/tools.md";

/// Markdown reference of `tools`, in listing order.
pub fn tools_markdown(tools: &[ToolSpec]) -> String {
    let mut out = String::new();
    out.push_str("# Tools\n\n");
    let _ = writeln!(
        out,
        "<!-- Generated from the live schemas by `infra docs tools`; do not edit. Regenerate with\n     `{REGENERATE}` (a test fails when this file is stale). -->\n"
    );
    out.push_str(
        "Every tool below is what `tools/list` answers with the embedded default policy and no \
         third-party plugins. Each also takes the common fields `timeout_ms` (the call's deadline, \
         capped by the policy) and `trace_id` (correlates calls in the audit log). Every result \
         carries `ok`, `tool`, `action`, `duration_ms` and `trace_id`; a failure carries `error` \
         with `kind` (`invalid`, `denied`, `not-found`, `timeout`, `failed`, `busy`, \
         `cancelled`), `message` (what to do) and, for bad input, `field`. Results larger than \
         the inline cap come back as an `artifact://` link with a preview.\n\n",
    );
    out.push_str("| tool | kind | title |\n|---|---|---|\n");
    for t in tools {
        let kind = match &t.plugin {
            Some(p) => format!("plugin `{p}`"),
            None => "host".to_string(),
        };
        let _ = writeln!(
            out,
            "| [`{}`](#{}) | {kind} | {} |",
            t.name, t.name, t.title
        );
    }
    for t in tools {
        out.push('\n');
        tool_section(&mut out, t);
    }
    out
}

fn tool_section(out: &mut String, t: &ToolSpec) {
    let _ = writeln!(out, "## {}\n", t.name);
    let _ = writeln!(out, "**{}** — {}\n", t.title, one_line(&t.description));
    let a = &t.annotations;
    let mut hints = Vec::new();
    for (on, word) in [
        (a.read_only, "read-only"),
        (a.destructive, "destructive"),
        (a.idempotent, "idempotent"),
        (a.open_world, "open-world"),
    ] {
        if on {
            hints.push(word);
        }
    }
    let provider = match &t.plugin {
        Some(p) => format!("sandboxed plugin `{p}`"),
        None => "host tool (not sandboxed: it reads infra's own state)".to_string(),
    };
    let hints = if hints.is_empty() {
        "none".to_string()
    } else {
        hints.join(", ")
    };
    let _ = writeln!(out, "Provided by: {provider}. Hints: {hints}.\n");
    let schema = &t.input_schema;
    let actions = action_values(schema);
    if !actions.is_empty() {
        let list: Vec<String> = actions.iter().map(|a| format!("`{a}`")).collect();
        let _ = writeln!(out, "Actions: {}.\n", list.join(", "));
    }
    let Some(props) = schema["properties"].as_object() else {
        return;
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    out.push_str("| field | type | required | description |\n|---|---|---|---|\n");
    for (name, field) in props {
        if crate::tool::COMMON_FIELDS.contains(&name.as_str()) {
            continue;
        }
        let _ = writeln!(
            out,
            "| `{name}` | {} | {} | {} |",
            type_of(resolve(schema, field)),
            required_in(schema, name, &required),
            cell(field["description"].as_str().unwrap_or_default()),
        );
    }
}

/// "yes" when every call needs the field, else the actions that need it (from `x-actions`).
fn required_in(schema: &Value, field: &str, always: &[&str]) -> String {
    if always.contains(&field) {
        return "yes".into();
    }
    let by: Vec<String> = crate::schema::actions::actions(schema)
        .into_iter()
        .filter(|(_, entry)| {
            entry["required"]
                .as_array()
                .is_some_and(|r| r.iter().any(|f| f == field))
        })
        .map(|(a, _)| format!("`{a}`"))
        .collect();
    by.join(", ")
}

/// The values of the `action` field, when the tool has actions.
fn action_values(schema: &Value) -> Vec<String> {
    let field = &schema["properties"]["action"];
    let from = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(String::from))
            .collect()
    };
    if field["enum"].is_array() {
        return from(&field["enum"]);
    }
    field["oneOf"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["const"].as_str().or(b["enum"][0].as_str()))
        .map(String::from)
        .collect()
}

/// `field`, or the `$defs` entry its `$ref` points at.
fn resolve<'a>(schema: &'a Value, field: &'a Value) -> &'a Value {
    match field["$ref"].as_str().and_then(|r| r.rsplit('/').next()) {
        Some(name) if schema["$defs"][name].is_object() => &schema["$defs"][name],
        _ => field,
    }
}

/// A field's type as a reader wants it: `string`, `integer ≥ 1`, one of `a`, `b`, `array of string`.
fn type_of(field: &Value) -> String {
    if let Some(values) = field["enum"].as_array() {
        let names: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
        return format!("one of {}", names.join(", ")).replace('"', "");
    }
    if let Some(branches) = field["anyOf"].as_array().or(field["oneOf"].as_array()) {
        let consts: Vec<String> = branches
            .iter()
            .filter_map(|b| b["const"].as_str().map(|c| format!("`{c}`")))
            .collect();
        if consts.len() == branches.len() {
            return format!("one of {}", consts.join(", "));
        }
        let kinds: Vec<String> = branches.iter().map(type_of).collect();
        return kinds.join(" or ");
    }
    let base = match field["type"].as_str() {
        Some("array") => format!("array of {}", type_of(&field["items"])),
        Some(t) => t.to_string(),
        None => "any".to_string(),
    };
    match (field["minimum"].as_f64(), field["maximum"].as_f64()) {
        (Some(lo), Some(hi)) => format!("{base} {lo}..={hi}"),
        (Some(lo), None) => format!("{base} ≥ {lo}"),
        (None, Some(hi)) => format!("{base} ≤ {hi}"),
        (None, None) => base,
    }
}

/// Text fit for one table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tool::Annotations;
    use serde_json::json;

    #[test]
    fn a_tool_renders_its_actions_fields_and_hints() {
        let t = ToolSpec {
            name: "demo".into(),
            title: "Demo".into(),
            description: "Does a\nthing.".into(),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "action": {"type": "string", "enum": ["get", "put"]},
                    "limit": {"type": "integer", "minimum": 1, "description": "at most | this"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "timeout_ms": {"type": "integer"}
                },
                "required": ["action"]
            }),
            output_schema: json!({}),
            annotations: Annotations {
                read_only: true,
                ..Default::default()
            },
            plugin: Some("demo".into()),
        };
        let md = tools_markdown(&[t]);
        assert!(md.contains("## demo"), "{md}");
        assert!(md.contains("**Demo** — Does a thing."), "{md}");
        assert!(md.contains("Hints: read-only."), "{md}");
        assert!(md.contains("Actions: `get`, `put`."), "{md}");
        assert!(
            md.contains("| `limit` | integer ≥ 1 |  | at most \\| this |"),
            "{md}"
        );
        assert!(md.contains("| `tags` | array of string |"), "{md}");
        assert!(
            !md.contains("`timeout_ms` |"),
            "common fields are described once: {md}"
        );
    }
}
