//! Decoding of argument fields that several plugins take in the same form.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::ToolError;
use crate::bindings::infra::host::types::ByteSource;

/// The bytes of a base64 argument field; a bad value is an `invalid` error naming `field`.
pub fn decode_base64(field: &str, text: &str) -> Result<Vec<u8>, ToolError> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| ToolError::invalid(field, format!("not valid base64: {e}")))
}

/// Bytes as standard base64, the form [`decode_base64`] reads.
pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Bytes given in at most one of three fields, named `<x>` (text), `<x>_base64` and
/// `<x>_artifact` (an `artifact://` URI the host streams): `None` when none is set, `invalid`
/// naming the second field when two are.
pub fn byte_source(fields: [(&str, &Option<String>); 3]) -> Result<Option<ByteSource>, ToolError> {
    let set: Vec<_> = fields.iter().filter(|(_, v)| v.is_some()).collect();
    if set.len() > 1 {
        let names: Vec<String> = fields.iter().map(|(n, _)| format!("`{n}`")).collect();
        return Err(ToolError::invalid(
            set[1].0,
            format!("give only one of {}", names.join(", ")),
        ));
    }
    let Some((name, Some(value))) = set.first().map(|(n, v)| (*n, *v)) else {
        return Ok(None);
    };
    Ok(Some(if name.ends_with("_base64") {
        ByteSource::Bytes(decode_base64(name, value)?)
    } else if name.ends_with("_artifact") {
        if !value.starts_with("artifact://") {
            return Err(ToolError::invalid(
                name,
                format!("'{value}' is not an artifact:// URI; give the URI a tool returned"),
            ));
        }
        ByteSource::Artifact(value.clone())
    } else {
        ByteSource::Bytes(value.clone().into_bytes())
    }))
}

/// Refuses an absolute `value` or one whose `..` climbs out of where it starts: a path an agent
/// gives relative to a root. The host checks again on the real path; this names the field.
pub fn relative_path(field: &str, value: &str) -> Result<(), ToolError> {
    if value.starts_with('/') {
        return Err(ToolError::invalid(
            field,
            format!("'{value}' is absolute: give a path relative to the root"),
        ));
    }
    let mut depth = 0i32;
    for part in value.split('/') {
        match part {
            ".." => depth -= 1,
            "" | "." => {}
            _ => depth += 1,
        }
        if depth < 0 {
            return Err(ToolError::invalid(
                field,
                format!("'{value}' leaves the root through '..': give a path inside it"),
            ));
        }
    }
    Ok(())
}

/// Permission bits given as an octal string (`"644"`, `"0755"`, `"0o755"`) or a number; a bad
/// value is an `invalid` error naming the field `mode`.
pub fn file_mode(mode: &Option<Value>) -> Result<Option<u32>, ToolError> {
    let bad = |m: &Value| {
        ToolError::invalid(
            "mode",
            format!("{m} is not a mode; write it as an octal string like \"644\" or \"0755\""),
        )
    };
    match mode {
        None => Ok(None),
        Some(Value::String(s)) => u32::from_str_radix(s.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .map(Some)
            .ok_or_else(|| bad(&json!(s))),
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|m| *m <= 0o7777)
            .map(|m| Some(m as u32))
            .ok_or_else(|| bad(&json!(n))),
        Some(other) => Err(bad(other)),
    }
}
