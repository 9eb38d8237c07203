//! `help`: find tools, actions and fields by words; the exact schema of one tool.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::HostView;
use crate::failure::Failure;
use crate::schema::actions as typed_actions;

pub const DESCRIPTION: &str = "Start here. Without arguments: every tool with its actions. \
`query`: tools, actions and fields matching the words. `tool` (and `action`): the exact input \
schema to call it with.";

/// Arguments of `help`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Words to search for in tool names, descriptions, actions and fields.
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
/// plain `action` field.
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

/// Whether a field documented as `` `a`/`b`: … `` applies to `action`: the fallback for a flat
/// schema without `x-actions` (the ssh and psql plugins until their actions are typed, and
/// third-party plugins written that way). The names before the first colon, `sftp_*` globs
/// allowed; a field whose description names no action before a colon applies to every action.
fn applies(description: &str, action: &str, all: &[String]) -> bool {
    let Some((prefix, _)) = description.split_once(':') else {
        return true;
    };
    let matches = |pattern: &str, a: &str| match pattern.strip_suffix('*') {
        Some(stem) => a.starts_with(stem),
        None => pattern == a,
    };
    let named: Vec<&str> = prefix
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|p| all.iter().any(|a| matches(p, a)))
        .collect();
    named.is_empty() || named.iter().any(|p| matches(p, action))
}

/// `schema` narrowed to the fields of `action`: as the schema itself lists them (`x-actions`),
/// else by the fields' descriptions (see [`applies`]).
fn for_action(schema: &Value, action: &str, all: &[String]) -> Value {
    if let Some(narrowed) = typed_actions::for_action(schema, action) {
        return narrowed;
    }
    let mut narrowed = schema.clone();
    let Some(props) = schema["properties"].as_object() else {
        return narrowed;
    };
    let kept: serde_json::Map<String, Value> = props
        .iter()
        .filter(|(name, field)| {
            name.as_str() == "action"
                || applies(field["description"].as_str().unwrap_or(""), action, all)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(req) = narrowed["required"].as_array_mut() {
        req.retain(|r| r.as_str().is_some_and(|r| kept.contains_key(r)));
    }
    narrowed["properties"] = Value::Object(kept);
    narrowed["properties"]["action"] = json!({"const": action});
    narrowed
}

pub fn run(host: &HostView<'_>, args: Args) -> Result<Value, Failure> {
    let tools = host.tools;
    if let Some(name) = &args.tool {
        let name = crate::validate::tool_alias(name);
        let Some(t) = tools.iter().find(|t| t.name == name) else {
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
            return Ok(json!({
                "name": t.name, "action": a, "description": action_doc(&t.input_schema, a),
                "input_schema": for_action(&t.input_schema, a, &acts),
                "annotations": t.annotations, "plugin": t.plugin,
                "hint": format!("call {} with {{\"action\": \"{a}\", …}} and the fields above; help with only {{\"tool\": \"{}\"}} shows every field", t.name, t.name),
            }));
        }
        return Ok(json!({
            "name": t.name, "title": t.title, "description": t.description,
            "actions": acts, "input_schema": t.input_schema, "annotations": t.annotations,
            "plugin": t.plugin,
        }));
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
    Ok(json!({
        "tools": matches,
        "hint": "call help with {\"tool\": NAME} for the exact input schema; every tool also takes timeout_ms and trace_id",
    }))
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
        let n = for_action(&s, "logs", &[]);
        let keys: Vec<&String> = n["properties"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["action", "target", "unit"]);
        assert_eq!(n["required"], json!(["action", "target"]));
        assert_eq!(n["properties"]["action"]["const"], "logs");
        let n = for_action(&s, "exec", &[]);
        assert_eq!(n["required"], json!(["action", "target", "command"]));
    }

    fn acts() -> Vec<String> {
        [
            "exec",
            "batch",
            "sftp_list",
            "sftp_upload",
            "deploy_file",
            "logs",
            "container_logs",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn a_field_applies_to_the_actions_its_description_names() {
        let all = acts();
        assert!(applies(
            "`exec`/`batch`: standard input as text.",
            "batch",
            &all
        ));
        assert!(!applies(
            "`exec`/`batch`: standard input as text.",
            "logs",
            &all
        ));
        assert!(applies(
            "`sftp_*`/`deploy_file`: the remote path.",
            "sftp_list",
            &all
        ));
        assert!(!applies(
            "`sftp_*`/`deploy_file`: the remote path.",
            "exec",
            &all
        ));
        assert!(applies("`container_logs`, `logs`: lines.", "logs", &all));
        // No action named before a colon: every action.
        assert!(applies("Name of a `targets.json` entry.", "logs", &all));
        assert!(applies("Filter: `{\"col\": value}`", "exec", &all));
        assert!(applies("`mode` as permission bits.", "exec", &all));
    }

    #[test]
    fn a_flat_schema_is_narrowed_to_one_action() {
        let schema = json!({
            "type": "object",
            "properties": {
                "action": {"type": "string", "enum": ["exec", "logs"]},
                "target": {"type": "string", "description": "Name of a target."},
                "command": {"type": "string", "description": "`exec`: the command line."},
                "unit": {"type": "string", "description": "`logs`: the systemd unit."},
            },
            "required": ["action", "target", "command"],
        });
        let all = ["exec".to_string(), "logs".to_string()];
        let n = for_action(&schema, "logs", &all);
        let keys: Vec<&String> = n["properties"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["action", "target", "unit"]);
        assert_eq!(n["required"], json!(["action", "target"]));
        assert_eq!(n["properties"]["action"], json!({"const": "logs"}));
    }
}
