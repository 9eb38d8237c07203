//! Label selectors (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`) and field selectors (the
//! fields the real API server supports for the kinds served here), parsed once per request.

use serde_json::Value;

/// One label requirement.
#[derive(Debug, PartialEq)]
enum Label {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    Absent(String),
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Default)]
pub struct LabelSelector(Vec<Label>);

/// Splits on commas outside parentheses (`a in (x,y),b`).
fn split_top(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn set(values: &str, whole: &str) -> Result<Vec<String>, String> {
    let inner = values
        .trim()
        .strip_prefix('(')
        .and_then(|v| v.strip_suffix(')'))
        .ok_or_else(|| {
            format!(
                "labelSelector: '{whole}': set values must be in parentheses, as in `env in (a,b)`"
            )
        })?;
    Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
}

impl LabelSelector {
    /// Parses `labelSelector`; the error names the bad requirement.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_top(s) {
            let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
            let req = if let Some(k) = part.strip_prefix('!') {
                Label::Absent(k.trim().to_string())
            } else if let Some((k, v)) = part.split_once("!=") {
                Label::Ne(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==") {
                Label::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once('=') {
                Label::Eq(k.trim().into(), v.trim().into())
            } else if words.len() == 2 {
                let rest = words[1].trim_start();
                if let Some(v) = rest.strip_prefix("notin") {
                    Label::NotIn(words[0].into(), set(v, part)?)
                } else if let Some(v) = rest.strip_prefix("in") {
                    Label::In(words[0].into(), set(v, part)?)
                } else {
                    return Err(format!(
                        "labelSelector: '{part}' is not a requirement; use key=value, key!=value, key in (a,b), key notin (a,b), key or !key"
                    ));
                }
            } else {
                Label::Exists(part.to_string())
            };
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    /// True when the object's labels satisfy every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Label::Eq(k, v) => get(k) == Some(v.as_str()),
            Label::Ne(k, v) => get(k) != Some(v.as_str()),
            Label::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Label::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Label::Exists(k) => get(k).is_some(),
            Label::Absent(k) => get(k).is_none(),
        })
    }
}

/// The fields a field selector may name (the real server's set for these kinds).
const FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "status.phase",
    "spec.nodeName",
    "involvedObject.kind",
    "involvedObject.name",
    "involvedObject.namespace",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.fieldPath",
    "reason",
    "type",
];

/// A parsed field selector: (field, value, equal?).
#[derive(Debug, Default)]
pub struct FieldSelector(Vec<(String, String, bool)>);

impl FieldSelector {
    /// Parses `fieldSelector`; an unsupported field is an error naming the supported ones.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_top(s) {
            let (field, value, eq) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, true)
            } else {
                return Err(format!(
                    "fieldSelector: '{part}' is not field=value or field!=value"
                ));
            };
            let field = field.trim();
            if !FIELDS.contains(&field) {
                return Err(format!(
                    "fieldSelector: field label not supported: {field} (supported: {})",
                    FIELDS.join(", ")
                ));
            }
            reqs.push((field.to_string(), value.trim().to_string(), eq));
        }
        Ok(Self(reqs))
    }

    /// True when every requirement holds.
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(field, value, eq)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            let actual = obj.pointer(&pointer).and_then(Value::as_str).unwrap_or("");
            (actual == value) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_operators() {
        let o = json!({"metadata": {"labels": {"app": "web", "tier": "front"}}});
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&o);
        assert!(m("app=web") && m("app==web") && m("app!=db") && m("app"));
        assert!(m("app in (db, web),tier notin (back)") && m("!missing"));
        assert!(!m("app=db") && !m("!app") && !m("tier in (back)") && !m("missing"));
        assert!(LabelSelector::parse("app in web").is_err());
    }

    #[test]
    fn field_selectors() {
        let o =
            json!({"metadata": {"name": "a", "namespace": "x"}, "status": {"phase": "Running"}});
        let m = |s: &str| FieldSelector::parse(s).unwrap().matches(&o);
        assert!(m("metadata.name=a,status.phase!=Pending"));
        assert!(!m("status.phase=Pending"));
        let err = FieldSelector::parse("spec.replicas=1").unwrap_err();
        assert!(err.contains("spec.replicas"), "{err}");
    }
}
