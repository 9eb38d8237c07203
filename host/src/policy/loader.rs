//! The loader: turns the file as serde reads it into a checked [`Policy`], naming the file, the
//! section and the line on any error.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::de::DeTable;

use super::error::{Doc, PolicyError, line_at, serde_error};
use super::limits::{self, MAX_MEMORY_MIB, RawLimits};
use super::plugin::{PluginPolicy, RawPlugin};
use super::programs::{RawProgram, programs};
use super::roots::{RawRoot, roots};
use super::secrets::secret_map;
use super::{Limits, Policy};

/// The file as serde sees it; every struct of the format refuses unknown keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    limits: Option<RawLimits>,
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    #[serde(default)]
    roots: BTreeMap<String, RawRoot>,
    #[serde(default)]
    programs: BTreeMap<String, RawProgram>,
    #[serde(default)]
    plugin: BTreeMap<String, RawPlugin>,
}

/// Parses and validates a policy; `origin` names it in messages.
pub(super) fn load(text: &str, origin: &str) -> Result<Policy, PolicyError> {
    let table = DeTable::parse(text).map_err(|e| PolicyError::Syntax {
        origin: origin.to_string(),
        line: e.span().map(|s| line_at(text, s.start)),
        message: e.message().to_string(),
    })?;
    let raw: RawPolicy =
        toml::from_str(text).map_err(|e| serde_error(&e, table.get_ref(), text, origin))?;
    let doc = Doc {
        text,
        origin,
        table: table.get_ref(),
    };
    let limits = limits::load(&doc, raw.limits)?;
    let secrets = secret_map(&doc, raw.secrets)?;
    let roots = roots(&doc, raw.roots)?;
    let programs = programs(&doc, raw.programs)?;
    let mut plugins = BTreeMap::new();
    for (name, rp) in raw.plugin {
        let p = plugin(&doc, &name, rp, &limits)?;
        plugins.insert(name, p);
    }
    Ok(Policy {
        origin: origin.to_string(),
        limits,
        secrets,
        roots,
        programs,
        plugins,
    })
}

/// `[plugin.<name>]`: the plugin's own keys here, each capability section by its
/// [`super::CapGrant`].
fn plugin(
    doc: &Doc<'_>,
    name: &str,
    raw: RawPlugin,
    limits: &Limits,
) -> Result<PluginPolicy, PolicyError> {
    let path = ["plugin", name];
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(doc.invalid(&path, None, None, format!(
            "'{name}' is not a plugin name; plugin names are letters, digits, '-' and '_', as in plugin.toml"
        )));
    }
    let sha256 = match &raw.sha256 {
        None => None,
        Some(s) => {
            let hex = s.to_ascii_lowercase();
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(doc.invalid(&path, Some("sha256"), None, format!(
                    "'{s}' is not a sha256; give the 64 hex digits `infra plugins` shows for the binary"
                )));
            }
            Some(hex)
        }
    };
    if let Some(t) = raw.timeout_ms
        && (t == 0 || t > limits.max_timeout_ms)
    {
        return Err(doc.invalid(
            &path,
            Some("timeout_ms"),
            None,
            format!(
                "{t} is outside 1..={} (limits.max_timeout_ms); pick a value in that range",
                limits.max_timeout_ms
            ),
        ));
    }
    if let Some(m) = raw.memory_mib
        && (m == 0 || m > MAX_MEMORY_MIB)
    {
        return Err(doc.invalid(
            &path,
            Some("memory_mib"),
            None,
            format!("{m} is outside 1..={MAX_MEMORY_MIB} MiB; pick a value in that range"),
        ));
    }
    PluginPolicy::load(doc, name, sha256, raw)
}
