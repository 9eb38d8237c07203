//! `help`: find tools, actions and fields by words; the exact schema of one tool.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::HostView;
use crate::error_kind::ErrorKind;
use crate::failure::Failure;
use crate::runtime::gated_tool;
use crate::schema::actions as typed_actions;

pub const DESCRIPTION: &str = "Start here. Without arguments: every tool with its actions. \
`query`: tools, actions and fields matching the words. `tool` (and `action`): the exact input \
schema to call it with.";

/// Arguments of `help`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Words to search for in tool names, descriptions, actions and fields (`alias` or `compat`
    /// also shows the names of the tool infra replaces and what they mean).
    pub query: Option<String>,
    /// A tool whose exact schema to show.
    pub tool: Option<String>,
    /// With `tool`: that action's description and only the fields that apply to it.
    pub action: Option<String>,
}

/// The `action` field's schema, with a `$ref` followed.
fn action_field(schema: &Value) -> &Value {
    let field = &schema["properties"]["action"];
    match field["$ref"].as_str() {
        Some(r) => &schema["$defs"][r.rsplit('/').next().unwrap_or_default()],
        None => field,
    }
}

/// The actions of a tool: those of its typed-action schema (`x-actions`), else the values of a
/// plain `action` field (a third-party plugin may list its schema flat).
fn actions(schema: &Value) -> Vec<String> {
    let typed = typed_actions::actions(schema);
    if !typed.is_empty() {
        return typed.into_iter().map(|(a, _)| a.to_string()).collect();
    }
    let field = action_field(schema);
    if let Some(values) = field["enum"].as_array() {
        return values
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect();
    }
    field["oneOf"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["const"].as_str().map(String::from))
        .collect()
}

/// The doc line of one action, when the schema has one.
fn action_doc(schema: &Value, action: &str) -> Option<String> {
    if let Some(d) = schema[typed_actions::X_ACTIONS][action]["description"].as_str() {
        return Some(d.to_string());
    }
    action_field(schema)["oneOf"]
        .as_array()?
        .iter()
        .find(|b| b["const"].as_str() == Some(action))
        .and_then(|b| b["description"].as_str().map(String::from))
}

/// The schema of one action: its own fields as `x-actions` lists them; for a tool whose schema
/// does not (a flat third-party schema), the whole schema and a note saying so.
fn action_schema(tool: &str, schema: &Value, action: &str) -> (Value, Option<String>) {
    match typed_actions::for_action(schema, action) {
        Some(narrowed) => (narrowed, None),
        // Which field belongs to which action is known only from `x-actions`; guessing it from
        // the descriptions could hide a field the action takes.
        None => (
            schema.clone(),
            Some(format!(
                "tool '{tool}' does not list its fields per action (no `x-actions` in its \
                 schema), so this is its whole schema: read each field's description for the \
                 actions it applies to"
            )),
        ),
    }
}

