//! `[plugin.<name>.git]`: the remotes a plugin may push to, with which credentials, and whether
//! it may force-push.

use serde::Deserialize;
use serde_json::{Value, json};

use super::error::PolicyError;
use super::pattern::Glob;
use super::plugin::{CapGrant, strs};
use super::section::Section;
use super::{Decision, Policy};

/// `[plugin.<name>.git]`: where the plugin may push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Remote URL patterns, matched against the URL git would push to.
    pub remotes: Vec<Glob>,
    /// Profiles of `profiles.json` whose credentials the host may inject.
    pub profiles: Vec<Glob>,
    /// Force pushes allowed (default `false`).
    pub force: bool,
}

/// The section as serde reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    #[serde(default)]
    remotes: Vec<String>,
    #[serde(default)]
    profiles: Vec<String>,
    force: Option<bool>,
}

impl CapGrant for Grant {
    type Raw = Raw;
    const TAKES_PROFILES: bool = true;

    fn load(raw: Raw, at: &Section<'_, '_>) -> Result<Self, PolicyError> {
        Ok(Grant {
            remotes: at.globs("remotes", &raw.remotes)?,
            profiles: at.globs("profiles", &raw.profiles)?,
            force: raw.force.unwrap_or(false),
        })
    }

    fn summary(&self) -> Value {
        json!({"remotes": strs(&self.remotes), "profiles": strs(&self.profiles), "force": self.force})
    }

    fn profiles(&self) -> &[Glob] {
        &self.profiles
    }
}

impl Policy {
    /// Whether the plugin may push to `url` (the URL git would use, after rewriting).
    pub fn check_git_remote(&self, plugin: &str, url: &str) -> Decision {
        let globs = self
            .plugin(plugin)
            .and_then(|p| p.git.as_ref())
            .map(|g| g.remotes.as_slice());
        self.check_names(
            globs,
            url,
            &format!("plugin '{plugin}' may not push to '{url}'; add a pattern matching it under [plugin.{plugin}.git] remotes in"),
        )
    }

    /// Whether the plugin may force-push.
    pub fn git_force(&self, plugin: &str) -> bool {
        self.plugin(plugin)
            .and_then(|p| p.git.as_ref())
            .is_some_and(|g| g.force)
    }
}
