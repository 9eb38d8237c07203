//! MCP prompts: the runbooks, each a prompt whose arguments are the runbook's inputs and whose
//! message asks the agent to run it with the `runbook` tool.
//!
//! Listing and reading go through `runbook list` / `runbook get` calls on the [`Dispatch`], so
//! they are audited like any other call. Nothing runs here: the prompt only words the call; the
//! agent makes it (and a write still needs `apply: true` among the inputs).

use rmcp::model::{
    ErrorData, GetPromptResult, JsonObject, Prompt, PromptArgument, PromptMessage, Role,
};
use serde_json::{Map, Value, json};

use super::{ToolError, call_as_front};
use crate::tool::Dispatch;

/// Every runbook as a prompt, in name order.
pub async fn list<D: Dispatch>(dispatch: &D) -> Result<Vec<Prompt>, ErrorData> {
    let out = call_as_front(dispatch, "runbook", json!({"action": "list"}))
        .await
        .map_err(ToolError::into_prompt_error)?;
    let runbooks = out["runbooks"].as_array().cloned().unwrap_or_default();
    Ok(runbooks.iter().filter_map(to_prompt).collect())
}

/// One `runbook list` item as a prompt.
fn to_prompt(item: &Value) -> Option<Prompt> {
    let name = item["name"].as_str()?;
    let mut description = item["description"].as_str().unwrap_or_default().to_owned();
    if item["source"].as_str().is_some_and(|s| s != "builtin") {
        // The user's own runbooks.json, not infra's: say so where the user picks it.
        description.push_str(" (from your runbooks.json)");
    }
    let rules = item["input_rules"].as_object().cloned().unwrap_or_default();
    let arguments = rules
        .iter()
        .map(|(input, rule)| to_argument(input, rule))
        .collect();
    Some(Prompt::new(name, Some(description), Some(arguments)))
}

/// One runbook input as a prompt argument: its description, with its type and default.
fn to_argument(name: &str, rule: &Value) -> PromptArgument {
    let mut text = rule["description"].as_str().unwrap_or_default().to_owned();
    let mut notes = Vec::new();
    if let Some(kind) = rule["type"].as_str() {
        notes.push(match kind {
            "string" => "text".to_owned(),
            "array" | "object" => format!("{kind}, as JSON"),
            other => other.to_owned(),
        });
    }
    if let Some(default) = rule.get("default") {
        notes.push(format!("default {default}"));
    }
    if !notes.is_empty() {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&format!("({})", notes.join("; ")));
    }
    let required = rule["required"] == json!(true);
    let mut argument = PromptArgument::new(name).with_required(required);
    if !text.is_empty() {
        argument = argument.with_description(text);
    }
    argument
}

/// The prompt for runbook `name`: a user message asking for a `runbook run` call with the
/// arguments as inputs, typed as the runbook declares them.
pub async fn get<D: Dispatch>(
    dispatch: &D,
    name: &str,
    arguments: Option<JsonObject>,
) -> Result<GetPromptResult, ErrorData> {
    let out = call_as_front(dispatch, "runbook", json!({"action": "get", "name": name}))
        .await
        .map_err(ToolError::into_prompt_error)?;
    let runbook = &out["runbook"];
    let rules = input_rules(&runbook["inputs"]);
    let inputs = typed_inputs(name, &rules, arguments.unwrap_or_default())?;
    let description = runbook["description"].as_str().unwrap_or_default();
    let call = json!({"action": "run", "name": name, "inputs": inputs});
    let call = serde_json::to_string_pretty(&call).unwrap_or_default();
    let text = format!(
        "Run the runbook `{name}`: {description}\n\nCall the `runbook` tool with these \
         arguments:\n\n```json\n{call}\n```\n\nThen report what each step returned; if a step \
         failed, say which one and what its error advises."
    );
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
            .with_description(description),
    )
}

/// A runbook's `inputs` (names only, or each with its rules) as rules by name.
fn input_rules(inputs: &Value) -> Map<String, Value> {
    match inputs {
        Value::Object(rules) => rules.clone(),
        Value::Array(names) => names
            .iter()
            .filter_map(Value::as_str)
            .map(|n| (n.to_owned(), json!({})))
            .collect(),
        _ => Map::new(),
    }
}

