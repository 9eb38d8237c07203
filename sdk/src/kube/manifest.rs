//! Manifests as people hand them over: a multi-document YAML stream, a JSON object, a JSON array
//! or a `List`, each turned into the objects it holds.

use serde::Deserialize;
use serde_json::Value;

use crate::ToolError;

/// The objects of `text` (YAML documents separated by `---`, or JSON), `List`s flattened and
/// empty documents dropped. Each object must have `apiVersion`, `kind` and `metadata.name`; the
/// error names the document (1-based) that lacks one.
pub fn parse_manifests(text: &str) -> Result<Vec<Value>, ToolError> {
    let mut docs = Vec::new();
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(items)) => docs.extend(items),
            Ok(v) => docs.push(v),
            Err(e) => {
                return Err(ToolError::invalid(
                    "manifests",
                    format!("not valid JSON: {e}; give JSON objects or YAML documents"),
                ));
            }
        }
    } else {
        for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            let v = Value::deserialize(doc).map_err(|e| {
                ToolError::invalid(
                    "manifests",
                    format!("document {} is not valid YAML: {e}", i + 1),
                )
            })?;
            docs.push(v);
        }
    }
    let mut out = Vec::new();
    for doc in docs {
        match doc {
            Value::Null => {}
            Value::Object(ref o)
                if o.get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.ends_with("List"))
                    && o.get("items").is_some_and(Value::is_array) =>
            {
                out.extend(o["items"].as_array().cloned().unwrap_or_default());
            }
            other => out.push(other),
        }
    }
    for (i, o) in out.iter().enumerate() {
        let missing = [
            ("apiVersion", o["apiVersion"].is_string()),
            ("kind", o["kind"].is_string()),
            ("metadata.name", o["metadata"]["name"].is_string()),
        ]
        .into_iter()
        .find(|(_, ok)| !ok);
        if let Some((field, _)) = missing {
            return Err(ToolError::invalid(
                "manifests",
                format!(
                    "object {} has no `{field}`; every object needs apiVersion, kind and \
                     metadata.name",
                    i + 1
                ),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_streams_json_and_lists() {
        let yaml = "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\n\n---\n\
                    apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  namespace: shop\n";
        let objs = parse_manifests(yaml).unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[1]["metadata"]["namespace"], "shop");
        let list = r#"{"apiVersion":"v1","kind":"List","items":[
            {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}},
            {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}]}"#;
        assert_eq!(parse_manifests(list).unwrap().len(), 2);
        let arr = r#"[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}]"#;
        assert_eq!(parse_manifests(arr).unwrap().len(), 1);
    }

    #[test]
    fn malformed_documents_are_named() {
        let e = parse_manifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n").unwrap_err();
        assert!(e.message.contains("object 1 has no `metadata.name`"), "{e}");
        let e = parse_manifests("a: [\n").unwrap_err();
        assert!(e.message.contains("document 1 is not valid YAML"), "{e}");
        assert!(parse_manifests("{nope").is_err());
    }
}
