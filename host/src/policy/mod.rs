//! The policy: what each plugin may reach, read from TOML. Deny by default.
//!
//! A plugin with no `[plugin.<name>]` section is granted nothing; a section grants only the
//! capability sub-sections it contains. Every key the format accepts is enforced by one of the
//! checks below, and every other key is refused at load, naming the key and the file, so a
//! reviewer never reads a setting that silently does nothing. Patterns (hosts, CIDRs, ports,
//! globs, pins) are validated at load too: a policy that loads is one the checks understand.
//!
//! The checks return a [`Decision`]; a denial carries advice for the operator, because the agent
//! that triggered it cannot change the policy and needs to say what would.
//!
//! One module per idea: [`error`] (why a policy did not load, and where), [`pattern`] (the pure
//! matcher: globs, host patterns, canonical addresses), [`limits`], the loader, the operator's
//! `[roots]` and `[programs]` tables, and one module per capability (its section's format, check and summary, behind [`CapGrant`]), named like
//! the capability in [`crate::cap`].

mod artifacts;
mod error;
mod exec;
mod fs;
mod git;
mod guard;
mod http;
mod kubernetes;
mod limits;
mod loader;
mod log;
mod pattern;
mod plugin;
mod postgres;
mod programs;
mod roots;
mod secrets;
mod section;
mod ssh;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde_json::{Value, json};

pub use error::PolicyError;
pub use limits::Limits;
pub use pattern::{Glob, HostPattern};
pub use plugin::{CapGrant, PluginPolicy};
pub use programs::Program;
pub use roots::{Root, START_DIR, UNSAFE_ROOT};
pub use secrets::check_secret_name;
pub use section::Section;

use crate::cap::Cap;
use crate::profiles::SecretRef;

/// The locked-down policy compiled into the binary, used when the state directory has none.
pub const DEFAULT_POLICY: &str = include_str!("../../../policies/default.toml");

/// How messages name the embedded default policy.
pub const EMBEDDED_ORIGIN: &str = "embedded default";

/// The outcome of a policy check.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The plugin may go ahead.
    Allow,
    /// The plugin may not; the text says why and what the operator would change.
    Deny(String),
}

impl Decision {
    /// Whether the check passed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    /// The denial's reason, if denied.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Decision::Allow => None,
            Decision::Deny(reason) => Some(reason),
        }
    }

    /// `Ok(())` when allowed, else the reason, for `?` in capability code.
    pub fn into_result(self) -> Result<(), String> {
        match self {
            Decision::Allow => Ok(()),
            Decision::Deny(reason) => Err(reason),
        }
    }
}

/// A loaded, validated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    origin: String,
    limits: Limits,
    /// `[secrets]`: logical secret names → references, written by the operator.
    secrets: BTreeMap<String, SecretRef>,
    /// `[roots]`: root names → directories, for `fs` and `exec`.
    roots: BTreeMap<String, Root>,
    /// `[programs]`: program names → binaries, for `exec`.
    programs: BTreeMap<String, Program>,
    plugins: BTreeMap<String, PluginPolicy>,
}

impl Policy {
    /// Parses and validates a policy; `origin` (a path, or [`EMBEDDED_ORIGIN`]) names it in
    /// messages.
    pub fn load(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        loader::load(text, origin)
    }

    /// The policy compiled into the binary.
    pub fn embedded_default() -> Result<Policy, PolicyError> {
        Policy::load(DEFAULT_POLICY, EMBEDDED_ORIGIN)
    }

    /// Where the policy came from: a file path or [`EMBEDDED_ORIGIN`].
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The global limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The grants of one plugin, if the policy has a section for it.
    pub fn plugin(&self, name: &str) -> Option<&PluginPolicy> {
        self.plugins.get(name)
    }

    /// The names of every plugin the policy has a section for, sorted.
    pub fn plugin_names(&self) -> impl Iterator<Item = &str> {
        self.plugins.keys().map(String::as_str)
    }

    /// The sha256 a plugin's wasm must have, if the policy pins it.
    pub fn sha256_pin(&self, plugin: &str) -> Option<&str> {
        self.plugin(plugin)?.sha256.as_deref()
    }

    /// The deadline of one call: the call's own `timeout_ms`, else the plugin's, else the
    /// default, clamped to `1..=max_timeout_ms`.
    pub fn call_timeout_ms(&self, plugin: Option<&str>, requested: Option<u64>) -> u64 {
        let plugin_default = plugin.and_then(|p| self.plugin(p)?.timeout_ms);
        requested
            .or(plugin_default)
            .unwrap_or(self.limits.timeout_ms)
            .clamp(1, self.limits.max_timeout_ms)
    }

