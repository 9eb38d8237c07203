//! Host-side validation of tool arguments against the tool's input JSON Schema.
//!
//! The point is the error an agent gets back, not JSON Schema conformance: a general validator
//! answers "is not valid under any of the schemas" for an action-based tool, which an agent cannot
//! act on. This is a focused validator for the subset of JSON Schema that `schemars` 1.x emits for
//! tool arguments — `type` (incl. `["string", "null"]`), `properties`, `required`,
//! `additionalProperties` (bool or schema), `unevaluatedProperties: false`, `items`,
//! `prefixItems`, `enum`, `const`, `minimum`/`maximum` (and the exclusive forms),
//! `minLength`/`maxLength`, `minItems`/`maxItems`, `$ref` into `$defs`, `allOf`, and
//! `oneOf`/`anyOf`. Keywords outside that subset (`pattern`, `format`, …) are accepted
//! without a check: the plugin still deserializes its arguments and reports what it rejects.
//!
//! An internally tagged enum (`#[serde(tag = "action")]`) becomes a `oneOf` whose branches each
//! pin `action` with `const`. Such a union is resolved by its tag, not by trying every branch:
//! the branch whose `action` matches is merged with the enclosing object schema (common fields
//! such as `timeout_ms` live there when the enum is `#[serde(flatten)]`ed) and validated as one
//! object, so an unknown field is reported against the fields of *that* action.
//!
//! A typed-action schema as listed (one object with `x-actions`, see [`crate::schema::actions`])
//! is read back as that tagged union before it is checked.
//!
//! Measured against the alternatives on the `http` tool's typed arguments (issue 10): the
//! `jsonschema` crate answers a missing or unknown `action`, a wrong nested type or a typo'd field
//! with "is not valid under any of the schemas listed in the 'oneOf' keyword" or "Additional
//! properties are not allowed ('action' was unexpected)"; `serde_path_to_error` loses the path
//! inside a flattened tagged enum (`.`), accepts unknown fields there, and suggests nothing. This
//! validator names the field, the action and the fix in each case, so it stays.
//!
//! A `oneOf` is accepted when at least one branch matches (not exactly one): an ambiguous schema
//! is the tool author's bug, and an agent cannot fix it by changing its arguments.

mod suggest;
#[cfg(test)]
mod tests;
mod values;
mod walk;
mod words;

pub use suggest::did_you_mean;

use std::cell::Cell;
use std::fmt;

use serde_json::Value;

use walk::Validator;
use words::describe_value;

/// Why a tool's arguments were refused, in words an agent can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError {
    /// Where the problem is: a dotted path such as `headers.Accept` or `steps[2].tool`, `action`
    /// for the discriminator, and empty for the arguments object as a whole.
    pub field: String,
    /// What is wrong, naming the field, ending with what to do about it.
    pub message: String,
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The message already names the field; repeating it would read badly.
        f.write_str(&self.message)
    }
}

impl std::error::Error for ArgError {}

/// Validates `args` for `tool` against the tool's input `schema`.
///
/// Returns the first problem found, in this order: the arguments' shape, the action
/// (discriminator), unknown fields, missing required fields, then each field's value.
pub fn validate_args(tool: &str, schema: &Value, args: &Value) -> Result<(), ArgError> {
    // MCP arguments are always an object; saying so beats "matches none of the actions".
    if !args.is_object() {
        return Err(ArgError {
            field: String::new(),
            message: format!(
                "the arguments for `{tool}` must be a JSON object, got {}; send named fields, \
                 e.g. {{\"action\": ...}} (see `help` for tool `{tool}`).",
                describe_value(args)
            ),
        });
    }
    // A listed typed-action schema is checked as the union it was listed from, so that each
    // action is held to its own fields. Arguments naming an action are first checked against
    // that action's branch alone — a valid call (the common case) never builds the whole union;
    // only a failing one is checked again against the union, for its messages.
    use crate::schema::actions;
    if let Some(action) = args.get("action").and_then(Value::as_str)
        && let Some(branch) = actions::for_action(schema, action)
        && check(tool, &branch, args).is_ok()
    {
        return Ok(());
    }
    let tagged = actions::tagged(schema);
    check(tool, tagged.as_ref().unwrap_or(schema), args)
}

/// Checks `args` against `schema`, its own root.
fn check(tool: &str, schema: &Value, args: &Value) -> Result<(), ArgError> {
    let validator = Validator {
        tool,
        root: schema,
        depth: Cell::new(0),
    };
    validator.check(schema, args, "")
}

/// Rewrites the argument names agents send to the tool infra replaces into infra's names:
/// `cmd` → `command` and `timeout_s` (seconds) → `timeout_ms` (milliseconds).
///
/// A rename happens only when the target key is absent, so an explicit `command` or
/// `timeout_ms` always wins (the leftover alias is then reported as an unknown field).
/// A `timeout_s` that is not a non-negative number (or a string holding one) is left alone
/// for validation to report.
pub fn apply_aliases(args: &mut Value) {
    let Value::Object(map) = args else {
        return;
    };
    if !map.contains_key("command")
        && let Some(command) = map.remove("cmd")
    {
        map.insert("command".to_owned(), command);
    }
    if !map.contains_key("timeout_ms")
        && let Some(millis) = map.get("timeout_s").and_then(seconds_to_millis)
    {
        map.remove("timeout_s");
        map.insert("timeout_ms".to_owned(), Value::from(millis));
    }
}

/// `timeout_s` as milliseconds, when it is a finite, non-negative number of seconds.
fn seconds_to_millis(seconds: &Value) -> Option<u64> {
    let seconds = match seconds {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    let millis = (seconds * 1000.0).round();
    // `as` saturates; the bound check keeps absurd values from turning into u64::MAX silently.
    (seconds.is_finite() && seconds >= 0.0 && millis <= u64::MAX as f64).then_some(millis as u64)
}
