//! `plugin.toml`: a plugin's name, version and the `infra:host` interfaces it declares.

use serde::Deserialize;

use crate::cap::Cap;
use crate::flags::{Flags, UNSAFE_LOCAL_VAR};

/// A plugin's manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The plugin's name; policy sections are keyed by it (`[plugin.<name>]`).
    pub name: String,
    /// Its version.
    pub version: String,
    /// One line on what it does.
    #[serde(default)]
    pub description: String,
    /// The `infra:host` interfaces it may import, by short name (`http`, `log`, …).
    #[serde(default)]
    pub imports: Vec<String>,
    /// `unsafe = true`: the plugin is listed and callable only while `INFRA_UNSAFE_LOCAL=1`
    /// (the built-in `local` plugin, whose whole job is the unsafe mode of `exec` and `fs`).
    #[serde(default, rename = "unsafe")]
    pub needs_unsafe_flag: bool,
}

impl Manifest {
    /// Parses a manifest; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Self> {
        let m: Manifest = toml::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "{origin}: {}; a manifest has name, version, description, imports, unsafe",
                e.message()
            )
        })?;
        if m.name.is_empty()
            || !m
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            anyhow::bail!(
                "{origin}: name '{}' must be non-empty ASCII letters, digits, - or _",
                m.name
            );
        }
        for i in &m.imports {
            if !Cap::interfaces().any(|known| known == i) {
                let known: Vec<&str> = Cap::interfaces().collect();
                anyhow::bail!(
                    "{origin}: imports lists '{i}', which is not an infra:host interface; known: {}",
                    known.join(", ")
                );
            }
        }
        Ok(m)
    }

    /// Why the plugin is off under `flags`: `Some` for an `unsafe = true` plugin while
    /// `INFRA_UNSAFE_LOCAL` is not set, with what to do about it.
    pub fn gated(&self, flags: Flags) -> Option<String> {
        (self.needs_unsafe_flag && !flags.unsafe_local).then(|| {
            format!(
                "plugin '{}' is marked `unsafe = true` in its plugin.toml: it is listed and \
                 callable only while infra runs with {UNSAFE_LOCAL_VAR}=1, and it is off now; an \
                 operator who wants it restarts infra with {UNSAFE_LOCAL_VAR}=1 (it then reaches \
                 whatever its policy grant allows, up to the whole machine)",
                self.name
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: &str = "name = \"local\"\nversion = \"1\"\nimports = [\"exec\"]\nunsafe = true\n";

    #[test]
    fn an_unsafe_plugin_is_off_until_the_flag_is_on() {
        let m = Manifest::parse(LOCAL, "local.toml").expect("parses");
        assert!(m.needs_unsafe_flag);
        let why = m.gated(Flags::SAFE).expect("off without the flag");
        assert!(
            why.contains("INFRA_UNSAFE_LOCAL=1") && why.contains("plugin.toml"),
            "{why}"
        );
        let on = Flags {
            unsafe_local: true,
            ..Flags::SAFE
        };
        assert_eq!(m.gated(on), None);
    }

    #[test]
    fn a_plugin_is_safe_unless_it_says_otherwise() {
        let m = Manifest::parse("name = \"p\"\nversion = \"1\"\n", "p.toml").expect("parses");
        assert!(!m.needs_unsafe_flag);
        assert_eq!(m.gated(Flags::SAFE), None);
        let e = Manifest::parse(
            "name = \"p\"\nversion = \"1\"\nunsafe = \"yes\"\n",
            "p.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("p.toml"), "{e}");
    }
}