/// The prompt's string arguments as the runbook's inputs: JSON where the input is typed as a
/// number, integer, boolean, array or object; an empty string is an input not given.
fn typed_inputs(
    runbook: &str,
    rules: &Map<String, Value>,
    arguments: JsonObject,
) -> Result<Map<String, Value>, ErrorData> {
    let mut inputs = Map::new();
    for (key, value) in arguments {
        let Some(rule) = rules.get(&key) else {
            let known: Vec<&str> = rules.keys().map(String::as_str).collect();
            return Err(ErrorData::invalid_params(
                format!(
                    "arguments.{key}: runbook `{runbook}` has no input `{key}`; its inputs are \
                     [{}] (prompts/list shows them)",
                    known.join(", ")
                ),
                None,
            ));
        };
        let text = match value {
            Value::String(text) => text,
            // A client that already sends typed values: keep them as they are.
            other => {
                inputs.insert(key, other);
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        let kind = rule["type"].as_str().unwrap_or("string");
        let value = match kind {
            "number" | "integer" | "boolean" | "array" | "object" => {
                let parsed: Value = serde_json::from_str(&text).map_err(|_| {
                    ErrorData::invalid_params(
                        format!(
                            "arguments.{key}: `{text}` is not a JSON {kind}; give e.g. {}",
                            example(kind)
                        ),
                        None,
                    )
                })?;
                parsed
            }
            _ => Value::String(text),
        };
        inputs.insert(key, value);
    }
    let missing: Vec<&str> = rules
        .iter()
        .filter(|(k, r)| r["required"] == json!(true) && !inputs.contains_key(*k))
        .map(|(k, _)| k.as_str())
        .collect();
    if let Some(first) = missing.first() {
        return Err(ErrorData::invalid_params(
            format!(
                "arguments.{first}: runbook `{runbook}` requires [{}]; fill them in",
                missing.join(", ")
            ),
            None,
        ));
    }
    Ok(inputs)
}

/// An example value of a JSON type, for advice.
fn example(kind: &str) -> &'static str {
    match kind {
        "integer" => "5",
        "number" => "2.5",
        "boolean" => "true or false",
        "array" => "[\"a\", \"b\"]",
        _ => "{\"key\": \"value\"}",
    }
}

impl ToolError {
    /// As an MCP error: an unknown runbook is invalid params (the MCP spec's code for an
    /// unknown prompt), keeping the tool's advice.
    fn into_prompt_error(self) -> ErrorData {
        let message = format!("{} (via the runbook tool)", self.message);
        match self.kind.as_str() {
            "invalid" | "not-found" => ErrorData::invalid_params(message, None),
            _ => ErrorData::internal_error(message, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Map<String, Value> {
        json!({
            "root": {"type": "string", "default": "workspace"},
            "commits": {"type": "integer", "default": 5},
            "names": {"type": "array", "required": true},
            "loose": {},
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    fn args(v: Value) -> JsonObject {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn strings_become_the_types_the_runbook_declares() {
        let inputs = typed_inputs(
            "rb",
            &rules(),
            args(json!({"root": "work", "commits": "3", "names": "[\"a\"]", "loose": "7"})),
        )
        .unwrap();
        assert_eq!(
            Value::Object(inputs),
            json!({"root": "work", "commits": 3, "names": ["a"], "loose": "7"})
        );
    }

    #[test]
    fn bad_arguments_name_the_field_and_the_fix() {
        for (given, says) in [
            (
                json!({"names": "[]", "commits": "five"}),
                "arguments.commits: `five` is not a JSON integer; give e.g. 5",
            ),
            (
                json!({"names": "[]", "comits": "5"}),
                "arguments.comits: runbook `rb` has no input `comits`",
            ),
            (
                json!({"commits": "5"}),
                "arguments.names: runbook `rb` requires [names]",
            ),
            (
                json!({"names": ""}),
                "arguments.names: runbook `rb` requires [names]",
            ),
        ] {
            let e = typed_inputs("rb", &rules(), args(given.clone())).unwrap_err();
            assert!(e.message.contains(says), "{given}: {}", e.message);
        }
    }
}
