//! `[plugin.<name>.ssh]`: the `targets.json` entries a plugin may use.

use serde::Deserialize;
use serde_json::{Value, json};

use super::error::PolicyError;
use super::pattern::Glob;
use super::plugin::{CapGrant, strs};
use super::section::Section;
use super::{Decision, Policy};

/// `[plugin.<name>.ssh]`: the `targets.json` entries the plugin may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Target names.
    pub targets: Vec<Glob>,
}

/// The section as serde reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    #[serde(default)]
    targets: Vec<String>,
}

impl CapGrant for Grant {
    type Raw = Raw;

    fn load(raw: Raw, at: &Section<'_, '_>) -> Result<Self, PolicyError> {
        Ok(Grant {
            targets: at.globs("targets", &raw.targets)?,
        })
    }

    fn summary(&self) -> Value {
        json!({"targets": strs(&self.targets)})
    }
}

impl Policy {
    /// Whether the plugin may use SSH target `target` of `targets.json`.
    pub fn check_ssh_target(&self, plugin: &str, target: &str) -> Decision {
        let globs = self
            .plugin(plugin)
            .and_then(|p| p.ssh.as_ref())
            .map(|g| g.targets.as_slice());
        self.check_names(
            globs,
            target,
            &format!("plugin '{plugin}' has no grant for ssh target '{target}'; add it under [plugin.{plugin}.ssh] targets in"),
        )
    }
}
