//! A runbook as written in JSON (the shape of the tool infra replaces): `description`, `tags`,
//! `inputs`, `steps[]` with `id`, `tool`, `args`, `when`, `foreach`, `retry`,
//! `continue_on_error`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One runbook.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    /// What it does, in one line.
    pub description: String,
    /// Words to find it by (`read`, `write`, `gitops`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// What a run takes.
    #[serde(default)]
    pub inputs: Inputs,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// The inputs: names only (each optional), or each with its rules.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Inputs {
    /// `["repo_path", "apply"]`.
    Names(Vec<String>),
    /// `{"repo_path": {"required": true, "type": "string"}}`.
    Typed(BTreeMap<String, Input>),
}

impl Default for Inputs {
    fn default() -> Self {
        Inputs::Names(Vec::new())
    }
}

impl Inputs {
    /// Every input with its rules (names only: optional, untyped).
    pub fn all(&self) -> BTreeMap<String, Input> {
        match self {
            Inputs::Names(n) => n.iter().map(|k| (k.clone(), Input::default())).collect(),
            Inputs::Typed(m) => m.clone(),
        }
    }
}

/// One input's rules.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// A run must give it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// Used when a run does not give it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// `string`, `number`, `integer`, `boolean`, `array` or `object`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// What it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One step: an ordinary tool call.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Unique in the runbook; later steps name its output `steps.<id>`.
    pub id: String,
    /// The tool (aliases of the tool infra replaces are accepted).
    pub tool: String,
    /// The tool's arguments, with templates.
    #[serde(default)]
    pub args: Map<String, Value>,
    /// Runs only when this condition holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Value>,
    /// Runs once per element of this list (a template naming one, or a literal list); `{{ item }}`
    /// is the element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreach: Option<Value>,
    /// Tries again until `until` holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// A failure of this step does not stop the run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continue_on_error: bool,
    /// What the step is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// How a step is retried.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Tries in all (default 3, at most 100); a number or a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<Value>,
    /// Wait between tries in ms (default 1000, at most 600000); a number or a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<Value>,
    /// Done when this holds (`result` is the step's answer); without it, when the call succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Value>,
}
