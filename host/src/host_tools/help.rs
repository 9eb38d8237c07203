//! `help`: find tools, actions and fields by words; the exact schema of one tool.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::router::{Failure, Router};
use crate::tool::Dispatch;

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
    /// With `tool`: only the fields that apply to this action.
    pub action: Option<String>,
}

/// The values of the `action` field of a schema, if it has one.
fn actions(schema: &Value) -> Vec<String> {
    let field = &schema["properties"]["action"];
    let from_enum = |v: &Value| -> Vec<String> {
        v["enum"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut found = from_enum(field);
    if found.is_empty()
        && let Some(r) = field["$ref"].as_str()
    {
        let name = r.rsplit('/').next().unwrap_or_default();
        let def = &schema["$defs"][name];
        found = from_enum(def);
        if found.is_empty() {
            found = def["oneOf"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|b| {
                    b["const"]
                        .as_str()
                        .or(b["enum"][0].as_str())
                        .map(String::from)
                })
                .collect();
        }
    }
    found
}

pub fn run(router: &Router, args: Args) -> Result<Value, Failure> {
    let tools = router.tools();
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
    for t in &tools {
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
