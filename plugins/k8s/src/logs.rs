//! `logs`: a container's log, the last lines inline and the whole of a long one in the
//! artifact store.

use infra_sdk::kube::{check_name, query_string};
use infra_sdk::prelude::*;

use crate::args::{TAIL_DEFAULT, TAIL_MAX, bounded};
use crate::caps::artifacts;
use crate::discovery::{Cluster, list_namespace, object_namespace};
use crate::read::get_object;

/// Log bytes returned inline; a longer log is cut to its last this many bytes, whole in an
/// artifact. Half the host's 64 KiB inline cap: JSON escaping and the envelope must still fit,
/// or the whole result would be spilled and the tail hidden behind a second artifact.
pub const INLINE: usize = 32 * 1024;

/// A container's log.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Logs {
    /// The pod.
    pub pod: String,
    /// The container.
    pub container: String,
    /// Whether this is the previous (terminated) instance's log.
    pub previous: bool,
    /// The log: all of it, or its last 32 KiB when `truncated` (cut at a line start).
    pub text: String,
    /// Lines in the whole log.
    pub lines: usize,
    /// Bytes in the whole log.
    pub bytes: usize,
    /// `text` is only the end of the log; the whole is in `artifact`.
    pub truncated: bool,
    /// The whole log, when it was longer than 32 KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// The host cut the log at its capture limit (ask for fewer lines).
    pub capped: bool,
}

/// The containers of `pod`, regular ones first, then init and ephemeral ones.
fn containers(pod: &Value) -> Vec<String> {
    ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| pod["spec"][*k].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

/// The container to read: the one asked for (it must exist), else the pod's only regular
/// container or its `kubectl.kubernetes.io/default-container`.
pub fn pick_container(pod: &Value, asked: Option<&str>) -> Result<String, ToolError> {
    let all = containers(pod);
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    if let Some(c) = asked {
        return if all.iter().any(|x| x == c) {
            Ok(c.to_string())
        } else {
            Err(ToolError::invalid(
                "container",
                format!(
                    "pod {name} has no container {c:?}; its containers: {}",
                    all.join(", ")
                ),
            ))
        };
    }
    let regular = pod["spec"]["containers"].as_array().map_or(0, Vec::len);
    let default = pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"]
        .as_str()
        .filter(|d| all.iter().any(|x| x == d));
    match (default, regular) {
        (Some(d), _) => Ok(d.to_string()),
        (None, 1) => Ok(all[0].clone()),
        _ => Err(ToolError::invalid(
            "container",
            format!(
                "pod {name} has {} containers: name one with `container` ({})",
                all.len(),
                all.join(", ")
            ),
        )),
    }
}

/// The last at most `max` bytes of `text`, starting at a line when there is one in them.
pub fn tail_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let cut = &text[start..];
    match cut.find('\n') {
        Some(i) if i + 1 < cut.len() => &cut[i + 1..],
        _ => cut,
    }
}

/// What `logs` reads.
pub struct LogArgs<'a> {
    /// The pod.
    pub name: &'a str,
    /// The namespace given.
    pub namespace: Option<&'a str>,
    /// The container asked for.
    pub container: Option<&'a str>,
    /// Lines from the end.
    pub tail: Option<u64>,
    /// Only the last seconds.
    pub since_seconds: Option<u64>,
    /// The previous instance.
    pub previous: bool,
}

/// `logs`.
pub fn logs(c: &mut Cluster, a: &LogArgs) -> Result<(Option<String>, Logs), ToolError> {
    check_name("name", a.name)?;
    list_namespace(a.namespace)?;
    let tail = bounded("tail", a.tail, TAIL_DEFAULT, TAIL_MAX)?;
    if a.since_seconds == Some(0) {
        return Err(ToolError::invalid(
            "since_seconds",
            "0 selects nothing: give a positive number of seconds",
        ));
    }
    let pods = c.resolve("pods", "get")?;
    let ns = object_namespace(&pods, a.namespace)?;
    let pod = get_object(c, &pods, ns.as_deref(), a.name)?;
    let container = pick_container(&pod, a.container)?;
    let mut params = vec![("container", container.clone())];
    if a.tail.is_some() || a.since_seconds.is_none() {
        params.push(("tailLines", tail.to_string()));
    }
    if let Some(s) = a.since_seconds {
        params.push(("sinceSeconds", s.to_string()));
    }
    if a.previous {
        params.push(("previous", "true".into()));
    }
    let path = format!(
        "{}/log{}",
        pods.object_path(ns.as_deref(), a.name),
        query_string(&params)
    );
    let access = c
        .client
        .access("get", "pods/log", ns.as_deref(), Some(a.name));
    let body = match c.client.get_raw(&path, "text/plain", &access) {
        Err(e) if a.previous && e.kind == ErrorKind::Invalid => {
            return Err(ToolError::invalid(
                "previous",
                format!(
                    "container {container} of pod {} has no previous instance to read ({}); \
                     drop `previous` for the current one",
                    a.name, e.message
                ),
            ));
        }
        other => other?,
    };
    let text = String::from_utf8_lossy(&body.bytes).into_owned();
    let mut inline = tail_bytes(&text, INLINE);
    // Quotes, backslashes and control characters grow when escaped as JSON: keep halving
    // until the escaped text fits too.
    while inline.len() > 1024
        && serde_json::to_string(inline).map_or(0, |j| j.len()) > INLINE + INLINE / 4
    {
        inline = tail_bytes(inline, inline.len() / 2);
    }
    let truncated = inline.len() < text.len();
    let artifact = if truncated {
        let what = format!(
            "log of container {container} of pod {}/{}",
            ns.as_deref().unwrap_or("-"),
            a.name
        );
        Some(artifacts::put(body.bytes.as_slice(), "text/plain; charset=utf-8", &what)?.into())
    } else {
        None
    };
    Ok((
        ns,
        Logs {
            pod: a.name.to_string(),
            container,
            previous: a.previous,
            text: inline.to_string(),
            lines: text.lines().count(),
            bytes: text.len(),
            truncated,
            artifact,
            capped: body.truncated,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_is_picked_or_the_choice_named() {
        let one = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app"}],
                         "initContainers": [{"name": "migrate"}]}});
        assert_eq!(pick_container(&one, None).unwrap(), "app");
        assert_eq!(pick_container(&one, Some("migrate")).unwrap(), "migrate");
        let e = pick_container(&one, Some("nope")).unwrap_err();
        assert!(e.message.contains("app, migrate"), "{e}");
        let two = json!({"metadata": {"name": "p"},
                         "spec": {"containers": [{"name": "app"}, {"name": "proxy"}]}});
        let e = pick_container(&two, None).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("container"));
        assert!(e.message.contains("app, proxy"), "{e}");
        let mut dflt = two.clone();
        dflt["metadata"]["annotations"] =
            json!({"kubectl.kubernetes.io/default-container": "proxy"});
        assert_eq!(pick_container(&dflt, None).unwrap(), "proxy");
    }

    #[test]
    fn the_inline_tail_starts_at_a_line() {
        let text = "first line\nsecond line\nthird\n";
        assert_eq!(tail_bytes(text, 100), text);
        assert_eq!(tail_bytes(text, 14), "third\n");
        assert_eq!(tail_bytes("ééé", 3), "é");
    }
}
