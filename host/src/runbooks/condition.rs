//! Conditions of `when` and `retry.until`: `{"path": "input.x", "equals": v}` and the other
//! tests below, combined with `and`, `or` and `not`; a boolean; or a string (a template) that is
//! true unless empty, `false`, `0` or null.

use serde_json::Value;

use super::template::{Scope, TemplateError, lookup, render};

/// The tests a `{"path": …}` condition may make.
pub const TESTS: &[&str] = &[
    "equals",
    "not_equals",
    "exists",
    "contains",
    "not_contains",
    "gt",
    "gte",
    "lt",
    "lte",
];

/// Whether a value counts as true.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !(s.is_empty() || s == "false" || s == "0"),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Checks a condition's shape (for `compile`); the error says what is wrong.
pub fn check(c: &Value) -> Result<(), String> {
    match c {
        Value::Bool(_) | Value::String(_) => Ok(()),
        Value::Object(m) => {
            if let Some(list) = m.get("and").or(m.get("or")) {
                if m.len() != 1 {
                    return Err("`and`/`or` stand alone in their object".into());
                }
                let Some(items) = list.as_array() else {
                    return Err("`and`/`or` take a list of conditions".into());
                };
                return items.iter().try_for_each(check);
            }
            if let Some(inner) = m.get("not") {
                if m.len() != 1 {
                    return Err("`not` stands alone in its object".into());
                }
                return check(inner);
            }
            if !m.get("path").is_some_and(Value::is_string) {
                return Err(
                    "a condition object needs `path` (e.g. `input.apply`) and one test, or \
                     `and`/`or`/`not`"
                        .into(),
                );
            }
            let tests: Vec<&String> = m.keys().filter(|k| *k != "path").collect();
            match tests.as_slice() {
                [t] if TESTS.contains(&t.as_str()) => Ok(()),
                [t] => Err(format!(
                    "unknown test `{t}`; use one of {}",
                    TESTS.join(", ")
                )),
                _ => Err(format!(
                    "give exactly one test besides `path` (one of {})",
                    TESTS.join(", ")
                )),
            }
        }
        _ => Err("a condition is an object, a boolean or a template string".into()),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Evaluates `c` in `scope`.
pub fn eval(c: &Value, scope: &Scope) -> Result<bool, TemplateError> {
    match c {
        Value::Bool(b) => Ok(*b),
        Value::String(_) => Ok(render(c, scope)?.as_ref().is_some_and(truthy)),
        Value::Object(m) => {
            if let Some(Value::Array(items)) = m.get("and") {
                for i in items {
                    if !eval(i, scope)? {
                        return Ok(false);
                    }
                }
                return Ok(true);
            }
            if let Some(Value::Array(items)) = m.get("or") {
                for i in items {
                    if eval(i, scope)? {
                        return Ok(true);
                    }
                }
                return Ok(false);
            }
            if let Some(inner) = m.get("not") {
                return Ok(!eval(inner, scope)?);
            }
            let path = m.get("path").and_then(Value::as_str).unwrap_or_default();
            let value = lookup(scope, path).ok();
            let operand = |k: &str| -> Result<Value, TemplateError> {
                Ok(m.get(k)
                    .map(|v| render(v, scope))
                    .transpose()?
                    .flatten()
                    .unwrap_or(Value::Null))
            };
            let cmp = |k: &str, f: fn(f64, f64) -> bool| -> Result<bool, TemplateError> {
                let o = operand(k)?;
                Ok(match (value.as_ref().and_then(number), number(&o)) {
                    (Some(a), Some(b)) => f(a, b),
                    _ => false,
                })
            };
            let contains = |o: &Value| match &value {
                Some(Value::String(s)) => o.as_str().is_some_and(|x| s.contains(x)),
                Some(Value::Array(a)) => a.contains(o),
                Some(Value::Object(obj)) => o.as_str().is_some_and(|k| obj.contains_key(k)),
                _ => false,
            };
            if m.contains_key("equals") {
                return Ok(value.unwrap_or(Value::Null) == operand("equals")?);
            }
            if m.contains_key("not_equals") {
                return Ok(value.unwrap_or(Value::Null) != operand("not_equals")?);
            }
            if let Some(want) = m.get("exists") {
                let present = value.is_some_and(|v| !v.is_null());
                return Ok(present == truthy(want));
            }
            if m.contains_key("contains") {
                return Ok(contains(&operand("contains")?));
            }
            if m.contains_key("not_contains") {
                return Ok(!contains(&operand("not_contains")?));
            }
            if m.contains_key("gt") {
                return cmp("gt", |a, b| a > b);
            }
            if m.contains_key("gte") {
                return cmp("gte", |a, b| a >= b);
            }
            if m.contains_key("lt") {
                return cmp("lt", |a, b| a < b);
            }
            if m.contains_key("lte") {
                return cmp("lte", |a, b| a <= b);
            }
            Ok(false)
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tests_combine_and_templates_count_as_truthy() {
        let mut s = Scope::default();
        s.input.insert("apply".into(), json!(true));
        s.input.insert("n".into(), json!("5"));
        s.result = Some(json!({"ok": true, "stdout": "Synced Healthy", "items": [1, 2]}));
        let t = |c: Value| eval(&c, &s).unwrap();
        assert!(t(json!({"path": "input.apply", "equals": true})));
        assert!(t(json!({"path": "input.missing", "exists": false})));
        assert!(t(json!({"path": "result.stdout", "contains": "Healthy"})));
        assert!(t(json!({"path": "result.items", "contains": 2})));
        assert!(t(json!({"path": "input.n", "gt": 4})));
        assert!(!t(json!({"path": "input.n", "lt": "{{ input.n }}"})));
        assert!(t(json!({"and": [{"path": "result.ok", "equals": true},
                                   {"not": {"path": "input.n", "equals": "6"}}]})));
        assert!(t(json!({"or": [false, "{{ input.apply }}"]})));
        assert!(!t(json!("{{ ?input.missing }}")));
        assert!(
            check(&json!({"path": "x", "equal": 1}))
                .unwrap_err()
                .contains("unknown test")
        );
        assert!(check(&json!({"equals": 1})).is_err());
        assert!(check(&json!({"and": [{"path": "a", "exists": true}, 3]})).is_err());
    }
}
