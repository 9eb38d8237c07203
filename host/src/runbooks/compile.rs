//! `compile`: a runbook checked without running anything — each step's tool, action and fields
//! against the tool's schema, every template against the inputs and the steps before it, the
//! shape of every condition. Each problem names the step and the field, and says the fix.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::condition;
use super::model::Runbook;
use super::template::{self, Ref};
use crate::schema::actions;
use crate::tool::ToolSpec;
use crate::validate;

/// One problem of a runbook.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// The step's id (absent for the runbook as a whole).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Where: `tool`, `args.path`, `when`, `inputs.x`, …
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
}

fn problem(step: Option<&str>, field: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        step: step.map(str::to_string),
        field: field.into(),
        message: message.into(),
    }
}

/// What a template may name at one place of a step.
struct Allowed<'a> {
    inputs: &'a BTreeSet<String>,
    earlier: &'a BTreeSet<String>,
    item: bool,
    result: bool,
}

fn check_refs(step: &str, field: &str, v: &Value, ok: &Allowed, out: &mut Vec<Problem>) {
    let refs = match template::refs(v) {
        Ok(r) => r,
        Err(e) => {
            out.push(problem(Some(step), field, e.to_string()));
            return;
        }
    };
    for r in refs {
        if let Some(m) = bad_ref(&r, ok) {
            out.push(problem(
                Some(step),
                field,
                format!("`{{{{ {} }}}}`: {m}", r.path),
            ));
        }
    }
}

fn bad_ref(r: &Ref, ok: &Allowed) -> Option<String> {
    match r.root() {
        "input" => match r.name() {
            Some(n) if ok.inputs.contains(n) => None,
            Some(n) => Some(format!(
                "no input `{n}`; declare it in `inputs` (declared: {})",
                list(ok.inputs)
            )),
            None => Some("name an input: `input.<name>`".into()),
        },
        "steps" => match r.name() {
            Some(n) if ok.earlier.contains(n) => None,
            Some(n) => Some(format!(
                "no earlier step `{n}`; a step can name the steps before it ({})",
                list(ok.earlier)
            )),
            None => Some("name a step: `steps.<id>.<path>`".into()),
        },
        "state" if r.name().is_some() => None,
        "trace_id" if r.path == "trace_id" => None,
        "item" if ok.item => None,
        "item" => Some("`item` exists only in a step with `foreach`".into()),
        "result" if ok.result => None,
        "result" => Some("`result` exists only in `retry.until`".into()),
        other => Some(format!(
            "`{other}` is not something a template can name; use input, steps, state, item, \
             result or trace_id"
        )),
    }
}

fn list(s: &BTreeSet<String>) -> String {
    match s.is_empty() {
        true => "none".into(),
        false => s.iter().cloned().collect::<Vec<_>>().join(", "),
    }
}

/// A value of the schema's type for a templated field, so that the rest of the arguments can be
/// validated: the value is unknown until the run, its name and presence are not.
fn placeholder(prop: Option<&Value>) -> Value {
    let Some(p) = prop else {
        return Value::String("x".into());
    };
    if let Some(e) = p
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return e.clone();
    }
    if let Some(c) = p.get("const") {
        return c.clone();
    }
    let kinds: Vec<&str> = match p.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if kinds.contains(&"null") {
        return Value::Null;
    }
    match kinds.first().copied() {
        Some("integer") | Some("number") => p.get("minimum").cloned().unwrap_or_else(|| json!(1)),
        Some("boolean") => json!(false),
        Some("array") => json!([]),
        Some("object") => json!({}),
        _ => Value::String("x".into()),
    }
}

fn has_template(v: &Value) -> bool {
    template::refs(v).is_ok_and(|r| !r.is_empty())
}

