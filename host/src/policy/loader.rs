//! The loader: turns the file as serde reads it into a checked [`Policy`], naming the file, the
//! section and the line on any error.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::de::DeTable;

use super::error::{PolicyError, line_at, locate, section_name, serde_error};
use super::limits::{MAX_MEMORY_MIB, RawLimits};
use super::pattern::{Glob, HostPattern};
use super::plugin::{PluginPolicy, RawPlugin};
use super::{Limits, Policy};
use crate::cap::Cap;

/// The file as serde sees it; every struct of the format refuses unknown keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    limits: Option<RawLimits>,
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    #[serde(default)]
    plugin: BTreeMap<String, RawPlugin>,
}

/// Parses and validates a policy; `origin` names it in messages.
pub(super) fn load(text: &str, origin: &str) -> Result<Policy, PolicyError> {
    let doc = DeTable::parse(text).map_err(|e| PolicyError::Syntax {
        origin: origin.to_string(),
        line: e.span().map(|s| line_at(text, s.start)),
        message: e.message().to_string(),
    })?;
    let raw: RawPolicy =
        toml::from_str(text).map_err(|e| serde_error(&e, doc.get_ref(), text, origin))?;
    Loader {
        text,
        origin,
        doc: doc.get_ref(),
    }
    .build(raw)
}

/// Turns raw serde values into checked grants, naming file, section and line on any error.
pub(super) struct Loader<'a> {
    text: &'a str,
    origin: &'a str,
    doc: &'a DeTable<'a>,
}

/// One `[plugin.<name>.<cap>]` section being loaded, for a capability's [`super::CapGrant`]:
/// its errors name the file, the section and the line.
pub struct Section<'s, 'l> {
    loader: &'s Loader<'l>,
    path: [&'s str; 3],
}

impl Section<'_, '_> {
    /// The name of the plugin the section belongs to.
    pub fn plugin(&self) -> &str {
        self.path[1]
    }

    /// The error of a bad value under `key` (element `index` of a list), with `message` saying
    /// what is wrong and how to write it instead.
    pub fn invalid(&self, key: &str, index: Option<usize>, message: String) -> PolicyError {
        self.loader.invalid(&self.path, Some(key), index, message)
    }

    /// The name patterns listed under `key`.
    pub fn globs(&self, key: &str, raw: &[String]) -> Result<Vec<Glob>, PolicyError> {
        self.loader.globs(&self.path, key, raw)
    }

    /// The host patterns listed under `key`.
    pub fn hosts(&self, key: &str, raw: &[String]) -> Result<Vec<HostPattern>, PolicyError> {
        raw.iter()
            .enumerate()
            .map(|(i, h)| {
                HostPattern::parse(h).map_err(|why| {
                    self.invalid(
                        key,
                        Some(i),
                        format!("host pattern '{h}' is malformed: {why}"),
                    )
                })
            })
            .collect()
    }
}

impl<'l> Loader<'l> {
    fn build(&self, raw: RawPolicy) -> Result<Policy, PolicyError> {
        let limits = self.limits(raw.limits)?;
        let secrets = self.secret_map(raw.secrets)?;
        let mut plugins = BTreeMap::new();
        for (name, rp) in raw.plugin {
            let p = self.plugin(&name, rp, &limits)?;
            plugins.insert(name, p);
        }
        Ok(Policy {
            origin: self.origin.to_string(),
            limits,
            secrets,
            plugins,
        })
    }

    /// The section of capability `cap` in `[plugin.<plugin>]`.
    pub(super) fn section<'s>(&'s self, plugin: &'s str, cap: Cap) -> Section<'s, 'l> {
        Section {
            loader: self,
            path: ["plugin", plugin, cap.name()],
        }
    }

    /// The error of a bad value at `path` (under `key`, element `index`), located in the file.
    pub(super) fn invalid(
        &self,
        path: &[&str],
        key: Option<&str>,
        index: Option<usize>,
        message: String,
    ) -> PolicyError {
        let section = section_name(path);
        let place = match key {
            Some(k) => format!("{k} in {section}"),
            None => section,
        };
        let mut full: Vec<&str> = path.to_vec();
        full.extend(key);
        PolicyError::Invalid {
            origin: self.origin.to_string(),
            place,
            line: locate(self.doc, &full, index).map(|s| line_at(self.text, s.start)),
            message,
        }
    }

    /// `[plugin.<name>]`: the plugin's own keys here, each capability section by its
    /// [`super::CapGrant`].
    fn plugin(
        &self,
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
            return Err(self.invalid(&path, None, None, format!(
                "'{name}' is not a plugin name; plugin names are letters, digits, '-' and '_', as in plugin.toml"
            )));
        }
        let sha256 = match &raw.sha256 {
            None => None,
            Some(s) => {
                let hex = s.to_ascii_lowercase();
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(self.invalid(&path, Some("sha256"), None, format!(
                        "'{s}' is not a sha256; give the 64 hex digits `infra plugins` shows for the binary"
                    )));
                }
                Some(hex)
            }
        };
        if let Some(t) = raw.timeout_ms
            && (t == 0 || t > limits.max_timeout_ms)
        {
            return Err(self.invalid(
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
            return Err(self.invalid(
                &path,
                Some("memory_mib"),
                None,
                format!("{m} is outside 1..={MAX_MEMORY_MIB} MiB; pick a value in that range"),
            ));
        }
        PluginPolicy::load(self, name, sha256, raw)
    }

    /// The name patterns listed under `key` of the section at `sec`.
    pub(super) fn globs(
        &self,
        sec: &[&str],
        key: &str,
        raw: &[String],
    ) -> Result<Vec<Glob>, PolicyError> {
        raw.iter()
            .enumerate()
            .map(|(i, g)| {
                Glob::parse(g).map_err(|why| {
                    self.invalid(
                        sec,
                        Some(key),
                        Some(i),
                        format!("name pattern is malformed: {why}"),
                    )
                })
            })
            .collect()
    }
}