pub fn run(host: &HostView<'_>, args: Args) -> Result<Value, Failure> {
    let tools = host.tools;
    if let Some(name) = &args.tool {
        let name = crate::compat::tool(name);
        let Some(t) = tools.iter().find(|t| t.name == name) else {
            if let Some((_, why)) = gated_tool(host.plugins, name, host.shared.flags) {
                return Err(Failure::new(
                    ErrorKind::Denied,
                    format!("tool '{name}' is off: {why}"),
                ));
            }
            let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
            return Err(Failure::invalid(
                "tool",
                format!("no tool '{name}'; the tools are: {}", names.join(", ")),
            ));
        };
        let acts = actions(&t.input_schema);
        if let Some(a) = &args.action
            && !acts.iter().any(|x| x == a)
        {
            return Err(Failure::invalid(
                "action",
                format!(
                    "tool '{name}' has no action '{a}'; its actions are: {}",
                    acts.join(", ")
                ),
            ));
        }
        if let Some(a) = &args.action {
            let mut out = json!({
                "name": t.name, "action": a, "description": action_doc(&t.input_schema, a),
                "annotations": t.annotations, "plugin": t.plugin,
                "hint": format!("call {} with {{\"action\": \"{a}\", …}} and the fields above; help with only {{\"tool\": \"{}\"}} shows every field", t.name, t.name),
            });
            let (schema, note) = action_schema(&t.name, &t.input_schema, a);
            out["input_schema"] = schema;
            if let Some(note) = note {
                out["note"] = json!(note);
            }
            return Ok(out);
        }
        let aliases: Vec<Value> = crate::compat::ACTIONS
            .iter()
            .filter(|(tool, ..)| *tool == t.name)
            .map(|(_, sent, tool, meant)| json!({"sent": sent, "meant": format!("{tool} {meant}")}))
            .collect();
        let mut out = json!({
            "name": t.name, "title": t.title, "description": t.description,
            "actions": acts, "input_schema": t.input_schema, "annotations": t.annotations,
            "plugin": t.plugin,
        });
        if !aliases.is_empty() {
            out["aliases"] = json!(aliases);
        }
        return Ok(out);
    }
    let words: Vec<String> = args
        .query
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    let mut matches = Vec::new();
    for t in tools {
        let acts = actions(&t.input_schema);
        let fields: Vec<&String> = t.input_schema["properties"]
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        let haystack = format!(
            "{} {} {} {} {:?}",
            t.name,
            t.title,
            t.description,
            acts.join(" "),
            fields
        )
        .to_lowercase();
        if words.iter().all(|w| haystack.contains(w.as_str())) {
            matches.push(json!({
                "tool": t.name, "title": t.title, "description": t.description, "actions": acts,
                "sandboxed": t.plugin.is_some(),
            }));
        }
    }
    let off: Vec<Value> = host
        .plugins
        .iter()
        .filter_map(|p| {
            let why = p.manifest.gated(host.shared.flags)?;
            Some(json!({"tools": p.tools.iter().map(|t| &t.name).collect::<Vec<_>>(), "why": why}))
        })
        .collect();
    let mut out = json!({
        "tools": matches,
        "hint": "call help with {\"tool\": NAME} for the exact input schema; every tool also takes timeout_ms and trace_id",
    });
    // Names of the tool infra replaces: the whole table when asked about them.
    if words
        .iter()
        .any(|w| w.contains("alias") || w.contains("compat") || w.starts_with("mcp_"))
    {
        out["compat"] = crate::compat::table();
    }
    // Tools that exist but are off are not listed; saying so spares an agent a search for them.
    if !off.is_empty() {
        out["off"] = json!(off);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tool listed the way the router lists a typed-action plugin.
    fn listed() -> Value {
        let mut s = json!({
            "type": "object",
            "properties": {"target": {"type": "string", "description": "Name of a target."}},
            "required": ["target"],
            "additionalProperties": false,
            "oneOf": [
                {"description": "Runs a command.", "type": "object",
                 "properties": {"action": {"const": "exec"}, "command": {"type": "string"}},
                 "required": ["action", "command"]},
                {"description": "Reads the journal.", "type": "object",
                 "properties": {"action": {"const": "logs"}, "unit": {"type": "string"}},
                 "required": ["action"]},
            ],
        });
        crate::schema::portable(&mut s);
        s
    }

    #[test]
    fn actions_and_their_fields_come_from_the_schema() {
        let s = listed();
        assert_eq!(actions(&s), ["exec", "logs"]);
        assert_eq!(
            action_doc(&s, "logs").as_deref(),
            Some("Reads the journal.")
        );
        let (n, note) = action_schema("ssh", &s, "logs");
        assert!(note.is_none());
        let keys: Vec<&String> = n["properties"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["action", "target", "unit"]);
        assert_eq!(n["required"], json!(["action", "target"]));
        assert_eq!(n["properties"]["action"]["const"], "logs");
        let (n, _) = action_schema("ssh", &s, "exec");
        assert_eq!(n["required"], json!(["action", "target", "command"]));
    }

    #[test]
    fn a_flat_schema_lists_its_actions_from_the_action_field() {
        let schema = json!({
            "type": "object",
            "properties": {
                "action": {"type": "string", "enum": ["exec", "logs"]},
                "command": {"type": "string", "description": "`exec`: the command line."},
            },
        });
        assert_eq!(actions(&schema), ["exec", "logs"]);
        let (whole, note) = action_schema("legacy", &schema, "logs");
        assert_eq!(whole, schema);
        assert!(note.unwrap().contains("whole schema"));
        let one_of = json!({"properties": {"action": {"oneOf": [
            {"const": "get", "description": "Reads one."},
            {"const": "put"},
        ]}}});
        assert_eq!(actions(&one_of), ["get", "put"]);
        assert_eq!(action_doc(&one_of, "get").as_deref(), Some("Reads one."));
    }
}
