//! Templates in runbook steps: `{{ input.x }}`, `{{ steps.<id>.<path> }}`, `{{ state.<key> }}`,
//! `{{ item }}` (inside `foreach`), `{{ result.<path> }}` (inside `retry.until`) and
//! `{{ trace_id }}`. A string that is one whole template keeps the JSON type of what it names;
//! inside a longer string the value is written as text. `{{ ?ref }}` is optional: missing, a
//! whole-template field is left out of its object, and inside text it is empty.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// What templates can name while a step runs.
#[derive(Debug, Default, Clone)]
pub struct Scope {
    /// The run's inputs, defaults applied.
    pub input: Map<String, Value>,
    /// Each finished step's output, by id.
    pub steps: Map<String, Value>,
    /// The `state` tool's values (session over persistent).
    pub state: BTreeMap<String, Value>,
    /// The current `foreach` item.
    pub item: Option<Value>,
    /// The step's output, while `retry.until` is evaluated.
    pub result: Option<Value>,
    /// The run's trace id.
    pub trace_id: String,
}

/// A reference inside `{{ }}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    /// `input.x`, `steps.a.b.0`, … as written (without `?`).
    pub path: String,
    /// Written `{{ ?… }}`.
    pub optional: bool,
}

impl Ref {
    /// The first segment: `input`, `steps`, `state`, `item`, `result`, `trace_id`.
    pub fn root(&self) -> &str {
        self.path.split('.').next().unwrap_or_default()
    }

    /// The second segment (an input name, a step id), if any.
    pub fn name(&self) -> Option<&str> {
        self.path.split('.').nth(1)
    }
}

/// A template that does not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{` without `}}`, or an empty reference.
    #[error("{0}")]
    Syntax(String),
    /// A reference to nothing (not optional).
    #[error("`{{{{ {0} }}}}` names nothing: {1}")]
    Missing(String, String),
}

/// The parts of a string: text and references, in order.
pub fn parse(s: &str) -> Result<Vec<Result<String, Ref>>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            out.push(Ok(rest[..open].to_string()));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(TemplateError::Syntax(format!(
                "`{{{{` without `}}}}` in {s:?}: close the template, e.g. `{{{{ input.name }}}}`"
            )));
        };
        let inner = after[..close].trim();
        let (optional, path) = match inner.strip_prefix('?') {
            Some(p) => (true, p.trim()),
            None => (false, inner),
        };
        if path.is_empty() || path.contains(char::is_whitespace) {
            return Err(TemplateError::Syntax(format!(
                "`{{{{ {inner} }}}}` in {s:?} is not a reference: write `input.<name>`, \
                 `steps.<id>.<path>`, `state.<key>`, `item` or `trace_id`"
            )));
        }
        out.push(Err(Ref {
            path: path.to_string(),
            optional,
        }));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        out.push(Ok(rest.to_string()));
    }
    Ok(out)
}

/// Every reference in `v` (strings anywhere inside it).
pub fn refs(v: &Value) -> Result<Vec<Ref>, TemplateError> {
    let mut out = Vec::new();
    walk_refs(v, &mut out)?;
    Ok(out)
}

