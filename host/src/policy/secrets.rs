//! Secrets in the policy: the top-level `[secrets]` map from logical names to references, and
//! `[plugin.<name>.secrets]`, the logical names a plugin may read.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{Doc, PolicyError};
use super::pattern::Glob;
use super::plugin::{CapGrant, strs};
use super::section::Section;
use super::{Decision, Policy};
use crate::profiles::SecretRef;

/// `[plugin.<name>.secrets]`: secret names the plugin may read (only with secret export on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Secret names.
    pub names: Vec<Glob>,
}

/// The section as serde reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    #[serde(default)]
    names: Vec<String>,
}

impl CapGrant for Grant {
    type Raw = Raw;

    /// Grants of `names` are globs over logical names, never references.
    fn load(raw: Raw, at: &Section<'_, '_>) -> Result<Self, PolicyError> {
        for (i, g) in raw.names.iter().enumerate() {
            if g.contains([':', '/']) {
                return Err(at.invalid("names", Some(i), format!(
                    "'{g}' looks like a reference; grant logical names, and map each to its reference under [secrets] (e.g. acme-key = \"file:/run/secrets/acme\")"
                )));
            }
        }
        Ok(Grant {
            names: at.globs("names", &raw.names)?,
        })
    }

    fn summary(&self) -> Value {
        json!({"names": strs(&self.names), "requires_flag": "INFRA_ALLOW_SECRET_EXPORT"})
    }
}

/// `[secrets]`: every name a logical name, every reference `env:VAR` or an absolute `file:`
/// path with no `.`/`..` components (a grant must mean one file, not a family of paths that
/// walk out of a directory).
pub(super) fn secret_map(
    doc: &Doc<'_>,
    raw: BTreeMap<String, String>,
) -> Result<BTreeMap<String, SecretRef>, PolicyError> {
    let mut map = BTreeMap::new();
    for (name, reference) in raw {
        if let Err(why) = check_secret_name(&name) {
            return Err(doc.invalid(&["secrets"], Some(&name), None, why));
        }
        let r = SecretRef::try_from(reference)
            .and_then(|r| r.canonical())
            .map_err(|why| doc.invalid(&["secrets"], Some(&name), None, why))?;
        map.insert(name, r);
    }
    Ok(map)
}

impl Policy {
    /// The reference the operator mapped the logical secret `name` to under `[secrets]`.
    pub fn secret_ref(&self, name: &str) -> Option<&SecretRef> {
        self.secrets.get(name)
    }

    /// May `plugin` read the secret named `name` (a logical name of `[secrets]`)? A grant alone
    /// releases nothing: the caller — the secrets capability — must also require
    /// `INFRA_ALLOW_SECRET_EXPORT=1`, because flags are enforced in `caps` whatever the policy
    /// says.
    pub fn check_secret(&self, plugin: &str, name: &str) -> Decision {
        if let Err(why) = check_secret_name(name) {
            return Decision::Deny(format!("policy: secret name '{name}': {why}"));
        }
        let globs = self
            .plugin(plugin)
            .and_then(|p| p.secrets.as_ref())
            .map(|g| g.names.as_slice());
        self.check_names(
            globs,
            name,
            &format!("plugin '{plugin}' has no grant for secret '{name}'; add it under [plugin.{plugin}.secrets] names in"),
        )
    }
}

/// A logical secret name: letters, digits, `.`, `_`, `-`, starting with a letter or digit, at
/// most 128 bytes — so it can never be read as a path or a reference.
pub fn check_secret_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err("a secret name is a logical name (letters, digits, '.', '_', '-'; starts with a letter or digit; at most 128 bytes) that the operator maps to a reference under [secrets]".into())
    }
}
