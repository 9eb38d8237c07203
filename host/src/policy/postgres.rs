//! `[plugin.<name>.postgres]`: the Postgres profiles a plugin may use, and whether its sessions
//! are read-only.

use serde::Deserialize;
use serde_json::{Value, json};

use super::Policy;
use super::error::PolicyError;
use super::pattern::Glob;
use super::plugin::{CapGrant, strs};
use super::section::Section;

/// `[plugin.<name>.postgres]`: Postgres profiles, and whether every session is read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Profile names.
    pub profiles: Vec<Glob>,
    /// Forces read-only transactions whatever the call asks (default `true`).
    pub read_only: bool,
}

/// The section as serde reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    #[serde(default)]
    profiles: Vec<String>,
    read_only: Option<bool>,
}

impl CapGrant for Grant {
    type Raw = Raw;
    const TAKES_PROFILES: bool = true;

    fn load(raw: Raw, at: &Section<'_, '_>) -> Result<Self, PolicyError> {
        Ok(Grant {
            profiles: at.globs("profiles", &raw.profiles)?,
            read_only: raw.read_only.unwrap_or(true),
        })
    }

    fn summary(&self) -> Value {
        json!({"profiles": strs(&self.profiles), "read_only": self.read_only})
    }

    fn profiles(&self) -> &[Glob] {
        &self.profiles
    }
}

impl Policy {
    /// Whether every Postgres session of the plugin must be read-only (true without a grant).
    pub fn postgres_read_only(&self, plugin: &str) -> bool {
        self.plugin(plugin)
            .and_then(|p| p.postgres.as_ref())
            .is_none_or(|g| g.read_only)
    }
}