fn walk_refs(v: &Value, out: &mut Vec<Ref>) -> Result<(), TemplateError> {
    match v {
        Value::String(s) => {
            for p in parse(s)? {
                if let Err(r) = p {
                    out.push(r);
                }
            }
        }
        Value::Array(a) => {
            for x in a {
                walk_refs(x, out)?;
            }
        }
        Value::Object(m) => {
            for x in m.values() {
                walk_refs(x, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// One step of a path into a JSON value: an object key or an array index.
fn step_into<'a>(v: &'a Value, seg: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m.get(seg),
        // `-1` is the last element, as in the tool infra replaces' templates.
        Value::Array(a) => match seg.parse::<i64>().ok()? {
            i if i >= 0 => a.get(i as usize),
            i => a
                .len()
                .checked_sub(i.unsigned_abs() as usize)
                .and_then(|j| a.get(j)),
        },
        _ => None,
    }
}

fn walk<'a>(mut v: &'a Value, segs: &[&str]) -> Option<&'a Value> {
    for s in segs {
        v = step_into(v, s)?;
    }
    Some(v)
}

/// The value `path` names, or why not.
pub fn lookup(scope: &Scope, path: &str) -> Result<Value, String> {
    let segs: Vec<&str> = path.split('.').collect();
    let found = match segs[0] {
        "trace_id" if segs.len() == 1 => Some(Value::String(scope.trace_id.clone())),
        "input" => segs
            .get(1)
            .and_then(|n| scope.input.get(*n))
            .and_then(|v| walk(v, &segs[2..]))
            .cloned(),
        "steps" => {
            let Some(id) = segs.get(1) else {
                return Err("name a step: `steps.<id>.<path>`".into());
            };
            let Some(out) = scope.steps.get(*id) else {
                return Err(format!("step `{id}` has not run (yet, or was skipped)"));
            };
            walk(out, &segs[2..]).cloned()
        }
        "item" => scope
            .item
            .as_ref()
            .and_then(|v| walk(v, &segs[1..]))
            .cloned(),
        "result" => scope
            .result
            .as_ref()
            .and_then(|v| walk(v, &segs[1..]))
            .cloned(),
        "state" => {
            // State keys contain dots (`gitops.plan.shop`): the longest key that is a prefix of
            // the rest of the path wins, and the remainder walks into its value.
            let rest = &path["state.".len().min(path.len())..];
            let mut best: Option<(&String, &Value)> = None;
            for (k, v) in &scope.state {
                let fits = rest == k || rest.starts_with(&format!("{k}."));
                if fits && best.is_none_or(|(b, _)| k.len() > b.len()) {
                    best = Some((k, v));
                }
            }
            best.and_then(|(k, v)| {
                let more: Vec<&str> = match rest.len() > k.len() {
                    true => rest[k.len() + 1..].split('.').collect(),
                    false => Vec::new(),
                };
                walk(v, &more).cloned()
            })
        }
        other => {
            return Err(format!(
                "`{other}` is not something a template can name; use input, steps, state, item, \
                 result or trace_id"
            ));
        }
    };
    found.ok_or_else(|| "no such value".to_string())
}

/// Text of a value inside a longer string: strings as they are, the rest as JSON.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Renders a string: `Ok(None)` when it is one optional template that names nothing (the field
/// is then left out).
pub fn render_str(s: &str, scope: &Scope) -> Result<Option<Value>, TemplateError> {
    let parts = parse(s)?;
    if let [Err(r)] = parts.as_slice() {
        return match lookup(scope, &r.path) {
            Ok(v) => Ok(Some(v)),
            Err(_) if r.optional => Ok(None),
            Err(why) => Err(TemplateError::Missing(r.path.clone(), why)),
        };
    }
    let mut out = String::new();
    for p in parts {
        match p {
            Ok(t) => out.push_str(&t),
            Err(r) => match lookup(scope, &r.path) {
                Ok(v) => out.push_str(&text(&v)),
                Err(_) if r.optional => {}
                Err(why) => return Err(TemplateError::Missing(r.path, why)),
            },
        }
    }
    Ok(Some(Value::String(out)))
}

/// Renders every string in `v`; an optional template naming nothing drops its object field (or
/// array element).
pub fn render(v: &Value, scope: &Scope) -> Result<Option<Value>, TemplateError> {
    Ok(match v {
        Value::String(s) => render_str(s, scope)?,
        Value::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            for x in a {
                if let Some(r) = render(x, scope)? {
                    out.push(r);
                }
            }
            Some(Value::Array(out))
        }
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                if let Some(r) = render(x, scope)? {
                    out.insert(k.clone(), r);
                }
            }
            Some(Value::Object(out))
        }
        other => Some(other.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Scope {
        let mut s = Scope {
            trace_id: "t-1".into(),
            ..Scope::default()
        };
        s.input.insert("n".into(), json!(3));
        s.input.insert("name".into(), json!("web"));
        s.steps
            .insert("a".into(), json!({"rows": [{"id": 7}], "ok": true}));
        s.state
            .insert("gitops.plan.shop".into(), json!({"sha": "abc"}));
        s
    }

    #[test]
    fn whole_templates_keep_their_type_and_text_templates_are_text() {
        let s = scope();
        let r = |v: Value| render(&v, &s).unwrap().unwrap();
        assert_eq!(r(json!("{{ input.n }}")), json!(3));
        assert_eq!(r(json!("{{steps.a.rows.0}}")), json!({"id": 7}));
        assert_eq!(r(json!("{{ steps.a.rows.-1.id }}")), json!(7));
        assert_eq!(
            r(json!("n={{ input.n }} id={{ steps.a.rows.0.id }}")),
            json!("n=3 id=7")
        );
        assert_eq!(r(json!("{{ state.gitops.plan.shop.sha }}")), json!("abc"));
        assert_eq!(
            r(json!({"t": "{{ trace_id }}", "x": ["{{ input.name }}"]})),
            json!({"t": "t-1", "x": ["web"]})
        );
    }

    #[test]
    fn optional_templates_drop_their_field_and_missing_ones_are_errors() {
        let s = scope();
        assert_eq!(
            render(&json!({"a": "{{ ?input.none }}", "b": 1}), &s)
                .unwrap()
                .unwrap(),
            json!({"b": 1})
        );
        assert_eq!(
            render(&json!("x{{ ?input.none }}y"), &s).unwrap().unwrap(),
            json!("xy")
        );
        assert!(matches!(
            render(&json!("{{ input.none }}"), &s),
            Err(TemplateError::Missing(p, _)) if p == "input.none"
        ));
        assert!(matches!(
            render(&json!("{{ steps.later.x }}"), &s),
            Err(TemplateError::Missing(_, why)) if why.contains("has not run")
        ));
        assert!(matches!(parse("{{ input.x"), Err(TemplateError::Syntax(_))));
        assert!(matches!(parse("{{ }}"), Err(TemplateError::Syntax(_))));
    }
}
