//! `[plugin.<name>.fs]`: the named roots a plugin may use through `infra:host/fs`
//! (`host/src/caps/fs`), whether it may write under them, and whether it may name `/`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::error::PolicyError;
use super::pattern::Glob;
use super::plugin::{CapGrant, strs};
use super::section::Section;
use super::{Decision, Policy};
use crate::flags::Flags;

/// `[plugin.<name>.fs]`: named roots the plugin may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Root names.
    pub roots: Vec<Glob>,
    /// Only reads (default `true`).
    pub read_only: bool,
    /// `unsafe = true`: any path, but only while `INFRA_UNSAFE_LOCAL=1`.
    pub allow_unsafe: bool,
}

/// The section as serde reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    #[serde(default)]
    roots: Vec<String>,
    read_only: Option<bool>,
    #[serde(rename = "unsafe")]
    allow_unsafe: Option<bool>,
}

impl CapGrant for Grant {
    type Raw = Raw;

    fn load(raw: Raw, at: &Section<'_, '_>) -> Result<Self, PolicyError> {
        Ok(Grant {
            roots: at.globs("roots", &raw.roots)?,
            read_only: raw.read_only.unwrap_or(true),
            allow_unsafe: raw.allow_unsafe.unwrap_or(false),
        })
    }

    fn summary(&self) -> Value {
        json!({"roots": strs(&self.roots), "read_only": self.read_only, "unsafe": self.allow_unsafe,
               "unsafe_requires_flag": "INFRA_UNSAFE_LOCAL"})
    }
}

impl Policy {
    /// Whether the plugin may use fs root `root`.
    pub fn check_fs_root(&self, plugin: &str, root: &str) -> Decision {
        let globs = self
            .plugin(plugin)
            .and_then(|p| p.fs.as_ref())
            .map(|g| g.roots.as_slice());
        self.check_names(
            globs,
            root,
            &format!("plugin '{plugin}' has no grant for fs root '{root}'; add it under [plugin.{plugin}.fs] roots in"),
        )
    }

    /// Whether the plugin's fs access is read-only (true without a grant).
    pub fn fs_read_only(&self, plugin: &str) -> bool {
        self.plugin(plugin)
            .and_then(|p| p.fs.as_ref())
            .is_none_or(|g| g.read_only)
    }

    /// Whether the plugin's fs access may leave its roots: `unsafe = true` and the flag.
    pub fn fs_unsafe(&self, plugin: &str, flags: &Flags) -> bool {
        flags.unsafe_local
            && self
                .plugin(plugin)
                .and_then(|p| p.fs.as_ref())
                .is_some_and(|g| g.allow_unsafe)
    }
}
