//! The kinds the stand-in serves: the built-in table (core/v1, apps/v1, apiextensions, metrics)
//! and the CRDs (Argo CD, Flux), extended at run time when a CustomResourceDefinition is stored.

use serde_json::{Value, json};

/// One resource type as discovery describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// API group; "" for core.
    pub group: String,
    /// The served version.
    pub version: String,
    /// Plural, lower case: the URL segment.
    pub plural: String,
    /// Singular, lower case.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names kubectl accepts (`po`, `deploy`).
    pub short_names: Vec<String>,
    /// Read-only (metrics.k8s.io): only get and list.
    pub read_only: bool,
}

impl Resource {
    /// `group/version`, or `version` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The verbs discovery lists.
    pub fn verbs(&self) -> Vec<&'static str> {
        if self.read_only {
            vec!["get", "list"]
        } else {
            vec![
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
            ]
        }
    }

    /// The `APIResource` entries for discovery: the resource and its subresources.
    pub fn discovery(&self) -> Vec<Value> {
        let mut out = vec![json!({
            "name": self.plural, "singularName": self.singular, "namespaced": self.namespaced,
            "kind": self.kind, "verbs": self.verbs(), "shortNames": self.short_names,
        })];
        if !self.read_only {
            out.push(json!({"name": format!("{}/status", self.plural), "singularName": "",
                "namespaced": self.namespaced, "kind": self.kind, "verbs": ["get", "patch", "update"]}));
        }
        if self.group.is_empty() && self.plural == "pods" {
            out.push(
                json!({"name": "pods/log", "singularName": "", "namespaced": true,
                "kind": "Pod", "verbs": ["get"]}),
            );
        }
        out
    }
}

fn r(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
) -> Resource {
    Resource {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_ascii_lowercase(),
        kind: kind.into(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        read_only: group == "metrics.k8s.io",
    }
}

/// The built-in table.
pub fn builtin() -> Vec<Resource> {
    vec![
        r("", "v1", "namespaces", "Namespace", false, &["ns"]),
        r("", "v1", "pods", "Pod", true, &["po"]),
        r("", "v1", "services", "Service", true, &["svc"]),
        r("", "v1", "configmaps", "ConfigMap", true, &["cm"]),
        r("", "v1", "secrets", "Secret", true, &[]),
        r("", "v1", "events", "Event", true, &["ev"]),
        r("", "v1", "serviceaccounts", "ServiceAccount", true, &["sa"]),
        r("", "v1", "nodes", "Node", false, &["no"]),
        r("apps", "v1", "deployments", "Deployment", true, &["deploy"]),
        r("apps", "v1", "statefulsets", "StatefulSet", true, &["sts"]),
        r("apps", "v1", "daemonsets", "DaemonSet", true, &["ds"]),
        r("apps", "v1", "replicasets", "ReplicaSet", true, &["rs"]),
        r(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
        ),
        r(
            "argoproj.io",
            "v1alpha1",
            "applications",
            "Application",
            true,
            &["app", "apps"],
        ),
        r(
            "kustomize.toolkit.fluxcd.io",
            "v1",
            "kustomizations",
            "Kustomization",
            true,
            &["ks"],
        ),
        r(
            "helm.toolkit.fluxcd.io",
            "v2",
            "helmreleases",
            "HelmRelease",
            true,
            &["hr"],
        ),
        r("metrics.k8s.io", "v1beta1", "pods", "PodMetrics", true, &[]),
        r(
            "metrics.k8s.io",
            "v1beta1",
            "nodes",
            "NodeMetrics",
            false,
            &[],
        ),
    ]
}

/// The resources a CustomResourceDefinition declares (one per served version), or why not.
pub fn from_crd(crd: &Value) -> Result<Vec<Resource>, String> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().ok_or("spec.group: required")?;
    let names = &spec["names"];
    let plural = names["plural"]
        .as_str()
        .ok_or("spec.names.plural: required")?;
    let kind = names["kind"].as_str().ok_or("spec.names.kind: required")?;
    let namespaced = match spec["scope"].as_str() {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        _ => return Err("spec.scope: must be Namespaced or Cluster".into()),
    };
    let versions = spec["versions"]
        .as_array()
        .filter(|v| !v.is_empty())
        .ok_or("spec.versions: at least one version is required")?;
    let expected = format!("{plural}.{group}");
    if crd["metadata"]["name"].as_str() != Some(expected.as_str()) {
        return Err(format!(
            "metadata.name: must be spec.names.plural+\".\"+spec.group ({expected})"
        ));
    }
    Ok(versions
        .iter()
        .filter(|v| v["served"].as_bool() != Some(false))
        .filter_map(|v| v["name"].as_str())
        .map(|version| Resource {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: names["singular"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| kind.to_ascii_lowercase()),
            kind: kind.into(),
            namespaced,
            short_names: names["shortNames"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            read_only: false,
        })
        .collect())
}