    /// The plugin's default deadline: its own `timeout_ms`, else `limits.timeout_ms`.
    pub fn timeout_ms(&self, plugin: &str) -> u64 {
        self.plugin(plugin)
            .and_then(|p| p.timeout_ms)
            .unwrap_or(self.limits.timeout_ms)
    }

    /// The linear memory limit for one instance of the plugin, in MiB (a `usize`, because the
    /// runtime sizes memory in host bytes; the value is at most 4096).
    pub fn memory_mib(&self, plugin: &str) -> usize {
        let mib = self
            .plugin(plugin)
            .and_then(|p| p.memory_mib)
            .unwrap_or(self.limits.memory_mib);
        // Load-time validation caps every value at MAX_MEMORY_MIB, so this never saturates.
        usize::try_from(mib).unwrap_or(usize::MAX)
    }

    /// Whether the plugin has the capability's section at all (`artifacts`, `log`, ...).
    pub fn check_cap(&self, plugin: &str, cap: &str) -> Decision {
        let Some(p) = self.plugin(plugin) else {
            return self.deny(format!(
                "plugin '{plugin}' has no grant for capability '{cap}'; add [plugin.{plugin}.{cap}] to"
            ));
        };
        let Some(known) = Cap::parse(cap) else {
            let caps: Vec<&str> = Cap::ALL.iter().map(|c| c.name()).collect();
            return Decision::Deny(format!(
                "policy: '{cap}' is not a capability; capabilities are {}",
                caps.join(", ")
            ));
        };
        if p.has(known) {
            Decision::Allow
        } else {
            self.deny(format!(
                "plugin '{plugin}' has no grant for capability '{cap}'; add [plugin.{plugin}.{cap}] to"
            ))
        }
    }

    /// Whether the plugin may name `profile` through capability `cap` (`http` or `postgres`).
    pub fn check_profile(&self, plugin: &str, cap: &str, profile: &str) -> Decision {
        let Some(cap) = Cap::parse(cap).filter(|c| plugin::takes_profiles(*c)) else {
            let takers: Vec<&str> = Cap::ALL
                .iter()
                .filter(|c| plugin::takes_profiles(**c))
                .map(|c| c.name())
                .collect();
            return Decision::Deny(format!(
                "policy: capability '{cap}' takes no profiles; profiles belong to {}",
                takers.join(" and ")
            ));
        };
        let globs = self.plugin(plugin).and_then(|p| p.profiles(cap));
        self.check_names(
            globs,
            profile,
            &format!("plugin '{plugin}' has no grant for {cap} profile '{profile}'; add it under [plugin.{plugin}.{cap}] profiles in"),
        )
    }

    /// What the policy grants the plugin, as JSON for `infra plugins` and reviewers.
    pub fn grants_summary(&self, plugin: &str) -> Value {
        let limits = json!({
            "timeout_ms": self.call_timeout_ms(Some(plugin), None),
            "max_timeout_ms": self.limits.max_timeout_ms,
            "memory_mib": self.memory_mib(plugin),
        });
        let Some(p) = self.plugin(plugin) else {
            return json!({
                "plugin": plugin,
                "policy": self.origin,
                "granted": false,
                "sha256_pin": null,
                "limits": limits,
                "caps": {},
                "advice": format!(
                    "the policy grants plugin '{plugin}' nothing; add [plugin.{plugin}.<capability>] sections to {}",
                    self.edit_target()
                ),
            });
        };
        let caps = p.summaries();
        json!({
            "plugin": plugin,
            "policy": self.origin,
            "granted": !caps.is_empty(),
            "sha256_pin": p.sha256,
            "limits": limits,
            "caps": caps,
        })
    }

    /// Allows `name` when one of `globs` matches it, else denies with `advice`.
    fn check_names(&self, globs: Option<&[Glob]>, name: &str, advice: &str) -> Decision {
        match globs {
            Some(globs) if globs.iter().any(|g| g.matches(name)) => Decision::Allow,
            _ => self.deny(advice.to_string()),
        }
    }

    /// Builds a denial whose advice ends with where to make the change ("... in"/"... to" + it).
    fn deny(&self, advice: String) -> Decision {
        Decision::Deny(format!("policy: {advice} {}", self.edit_target()))
    }

    /// The file an operator edits to change this policy. The embedded default cannot be edited,
    /// so advice then points at the state directory's policy.toml, which replaces it.
    pub(crate) fn edit_target(&self) -> String {
        if self.origin == EMBEDDED_ORIGIN {
            "policy.toml in the state directory (it replaces the embedded default; start from a copy of policies/default.toml)".to_string()
        } else {
            self.origin.clone()
        }
    }
}
