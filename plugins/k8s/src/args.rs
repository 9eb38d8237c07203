//! The arguments of the `k8s` tool: the cluster and namespace every action reads, and per
//! `action` its own fields.

use infra_sdk::prelude::*;

/// Rows `list` returns at most in one call (it pages through the API to get there).
pub const LIST_MAX: u32 = 5000;
/// Rows `list` returns by default.
pub const LIST_DEFAULT: u32 = 100;
/// Events `events` and `describe` return at most.
pub const EVENTS_MAX: u32 = 1000;
/// Log lines `logs` asks for by default (without `since_seconds`).
pub const TAIL_DEFAULT: u32 = 500;
/// Log lines `logs` asks for at most.
pub const TAIL_MAX: u32 = 100_000;

/// Arguments of the `k8s` tool.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
pub struct K8sArgs {
    /// The cluster and namespace.
    #[serde(flatten)]
    pub at: At,
    /// What to look up, with the fields only that action takes.
    #[serde(flatten)]
    pub action: Action,
}

/// The cluster and namespace an action reads.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct At {
    /// A `kubernetes` entry of profiles.json (a kubeconfig context or an inline server); the
    /// host holds its credentials. Required by every action but `contexts`, which lists them.
    pub profile: Option<String>,
    /// The namespace. `get`, `describe` and `logs` default to `default`; `list`, `events`,
    /// `top` and `diagnose` without it cover every namespace. Ignored for cluster-scoped kinds.
    pub namespace: Option<String>,
}

/// What to look up.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// The kubernetes profiles this plugin may use (its "contexts"): name, server, protected.
    Contexts,
    /// The cluster's namespaces with their phase and age.
    Namespaces(Page),
    /// One object, in full (without `managedFields` unless asked).
    Get {
        /// The resource type: `pods`, `Pod`, `po`, `deployments.apps`, `applications.argoproj.io`.
        kind: String,
        /// The object's name.
        name: String,
        /// Keep `metadata.managedFields` (default false: they are long and rarely useful).
        managed_fields: Option<bool>,
    },
    /// Objects of one type as compact rows (name, namespace, age, status, ready, restarts):
    /// selectors, `limit` and `continue` as in the API; full objects come from `get`.
    List {
        /// The resource type, as for `get`.
        kind: String,
        /// Selectors and paging.
        #[serde(flatten)]
        page: Page,
        /// A field selector, e.g. `status.phase=Running` or `spec.nodeName=n1`.
        field_selector: Option<String>,
    },
    /// One object with its events and its owner chain (ReplicaSet → Deployment, …).
    Describe {
        /// The resource type, as for `get`.
        kind: String,
        /// The object's name.
        name: String,
    },
    /// Events of a namespace (or every namespace), or of one object (`kind` + `name`), newest
    /// first.
    Events {
        /// With `name`: the type of the object whose events to show.
        kind: Option<String>,
        /// With `kind`: the object whose events to show.
        name: Option<String>,
        /// Only `Warning` events (default false).
        warnings_only: Option<bool>,
        /// Events returned at most (default 50, at most 1000).
        limit: Option<u64>,
    },
    /// A pod's container log: the last `tail` lines (default 500) or the last `since_seconds`;
    /// the previous instance's with `previous`. Long logs go whole to an artifact.
    Logs {
        /// The pod's name.
        name: String,
        /// The container (needed when the pod has several and none is the default).
        container: Option<String>,
        /// Lines from the end (default 500 unless `since_seconds` is given; at most 100000).
        tail: Option<u64>,
        /// Only lines from the last this many seconds.
        since_seconds: Option<u64>,
        /// The previous, terminated instance of the container (after a crash or restart).
        previous: Option<bool>,
    },
    /// CPU and memory use from metrics.k8s.io (metrics-server), pods or nodes.
    Top {
        /// `pods` (default) or `nodes`.
        kind: Option<String>,
        /// A label selector for the pods or nodes.
        label_selector: Option<String>,
    },
    /// The usual suspects in a namespace or the whole cluster, each with its evidence:
    /// CrashLoopBackOff, ImagePullBackOff/ErrImagePull, OOMKilled, pending pods with the
    /// scheduler's reason, failed pods, not-ready nodes, rollouts that lag or stopped
    /// progressing.
    Diagnose {
        /// Pods examined at most (default 2000, at most 5000).
        limit: Option<u64>,
    },
}

/// Selectors and paging of a list.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct Page {
    /// A label selector, e.g. `app=web,tier!=db` or `env in (prod,stage)`.
    pub label_selector: Option<String>,
    /// Rows returned at most (default 100, at most 5000); the answer's `continue` resumes.
    pub limit: Option<u64>,
    /// The `continue` token of the previous answer, to get the next rows.
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
}

impl Page {
    /// `limit`, defaulted and checked.
    pub fn limit(&self) -> Result<u32, ToolError> {
        bounded("limit", self.limit, LIST_DEFAULT, LIST_MAX)
    }
}

/// `value` or `default`, refused when 0 or above `max` (naming the field and the bound).
pub fn bounded(field: &str, value: Option<u64>, default: u32, max: u32) -> Result<u32, ToolError> {
    match value {
        None => Ok(default),
        Some(v) if (1..=u64::from(max)).contains(&v) => Ok(v as u32),
        Some(v) => Err(ToolError::invalid(
            field,
            format!("{v} is out of range: give 1 to {max} (default {default})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_with_their_fields() {
        let a: K8sArgs = serde_json::from_value(json!({"action": "list", "profile": "lab",
            "kind": "pods", "label_selector": "app=web", "limit": 10, "continue": "abc"}))
        .unwrap();
        let Action::List { kind, page, .. } = a.action else {
            panic!("list")
        };
        assert_eq!(kind, "pods");
        assert_eq!(page.continue_token.as_deref(), Some("abc"));
        assert_eq!(page.limit().unwrap(), 10);
        let a: K8sArgs = serde_json::from_value(json!({"action": "contexts"})).unwrap();
        assert!(matches!(a.action, Action::Contexts));
    }

    #[test]
    fn limits_out_of_range_name_the_bound() {
        let e = bounded("limit", Some(1_000_000), 100, LIST_MAX).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("limit"));
        assert!(e.message.contains("1 to 5000"), "{e}");
        assert!(bounded("limit", Some(0), 100, LIST_MAX).is_err());
        assert_eq!(bounded("limit", None, 100, LIST_MAX).unwrap(), 100);
    }
}
