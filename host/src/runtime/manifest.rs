//! `plugin.toml`: a plugin's name, version and the `infra:host` interfaces it declares.

use serde::Deserialize;

use crate::cap::Cap;

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
}

impl Manifest {
    /// Parses a manifest; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Self> {
        let m: Manifest = toml::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "{origin}: {}; a manifest has name, version, description, imports",
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
}