/// The step's arguments with each templated top-level field replaced by a placeholder of its
/// type, and the names of those fields.
fn probe(spec: &ToolSpec, args: &Map<String, Value>) -> (Value, BTreeSet<String>) {
    let action = args.get("action").and_then(Value::as_str);
    let branch = action.and_then(|a| actions::for_action(&spec.input_schema, a));
    let props = branch
        .as_ref()
        .and_then(|b| b.get("properties"))
        .or_else(|| spec.input_schema.get("properties"));
    let mut out = Map::new();
    let mut templated = BTreeSet::new();
    for (k, v) in args {
        if has_template(v) {
            templated.insert(k.clone());
            out.insert(k.clone(), placeholder(props.and_then(|p| p.get(k))));
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    (Value::Object(out), templated)
}

/// Most steps one runbook has: an agent writing runbooks cannot make one without end.
pub const MAX_STEPS: usize = 100;

/// Every problem of `rb` against the listed `tools`.
pub fn compile(rb: &Runbook, tools: &[ToolSpec]) -> Vec<Problem> {
    let mut out = Vec::new();
    if rb.description.trim().is_empty() {
        out.push(problem(
            None,
            "description",
            "empty: say what the runbook does",
        ));
    }
    if rb.steps.is_empty() {
        out.push(problem(None, "steps", "no steps: add at least one"));
    }
    if rb.steps.len() > MAX_STEPS {
        out.push(problem(
            None,
            "steps",
            format!(
                "{} steps, more than {MAX_STEPS}: split it into runbooks that a step runs",
                rb.steps.len()
            ),
        ));
    }
    let inputs: BTreeSet<String> = rb.inputs.all().into_keys().collect();
    for (n, i) in rb.inputs.all() {
        if let Some(k) = &i.kind
            && !["string", "number", "integer", "boolean", "array", "object"].contains(&k.as_str())
        {
            out.push(problem(
                None,
                format!("inputs.{n}.type"),
                format!("`{k}`: use string, number, integer, boolean, array or object"),
            ));
        }
    }
    let mut earlier = BTreeSet::new();
    for s in &rb.steps {
        let id = s.id.as_str();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
        {
            out.push(problem(
                Some(id),
                "id",
                "use letters, digits, `_` and `-` (templates name it as `steps.<id>`)",
            ));
        }
        if earlier.contains(id) {
            out.push(problem(
                Some(id),
                "id",
                "used by an earlier step: give each step its own id",
            ));
        }
        let ok = Allowed {
            inputs: &inputs,
            earlier: &earlier,
            item: s.foreach.is_some(),
            result: false,
        };
        let args = Value::Object(s.args.clone());
        check_refs(id, "args", &args, &ok, &mut out);
        for (field, c) in [("when", &s.when)] {
            if let Some(c) = c {
                if let Err(m) = condition::check(c) {
                    out.push(problem(Some(id), field, m));
                }
                check_refs(id, field, c, &ok, &mut out);
            }
        }
        if let Some(f) = &s.foreach {
            let no_item = Allowed { item: false, ..ok };
            check_refs(id, "foreach", f, &no_item, &mut out);
            if !(f.is_array() || f.is_string()) {
                out.push(problem(
                    Some(id),
                    "foreach",
                    "give a list, or a template naming one (e.g. `{{ steps.list.items }}`)",
                ));
            }
        }
        if let Some(r) = &s.retry {
            for (field, v) in [
                ("retry.max_attempts", &r.max_attempts),
                ("retry.delay_ms", &r.delay_ms),
            ] {
                if let Some(v) = v {
                    match v {
                        Value::Number(n) if n.as_u64().is_some() => {}
                        Value::String(_) => check_refs(id, field, v, &ok, &mut out),
                        _ => out.push(problem(
                            Some(id),
                            field,
                            "a whole number, or a template naming one",
                        )),
                    }
                }
            }
            if let Some(u) = &r.until {
                if let Err(m) = condition::check(u) {
                    out.push(problem(Some(id), "retry.until", m));
                }
                let with_result = Allowed {
                    result: true,
                    inputs: &inputs,
                    earlier: &earlier,
                    item: s.foreach.is_some(),
                };
                check_refs(id, "retry.until", u, &with_result, &mut out);
            }
        }
        // The step as the router will see it: names of the tool infra replaces resolved.
        let mut resolved = Value::Object(s.args.clone());
        let tool = match crate::compat::resolve(&s.tool, &mut resolved) {
            Ok((t, _)) => t,
            Err(d) => {
                out.push(problem(Some(id), "tool", d.to_string()));
                earlier.insert(id.to_string());
                continue;
            }
        };
        match tools.iter().find(|t| t.name == tool) {
            None => {
                let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
                let hint = validate::did_you_mean(&s.tool, names.iter().copied())
                    .map(|n| format!("did you mean `{n}`? "))
                    .unwrap_or_default();
                out.push(problem(
                    Some(id),
                    "tool",
                    format!("no tool `{}`; {hint}tools: {}", s.tool, names.join(", ")),
                ));
            }
            Some(spec) => {
                let args = resolved.as_object().cloned().unwrap_or_default();
                let (probe, templated) = probe(spec, &args);
                if let Err(e) = validate::validate_args(&spec.name, &spec.input_schema, &probe) {
                    let top = e.field.split(['.', '[']).next().unwrap_or_default();
                    if !templated.contains(top) {
                        out.push(problem(
                            Some(id),
                            format!("args.{}", e.field)
                                .trim_end_matches('.')
                                .to_string(),
                            e.message,
                        ));
                    }
                }
            }
        }
        earlier.insert(id.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbooks::model::Runbook;

    fn spec() -> Vec<ToolSpec> {
        crate::host_tools::specs(crate::flags::Flags::SAFE)
    }

    #[test]
    fn a_sound_runbook_has_no_problem_and_a_broken_one_names_each_step_and_field() {
        let good: Runbook = serde_json::from_value(json!({
        "description": "d", "inputs": {"key": {"required": true, "type": "string"}},
        "steps": [
            {"id": "a", "tool": "state", "args": {"action": "get", "key": "{{ input.key }}"}},
            {"id": "b", "tool": "state", "foreach": "{{ steps.a.value }}",
             "args": {"action": "set", "key": "k", "value": "{{ item }}"},
             "retry": {"max_attempts": 2, "until": {"path": "result.ok", "equals": true}}}
        ]}))
        .unwrap();
        assert_eq!(compile(&good, &spec()), vec![]);
        let bad: Runbook = serde_json::from_value(json!({
            "description": "d", "inputs": ["key"],
            "steps": [
                {"id": "a", "tool": "stat", "args": {"action": "get"}},
                {"id": "b", "tool": "state", "args": {"action": "gett", "key": "k"}},
                {"id": "c", "tool": "state", "args": {"action": "get", "key": "{{ input.nope }}", "extra": 1}},
                {"id": "d", "tool": "state", "args": {"action": "get", "key": "{{ steps.e.x }}"},
                 "when": {"path": "input.key", "equal": 1}},
                {"id": "e", "tool": "state", "args": {"action": "get", "key": "{{ item }}"}}
            ]})).unwrap();
        let p = compile(&bad, &spec());
        let at = |step: &str, field: &str| {
            p.iter()
                .find(|x| x.step.as_deref() == Some(step) && x.field.starts_with(field))
                .unwrap_or_else(|| panic!("no problem at {step}.{field}: {p:#?}"))
                .message
                .clone()
        };
        assert!(at("a", "tool").contains("did you mean `state`"));
        assert!(at("b", "args").contains("gett"));
        assert!(at("c", "args").contains("input `nope`") || at("c", "args").contains("extra"));
        assert!(
            p.iter()
                .any(|x| x.step.as_deref() == Some("c") && x.message.contains("extra"))
        );
        assert!(at("d", "args").contains("no earlier step `e`"));
        assert!(at("d", "when").contains("unknown test"));
        assert!(at("e", "args").contains("foreach"));
    }
}
