//! Large results out of the agent's context: an output over the inline cap moves into an
//! artifact, leaving the envelope, a preview and the link; and the `artifact://` links a
//! result carries, for the call's audit record.

use serde_json::{Map, Value, json};

use crate::artifacts::{ArtifactMeta, ArtifactStore, preview};

/// Moves an output larger than `cap` bytes into an artifact of `store`, leaving the envelope,
/// a preview and the link; the stored artifact's URI, when it was stored.
pub async fn spill(
    output: &mut Value,
    tool: &str,
    trace_id: &str,
    store: &ArtifactStore,
    cap: usize,
) -> Option<String> {
    let text = serde_json::to_string_pretty(output).ok()?;
    if text.len() <= cap {
        return None;
    }
    let meta = ArtifactMeta {
        media_type: "application/json".into(),
        tool: tool.into(),
        trace_id: trace_id.into(),
        description: format!("full result of {tool} ({} bytes)", text.len()),
    };
    // A result that cannot be stored (the store is full of pinned artifacts, the disk is
    // full) is still cut to a preview: the agent's context is not the overflow.
    let stored = store.put(text.as_bytes(), meta).await;
    if let Err(e) = &stored {
        tracing::warn!("could not spill a large result: {e:#}");
    }
    let mut slim = Map::new();
    for k in [
        "ok",
        "tool",
        "action",
        "duration_ms",
        "trace_id",
        "error",
        "status",
    ] {
        if let Some(v) = output.get(k) {
            let v = match k {
                "error" => slim_error(v, cap),
                _ => v.clone(),
            };
            slim.insert(k.into(), v);
        }
    }
    slim.insert("truncated".into(), json!(true));
    slim.insert(
        "preview".into(),
        json!(preview(text.as_bytes(), (cap / 4).max(1024))),
    );
    let note = match &stored {
        Ok(info) => format!(
            "the result is {} bytes, over the {cap}-byte inline cap; the whole of it is {} — read it with the artifacts tool (action get/head/tail)",
            text.len(),
            info.uri
        ),
        Err(e) => format!(
            "the result is {} bytes, over the {cap}-byte inline cap, and could not be stored \
             as an artifact ({e:#}); only this preview is left — ask for less",
            text.len()
        ),
    };
    slim.insert("note".into(), json!(note));
    *output = Value::Object(slim);
    stored.ok().map(|info| info.uri)
}

/// The error of a spilled result, small enough to stay inline: a large `detail` (a failed
/// run's report, a server's words) is left to the artifact and a long message cut.
fn slim_error(error: &Value, cap: usize) -> Value {
    let mut e = error.clone();
    if e.to_string().len() <= cap / 2 {
        return e;
    }
    if let Some(o) = e.as_object_mut() {
        if o.remove("detail").is_some() {
            o.insert("detail_in_artifact".into(), json!(true));
        }
        if let Some(Value::String(m)) = o.get_mut("message")
            && m.len() > cap / 4
        {
            let mut end = cap / 4;
            while !m.is_char_boundary(end) {
                end -= 1;
            }
            m.truncate(end);
            m.push_str("… (cut; the whole message is in the artifact)");
        }
    }
    e
}

/// `artifact://` URIs anywhere in a result.
pub fn collect_artifacts(v: &Value) -> Vec<String> {
    let mut found = Vec::new();
    fn walk(v: &Value, found: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(u)) = o.get("uri")
                    && u.starts_with("artifact://")
                    && !found.contains(u)
                {
                    found.push(u.clone());
                }
                o.values().for_each(|x| walk(x, found));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, found)),
            _ => {}
        }
    }
    walk(v, &mut found);
    found
}
