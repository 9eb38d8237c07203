//! A resource type as discovery describes it, the URL paths of its objects, and the checks that
//! keep an agent's names inside those paths.

use schemars::JsonSchema;
use serde::Serialize;

use crate::ToolError;

/// One resource type the API server serves, as discovery lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ApiResource {
    /// API group; empty for the core group (`v1`).
    pub group: String,
    /// The version served (the group's preferred one unless asked otherwise).
    pub version: String,
    /// The plural used in URLs, e.g. `deployments`.
    pub resource: String,
    /// The object kind, e.g. `Deployment`.
    pub kind: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// The singular name, e.g. `deployment` (discovery may leave it empty).
    #[serde(skip)]
    pub singular: String,
    /// Short names, e.g. `deploy`.
    #[serde(skip)]
    pub short_names: Vec<String>,
    /// The verbs the server supports on it (`get`, `list`, `patch`, …).
    #[serde(skip)]
    pub verbs: Vec<String>,
}

impl ApiResource {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `pods` for the core group: the name RBAC and kubectl use.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// The collection's path: in `namespace` when the type is namespaced and one is given, else
    /// across the cluster. Names must have passed [`check_name`]/[`check_namespace`].
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        let root = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace {
            Some(ns) if self.namespaced => {
                format!("{root}/namespaces/{}/{}", encode(ns), self.resource)
            }
            _ => format!("{root}/{}", self.resource),
        }
    }

    /// One object's path.
    pub fn object_path(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}/{}", self.collection_path(namespace), encode(name))
    }
}

/// Checks an object name: what the API server accepts in a path segment, without `/`, `%`,
/// `?`, `#`, whitespace, `.` or `..` — so a name can never step outside the object's URL.
/// Kubernetes names are DNS subdomains, but RBAC names also carry `:` and `@`, so those pass.
pub fn check_name(field: &str, value: &str) -> Result<(), ToolError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '@');
    if value.is_empty() {
        return Err(ToolError::invalid(
            field,
            format!("missing: `{field}` must name the object"),
        ));
    }
    if value.len() > 253 || value == "." || value == ".." || !value.chars().all(ok_char) {
        return Err(ToolError::invalid(
            field,
            format!(
                "{value:?} is not a Kubernetes object name: use at most 253 letters, digits, \
                 '-', '.', '_', ':' or '@' (no '/', '?', '%', spaces, and not '.' or '..')"
            ),
        ));
    }
    Ok(())
}

/// Checks a namespace name: a DNS label (lower-case letters, digits, '-'; at most 63).
pub fn check_namespace(field: &str, value: &str) -> Result<(), ToolError> {
    let label = !value.is_empty()
        && value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if label {
        Ok(())
    } else {
        Err(ToolError::invalid(
            field,
            format!(
                "{value:?} is not a namespace name: use at most 63 lower-case letters, digits \
                 and '-', starting and ending with a letter or digit"
            ),
        ))
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for a path segment or a
/// query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `?a=1&b=x%20y` from the pairs given (empty when none).
pub fn query_string(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    format!("?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy() -> ApiResource {
        ApiResource {
            group: "apps".into(),
            version: "v1".into(),
            resource: "deployments".into(),
            kind: "Deployment".into(),
            namespaced: true,
            singular: "deployment".into(),
            short_names: vec!["deploy".into()],
            verbs: vec![],
        }
    }

    #[test]
    fn paths_of_namespaced_and_cluster_wide_collections() {
        let d = deploy();
        assert_eq!(
            d.object_path(Some("web"), "api"),
            "/apis/apps/v1/namespaces/web/deployments/api"
        );
        assert_eq!(d.collection_path(None), "/apis/apps/v1/deployments");
        let node = ApiResource {
            group: String::new(),
            version: "v1".into(),
            resource: "nodes".into(),
            kind: "Node".into(),
            namespaced: false,
            ..d
        };
        // A namespace given for a cluster-scoped type is not put in the path.
        assert_eq!(node.object_path(Some("web"), "n1"), "/api/v1/nodes/n1");
        assert_eq!(node.qualified(), "nodes");
        assert_eq!(node.api_version(), "v1");
    }

    #[test]
    fn hostile_names_are_refused() {
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "x?y",
            "a%2f",
            "a b",
            "a#b",
            &"x".repeat(254),
        ] {
            assert!(check_name("name", bad).is_err(), "{bad:?}");
        }
        for good in ["web-1", "system:controller:x", "a.b.c", "user@example.com"] {
            check_name("name", good).unwrap();
        }
        for bad in ["Web", "-a", "a-", "a.b", "..", ""] {
            assert!(check_namespace("namespace", bad).is_err(), "{bad:?}");
        }
        check_namespace("namespace", "kube-system").unwrap();
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            query_string(&[
                ("labelSelector", "app in (a,b)".into()),
                ("limit", "5".into())
            ]),
            "?labelSelector=app%20in%20%28a%2Cb%29&limit=5"
        );
        assert_eq!(query_string(&[]), "");
    }
}
