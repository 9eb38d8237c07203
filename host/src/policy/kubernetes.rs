//! `[plugin.<name>.kubernetes]`: refines the `http` grant for `kubernetes` profiles — the
//! namespaces the plugin may write to. Not a capability of its own (a plugin reaches a cluster
//! through `http`); the guard reads it when it approves a write. Deny by default: no section,
//! or an empty list, means no Kubernetes writes.

use serde::Deserialize;
use serde_json::{Value, json};

use super::error::PolicyError;
use super::pattern::Glob;
use super::plugin::strs;
use super::section::Section;
use super::{Decision, Policy};

/// The section's name under `[plugin.<name>]`.
pub const SECTION: &str = "kubernetes";

/// `[plugin.<name>.kubernetes]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Namespace patterns the plugin may write to; `"*"` also allows cluster-scoped objects.
    pub write_namespaces: Vec<Glob>,
}

/// The section as serde reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    #[serde(default)]
    write_namespaces: Vec<String>,
}

impl Grant {
    /// Checks the raw section; errors name the file, the section and the line.
    pub(super) fn load(raw: Raw, at: &Section<'_, '_>) -> Result<Self, PolicyError> {
        Ok(Grant {
            write_namespaces: at.globs("write_namespaces", &raw.write_namespaces)?,
        })
    }

    /// What the section grants, for `infra plugins`.
    pub(super) fn summary(&self) -> Value {
        json!({"write_namespaces": strs(&self.write_namespaces)})
    }
}

impl Policy {
    /// Whether the plugin may write into namespace `ns` of a cluster; `""` stands for
    /// cluster-scoped objects, which only a `"*"` entry allows (a pattern for namespaces is not
    /// a grant to change the cluster itself).
    pub fn check_write_namespace(&self, plugin: &str, ns: &str) -> Decision {
        let globs = self
            .plugin(plugin)
            .and_then(|p| p.kubernetes.as_ref())
            .map(|k| k.write_namespaces.as_slice())
            .unwrap_or_default();
        let allowed = match ns {
            "" => globs.iter().any(|g| g.as_str() == "*"),
            _ => globs.iter().any(|g| g.matches(ns)),
        };
        if allowed {
            return Decision::Allow;
        }
        let what = match ns {
            "" => format!(
                "cluster-scoped objects (no namespace); only \"*\" under [plugin.{plugin}.kubernetes] write_namespaces allows them, in"
            ),
            _ => format!(
                "namespace '{ns}'; add a pattern matching it under [plugin.{plugin}.kubernetes] write_namespaces in"
            ),
        };
        self.deny(format!("plugin '{plugin}' may not write to {what}"))
    }
}
