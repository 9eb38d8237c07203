//! `top`: CPU and memory use per pod or node from metrics.k8s.io (metrics-server), when the
//! cluster serves it.

use infra_sdk::kube::query_string;
use infra_sdk::prelude::*;

use crate::discovery::{Cluster, list_namespace};

/// The group metrics-server registers.
const METRICS: &str = "metrics.k8s.io";

/// Use by one pod or node.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Usage {
    /// The pod or node.
    pub name: String,
    /// The pod's namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// CPU in millicores (summed over a pod's containers).
    pub cpu_millicores: u64,
    /// Memory in MiB (summed over a pod's containers).
    pub memory_mib: u64,
}

/// A CPU quantity (`250m`, `1`, `1500000n`, `2.5`) in millicores.
pub fn cpu_millis(q: &str) -> Option<u64> {
    let (n, scale) = split_suffix(q);
    let v: f64 = n.parse().ok()?;
    let millis = match scale {
        "" => v * 1000.0,
        "m" => v,
        "u" => v / 1000.0,
        "n" => v / 1_000_000.0,
        _ => return None,
    };
    Some(millis.round() as u64)
}

/// A memory quantity (`128Mi`, `1Gi`, `524288Ki`, `1G`, `1e9`, `1000000`) in bytes.
pub fn bytes(q: &str) -> Option<u64> {
    let (n, suffix) = split_suffix(q);
    let v: f64 = n.parse().ok()?;
    let mult: f64 = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => return None,
    };
    Some((v * mult).round() as u64)
}

/// Splits a quantity into its number (exponent included) and its suffix.
fn split_suffix(q: &str) -> (&str, &str) {
    let end = q
        .char_indices()
        .find(|(i, c)| {
            c.is_ascii_alphabetic()
                && !(matches!(c, 'e' | 'E')
                    && q[i + 1..].starts_with(|d: char| d.is_ascii_digit() || d == '-' || d == '+'))
        })
        .map_or(q.len(), |(i, _)| i);
    (&q[..end], &q[end..])
}

/// The usage of one metrics object (PodMetrics sums its containers).
pub fn usage(m: &Value) -> Usage {
    let parts: Vec<&Value> = match m["containers"].as_array() {
        Some(cs) => cs.iter().map(|c| &c["usage"]).collect(),
        None => vec![&m["usage"]],
    };
    let sum = |key: &str, f: fn(&str) -> Option<u64>| -> u64 {
        parts
            .iter()
            .filter_map(|u| u[key].as_str().and_then(f))
            .sum()
    };
    Usage {
        name: m["metadata"]["name"].as_str().unwrap_or_default().into(),
        namespace: m["metadata"]["namespace"].as_str().map(str::to_string),
        cpu_millicores: sum("cpu", cpu_millis),
        memory_mib: sum("memory", bytes) / (1024 * 1024),
    }
}

/// `top`.
pub fn top(
    c: &mut Cluster,
    namespace: Option<&str>,
    kind: Option<&str>,
    label_selector: Option<&str>,
) -> Result<(Option<String>, Vec<Usage>), ToolError> {
    let nodes = match kind.unwrap_or("pods") {
        "pods" | "pod" | "po" => false,
        "nodes" | "node" | "no" => true,
        other => {
            return Err(ToolError::invalid(
                "kind",
                format!("top reads \"pods\" or \"nodes\", not {other:?}"),
            ));
        }
    };
    let not_available = |c: &Cluster| {
        ToolError::not_found(format!(
            "the metrics API ({METRICS}) is not available on the cluster of profile {:?}: \
             install metrics-server (or ask the cluster's operator to), then retry",
            c.client.profile
        ))
    };
    if !c.has_group(METRICS)? {
        return Err(not_available(c));
    }
    let (ns, mut rows) = match usage_rows(c, nodes, namespace, label_selector) {
        // Discovery the host kept may still list a metrics API removed since: look again.
        Err(e) if matches!(e.kind, ErrorKind::NotFound | ErrorKind::Failed) => {
            c.rediscover();
            if !c.has_group(METRICS)? {
                return Err(not_available(c));
            }
            usage_rows(c, nodes, namespace, label_selector)?
        }
        other => other?,
    };
    rows.sort_by_key(|u| std::cmp::Reverse(u.cpu_millicores));
    Ok((ns, rows))
}

/// One read of the pods' or nodes' usage from metrics.k8s.io.
fn usage_rows(
    c: &mut Cluster,
    nodes: bool,
    namespace: Option<&str>,
    label_selector: Option<&str>,
) -> Result<(Option<String>, Vec<Usage>), ToolError> {
    let r = c.resolve(
        &format!("{}.{METRICS}", if nodes { "nodes" } else { "pods" }),
        "list",
    )?;
    let ns = if nodes {
        None
    } else {
        list_namespace(namespace)?
    };
    let params: Vec<(&str, String)> = label_selector
        .map(|s| ("labelSelector", s.to_string()))
        .into_iter()
        .collect();
    let path = format!(
        "{}{}",
        r.collection_path(ns.as_deref()),
        query_string(&params)
    );
    let qualified = r.qualified();
    let access = c.client.access("list", &qualified, ns.as_deref(), None);
    let doc = c.client.get(&path, &access)?;
    let rows = doc["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(usage)
        .collect();
    Ok((ns, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(cpu_millis("250m"), Some(250));
        assert_eq!(cpu_millis("2"), Some(2000));
        assert_eq!(cpu_millis("1500000n"), Some(2));
        assert_eq!(cpu_millis("0.5"), Some(500));
        assert_eq!(cpu_millis("x"), None);
        assert_eq!(bytes("128Mi"), Some(128 * 1024 * 1024));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("1e6"), Some(1_000_000));
        assert_eq!(bytes("524288Ki"), Some(512 * 1024 * 1024));
    }

    #[test]
    fn pod_usage_sums_containers() {
        let m = json!({"metadata": {"name": "web", "namespace": "shop"}, "containers": [
            {"name": "a", "usage": {"cpu": "100m", "memory": "64Mi"}},
            {"name": "b", "usage": {"cpu": "20000000n", "memory": "32Mi"}}]});
        let u = usage(&m);
        assert_eq!((u.cpu_millicores, u.memory_mib), (120, 96));
        let n = json!({"metadata": {"name": "n1"}, "usage": {"cpu": "1", "memory": "2Gi"}});
        assert_eq!(usage(&n).memory_mib, 2048);
    }
}
