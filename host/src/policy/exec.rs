//! `[plugin.<name>.exec]`: the programs a plugin may run, where, with which variables,
//! credentials and network.

use serde::Deserialize;
use serde_json::{Value, json};

use super::error::PolicyError;
use super::pattern::Glob;
use super::plugin::{CapGrant, strs};
use super::section::Section;
use super::{Decision, Policy};
use crate::flags::Flags;

/// `[plugin.<name>.exec]`: programs the plugin may run, and how they are confined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Program names of `[programs]`.
    pub programs: Vec<Glob>,
    /// Root names a program may run in (and may write under, unless read-only).
    pub roots: Vec<Glob>,
    /// Environment variable names the plugin may set.
    pub env: Vec<Glob>,
    /// Profiles of `profiles.json` whose credentials the host may inject.
    pub profiles: Vec<Glob>,
    /// TCP allowed (default `false`: Landlock refuses every connect and bind).
    pub network: bool,
    /// The roots are mounted read-only for the program (default `true`).
    pub read_only: bool,
    /// `unsafe = true`: any program and any path, but only while `INFRA_UNSAFE_LOCAL=1`.
    pub allow_unsafe: bool,
}

/// The section as serde reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    #[serde(default)]
    programs: Vec<String>,
    #[serde(default)]
    roots: Vec<String>,
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    profiles: Vec<String>,
    network: Option<bool>,
    read_only: Option<bool>,
    #[serde(rename = "unsafe")]
    allow_unsafe: Option<bool>,
}

impl CapGrant for Grant {
    type Raw = Raw;
    const TAKES_PROFILES: bool = true;

    fn load(raw: Raw, at: &Section<'_, '_>) -> Result<Self, PolicyError> {
        Ok(Grant {
            programs: at.globs("programs", &raw.programs)?,
            roots: at.globs("roots", &raw.roots)?,
            env: at.globs("env", &raw.env)?,
            profiles: at.globs("profiles", &raw.profiles)?,
            network: raw.network.unwrap_or(false),
            read_only: raw.read_only.unwrap_or(true),
            allow_unsafe: raw.allow_unsafe.unwrap_or(false),
        })
    }

    fn summary(&self) -> Value {
        json!({"programs": strs(&self.programs), "roots": strs(&self.roots), "env": strs(&self.env),
               "profiles": strs(&self.profiles), "network": self.network, "read_only": self.read_only,
               "unsafe": self.allow_unsafe, "unsafe_requires_flag": "INFRA_UNSAFE_LOCAL"})
    }

    fn profiles(&self) -> &[Glob] {
        &self.profiles
    }
}

impl Policy {
    /// Whether the plugin may run `program`: listed in `programs`, or `unsafe = true` with
    /// `INFRA_UNSAFE_LOCAL=1`.
    pub fn check_exec_program(&self, plugin: &str, program: &str, flags: &Flags) -> Decision {
        let grant = self.plugin(plugin).and_then(|p| p.exec.as_ref());
        let decision = self.check_names(
            grant.map(|g| g.programs.as_slice()),
            program,
            &format!("plugin '{plugin}' has no grant for program '{program}'; add it under [plugin.{plugin}.exec] programs in"),
        );
        if decision.is_allowed() {
            return decision;
        }
        if self.exec_unsafe(plugin, flags) {
            return Decision::Allow;
        }
        if grant.is_some_and(|g| g.allow_unsafe) {
            // The operator granted unsafe exec; only the flag is missing, so say that.
            return Decision::Deny(format!(
                "policy: plugin '{plugin}' may run '{program}' only through its `unsafe = true` grant, \
                 which takes effect only while infra runs with INFRA_UNSAFE_LOCAL=1 (it is off); \
                 restart infra with INFRA_UNSAFE_LOCAL=1 to allow it, or grant '{program}' under \
                 [plugin.{plugin}.exec] programs in {}",
                self.edit_target()
            ));
        }
        decision
    }

    /// Whether the plugin may run a program with its working directory in root `root`.
    pub fn check_exec_root(&self, plugin: &str, root: &str) -> Decision {
        let globs = self
            .plugin(plugin)
            .and_then(|p| p.exec.as_ref())
            .map(|g| g.roots.as_slice());
        self.check_names(
            globs,
            root,
            &format!("plugin '{plugin}' has no grant for exec root '{root}'; add it under [plugin.{plugin}.exec] roots in"),
        )
    }

    /// Whether the plugin may set environment variable `name` for its programs.
    pub fn check_exec_env(&self, plugin: &str, name: &str) -> Decision {
        let globs = self
            .plugin(plugin)
            .and_then(|p| p.exec.as_ref())
            .map(|g| g.env.as_slice());
        self.check_names(
            globs,
            name,
            &format!("plugin '{plugin}' may not set variable '{name}'; add it under [plugin.{plugin}.exec] env in"),
        )
    }

    /// The plugin's exec grant, when it has one.
    pub fn exec_grant(&self, plugin: &str) -> Option<&Grant> {
        self.plugin(plugin).and_then(|p| p.exec.as_ref())
    }

    /// Whether the plugin's exec may leave its allowlists: `unsafe = true` and the flag.
    pub fn exec_unsafe(&self, plugin: &str, flags: &Flags) -> bool {
        flags.unsafe_local && self.exec_grant(plugin).is_some_and(|g| g.allow_unsafe)
    }
}
