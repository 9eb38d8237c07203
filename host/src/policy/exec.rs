//! `[plugin.<name>.exec]`: the programs a plugin may run, and where. The `exec` capability is in
//! the contract but not implemented: a plugin importing it is refused at load.

use serde::Deserialize;
use serde_json::{Value, json};

use super::error::PolicyError;
use super::pattern::Glob;
use super::plugin::{CapGrant, strs};
use super::section::Section;
use super::{Decision, Policy};
use crate::flags::Flags;

/// `[plugin.<name>.exec]`: programs the plugin may run, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Program names.
    pub programs: Vec<Glob>,
    /// Root names a program's working directory may lie in.
    pub roots: Vec<Glob>,
    /// `unsafe = true`: any program, but only while `INFRA_UNSAFE_LOCAL=1`.
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
    #[serde(rename = "unsafe")]
    allow_unsafe: Option<bool>,
}

impl CapGrant for Grant {
    type Raw = Raw;

    fn load(raw: Raw, at: &Section<'_, '_>) -> Result<Self, PolicyError> {
        Ok(Grant {
            programs: at.globs("programs", &raw.programs)?,
            roots: at.globs("roots", &raw.roots)?,
            allow_unsafe: raw.allow_unsafe.unwrap_or(false),
        })
    }

    fn summary(&self) -> Value {
        json!({"programs": strs(&self.programs), "roots": strs(&self.roots), "unsafe": self.allow_unsafe,
               "unsafe_requires_flag": "INFRA_UNSAFE_LOCAL"})
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
        if !decision.is_allowed() && self.exec_unsafe(plugin, flags) {
            return Decision::Allow;
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

    /// Whether the plugin's exec may leave its allowlists: `unsafe = true` and the flag.
    pub fn exec_unsafe(&self, plugin: &str, flags: &Flags) -> bool {
        flags.unsafe_local
            && self
                .plugin(plugin)
                .and_then(|p| p.exec.as_ref())
                .is_some_and(|g| g.allow_unsafe)
    }
}
