//! The hash chain's byte form: canonical JSON and the record hash.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// JSON with object keys sorted (by bytes) at every depth and no whitespace.
///
/// Written out by hand because `serde_json::Map` keeps insertion order when any crate in the
/// build enables `preserve_order`, and the hash must not depend on the build.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => push_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_string(k, out);
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
    }
}

fn push_json_string(s: &str, out: &mut String) {
    // Serialising a &str cannot fail; the fallback keeps this total without a panic.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string()));
}

/// The chain hash of a record object (its `hash` key, if any, is ignored).
pub fn record_hash(record: &Value) -> String {
    let prev = record.get("prev").and_then(Value::as_str).unwrap_or("");
    let canonical = match record {
        Value::Object(map) if map.contains_key("hash") => {
            let mut map = map.clone();
            map.remove("hash");
            canonical_json(&Value::Object(map))
        }
        other => canonical_json(other),
    };
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(canonical.as_bytes());
    hex::encode(hasher.finalize())
}
