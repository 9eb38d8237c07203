//! How values, types and paths are named in validation messages, and the small JSON
//! comparisons both the walk and the value checks use.

use serde_json::Value;

/// The string values a tag property is pinned to (`const` or an all-string `enum`).
pub(super) fn pinned_strings(prop: &Value) -> Option<Vec<String>> {
    if let Some(Value::String(value)) = prop.get("const") {
        return Some(vec![value.clone()]);
    }
    if let Some(Value::Array(values)) = prop.get("enum") {
        let strings: Option<Vec<String>> = values
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect();
        return strings.filter(|s| !s.is_empty());
    }
    None
}

pub(super) fn type_matches(t: &str, value: &Value) -> bool {
    match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        // Strict on purpose: 5.0 passes JSON Schema's `integer`, but serde refuses it for a u64,
        // so accepting it here would only move the error into the plugin.
        "integer" => value.is_i64() || value.is_u64(),
        _ => true,
    }
}

/// `5.5` for an `integer`: the right kind of value, just not whole.
pub(super) fn kind_only(t: &str, value: &Value) -> bool {
    t == "integer" && value.is_number()
}

pub(super) fn same_kind(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

pub(super) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        // `1` and `1.0` are the same number to JSON Schema.
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

pub(super) fn article(t: &str) -> String {
    match t {
        "null" => "null".to_owned(),
        "integer" | "object" | "array" => format!("an {t}"),
        "boolean" => "a boolean (true or false)".to_owned(),
        other => format!("a {other}"),
    }
}

pub(super) fn plural(phrase: &str) -> String {
    for (singular, plural) in [
        ("a string", "strings"),
        ("an integer", "integers"),
        ("a number", "numbers"),
        ("an object", "objects"),
        ("an array", "arrays"),
        ("a boolean (true or false)", "booleans"),
    ] {
        if phrase == singular {
            return plural.to_owned();
        }
    }
    phrase.to_owned()
}

pub(super) fn describe_types(types: &[&str]) -> String {
    types
        .iter()
        .map(|t| article(t))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// What to do about a wrong type, for the mistakes agents actually make.
pub(super) fn type_advice(types: &[&str], expected: &str, value: &Value, path: &str) -> String {
    let wants = |t: &str| types.contains(&t);
    let subject = subject(path);
    match value {
        Value::String(s)
            if (wants("integer") || wants("number")) && s.trim().parse::<f64>().is_ok() =>
        {
            format!("send the number without quotes, e.g. {}.", s.trim())
        }
        Value::String(s) if wants("boolean") && matches!(s.trim(), "true" | "false") => {
            format!("send {} without quotes.", s.trim())
        }
        Value::Number(n) if wants("integer") && !wants("number") && n.as_f64().is_some() => {
            format!(
                "send a whole number, e.g. {}.",
                n.as_f64().unwrap_or_default().round()
            )
        }
        Value::Number(n) if wants("string") => format!("send it as a string, e.g. \"{n}\"."),
        Value::Null => format!("omit {subject} or send {expected}."),
        _ => format!("send {expected}."),
    }
}

/// The field as the subject of a sentence.
pub(super) fn subject(path: &str) -> String {
    if path.is_empty() {
        "the arguments".to_owned()
    } else {
        format!("`{path}`")
    }
}

pub(super) fn describe_value(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!(
            "the string {}",
            clip(&Value::from(s.as_str()).to_string(), 40)
        ),
        Value::Array(items) => format!("an array of {} items", items.len()),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// A literal as an agent should type it: strings in backticks, everything else as JSON.
pub(super) fn show_literal(value: &Value) -> String {
    match value {
        Value::String(s) => format!("`{s}`"),
        other => clip(&other.to_string(), 40),
    }
}

pub(super) fn show_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        x.to_string()
    }
}

pub(super) fn list_names(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

pub(super) fn clip(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}
