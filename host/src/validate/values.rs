//! The checks of one value against one schema node (type, const/enum, bounds, items) and the
//! phrases that describe what a schema accepts.

use serde_json::{Map, Value};

use super::ArgError;
use super::suggest::did_you_mean;
use super::walk::Validator;
use super::words::*;

impl<'s> Validator<'s> {
    pub(super) fn check_type(
        &self,
        node: &Map<String, Value>,
        value: &Value,
        path: &str,
    ) -> Result<(), ArgError> {
        let types: Vec<&str> = match node.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return Ok(()),
        };
        if types.is_empty() || types.iter().any(|t| type_matches(t, value)) {
            return Ok(());
        }
        let expected = describe_types(&types);
        let advice = type_advice(&types, &expected, value, path);
        Err(ArgError {
            field: path.to_owned(),
            message: format!(
                "{} must be {expected}, got {}; {advice}",
                subject(path),
                describe_value(value)
            ),
        })
    }

    pub(super) fn check_const_enum(
        &self,
        node: &Map<String, Value>,
        value: &Value,
        path: &str,
    ) -> Result<(), ArgError> {
        if let Some(expected) = node.get("const")
            && !json_equal(expected, value)
        {
            return Err(ArgError {
                field: path.to_owned(),
                message: format!(
                    "{} must be {}, got {}; send exactly that value.",
                    subject(path),
                    show_literal(expected),
                    describe_value(value)
                ),
            });
        }
        if let Some(Value::Array(allowed)) = node.get("enum")
            && !allowed.iter().any(|a| json_equal(a, value))
        {
            let listed = allowed
                .iter()
                .map(show_literal)
                .collect::<Vec<_>>()
                .join(", ");
            let close = value
                .as_str()
                .and_then(|given| did_you_mean(given, allowed.iter().filter_map(Value::as_str)));
            let hint = match close {
                Some(close) => format!("did you mean `{close}`?"),
                None => "use one of those values.".to_owned(),
            };
            return Err(ArgError {
                field: path.to_owned(),
                message: format!(
                    "{} must be one of {listed}, got {}; {hint}",
                    subject(path),
                    describe_value(value)
                ),
            });
        }
        Ok(())
    }

    pub(super) fn check_bounds(
        &self,
        node: &Map<String, Value>,
        value: &Value,
        path: &str,
    ) -> Result<(), ArgError> {
        let fail = |message: String| {
            Err(ArgError {
                field: path.to_owned(),
                message,
            })
        };
        let bound = |key: &str| node.get(key).and_then(Value::as_f64);
        let who = subject(path);
        match value {
            Value::Number(n) => {
                let Some(x) = n.as_f64() else {
                    return Ok(());
                };
                if let Some(min) = bound("minimum")
                    && x < min
                {
                    return fail(format!(
                        "{who} must be at least {}, got {n}; use a value of {} or more.",
                        show_number(min),
                        show_number(min)
                    ));
                }
                if let Some(max) = bound("maximum")
                    && x > max
                {
                    return fail(format!(
                        "{who} must be at most {}, got {n}; use a value of {} or less.",
                        show_number(max),
                        show_number(max)
                    ));
                }
                if let Some(min) = bound("exclusiveMinimum")
                    && x <= min
                {
                    return fail(format!(
                        "{who} must be greater than {}, got {n}; use a larger value.",
                        show_number(min)
                    ));
                }
                if let Some(max) = bound("exclusiveMaximum")
                    && x >= max
                {
                    return fail(format!(
                        "{who} must be less than {}, got {n}; use a smaller value.",
                        show_number(max)
                    ));
                }
            }
            Value::String(s) => {
                let len = s.chars().count() as f64;
                if let Some(min) = bound("minLength")
                    && len < min
                {
                    return fail(format!(
                        "{who} must be at least {} characters long, got {}; send a longer value.",
                        show_number(min),
                        len
                    ));
                }
                if let Some(max) = bound("maxLength")
                    && len > max
                {
                    return fail(format!(
                        "{who} must be at most {} characters long, got {}; shorten it.",
                        show_number(max),
                        len
                    ));
                }
            }
            Value::Array(items) => {
                let len = items.len() as f64;
                if let Some(min) = bound("minItems")
                    && len < min
                {
                    return fail(format!(
                        "{who} needs at least {} items, got {}; add items.",
                        show_number(min),
                        items.len()
                    ));
                }
                if let Some(max) = bound("maxItems")
                    && len > max
                {
                    return fail(format!(
                        "{who} takes at most {} items, got {}; send fewer, or split the call.",
                        show_number(max),
                        items.len()
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    pub(super) fn check_items(
        &self,
        node: &'s Map<String, Value>,
        items: &[Value],
        path: &str,
    ) -> Result<(), ArgError> {
        let prefix: &[Value] = match node.get("prefixItems") {
            Some(Value::Array(prefix)) => prefix,
            _ => &[],
        };
        for (index, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{index}]");
            if let Some(schema) = prefix.get(index) {
                self.check(schema, item, &item_path)?;
            } else if let Some(schema) = node.get("items") {
                self.check(schema, item, &item_path)?;
            }
        }
        Ok(())
    }

    /// A short phrase for what a schema accepts: `a string`, `an integer or null`,
    /// `one of \`rows\`, \`row\``.
    pub(super) fn describe(&self, schema: &'s Value, depth: usize) -> String {
        let schema = self.deref(schema);
        if depth > 4 {
            return "a value".to_owned();
        }
        if let Some(expected) = schema.get("const") {
            return show_literal(expected);
        }
        if let Some(Value::Array(allowed)) = schema.get("enum") {
            return format!(
                "one of {}",
                allowed
                    .iter()
                    .map(show_literal)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        match schema.get("type") {
            Some(Value::String(t)) => return self.describe_type(schema, t, depth),
            Some(Value::Array(ts)) => {
                let parts: Vec<String> = ts
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|t| self.describe_type(schema, t, depth))
                    .collect();
                return parts.join(" or ");
            }
            _ => {}
        }
        for keyword in ["oneOf", "anyOf"] {
            if let Some(Value::Array(branches)) = schema.get(keyword) {
                if let Some(tagged) = self.tagged(branches) {
                    return format!(
                        "an object with `{}` one of {}",
                        tagged.key,
                        list_names(&tagged.all_values())
                    );
                }
                let mut parts: Vec<String> = Vec::new();
                for branch in branches {
                    let part = self.describe(branch, depth + 1);
                    if !parts.contains(&part) {
                        parts.push(part);
                    }
                }
                return parts.join(" or ");
            }
        }
        if schema.get("properties").is_some() {
            return "an object".to_owned();
        }
        "a value".to_owned()
    }

    pub(super) fn describe_type(&self, schema: &'s Value, t: &str, depth: usize) -> String {
        match (t, schema.get("items")) {
            ("array", Some(items)) if items.is_object() => {
                format!("an array of {}", plural(&self.describe(items, depth + 1)))
            }
            _ => article(t),
        }
    }
}
