//! One plugin's section, `[plugin.<name>]`: its own keys, and one sub-section per capability.
//! The per-capability parts are generated from the list in [`crate::cap`], and each capability's
//! module under `policy/` brings its section's format, check and summary through [`CapGrant`].

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::Doc;
use super::error::PolicyError;
use super::pattern::Glob;
use super::section::Section;
use crate::cap::{Cap, with_caps};

/// One capability's section of a plugin's policy, `[plugin.<name>.<cap>]`.
pub trait CapGrant: Sized {
    /// The section as serde reads it; it refuses unknown keys.
    type Raw: DeserializeOwned;

    /// Whether the capability names entries of `profiles.json`.
    const TAKES_PROFILES: bool = false;

    /// Checks a raw section at load; errors name the file, the section and the line.
    fn load(raw: Self::Raw, at: &Section<'_, '_>) -> Result<Self, PolicyError>;

    /// What the section grants, as JSON for `infra plugins` and reviewers.
    fn summary(&self) -> Value;

    /// The profile names it grants, when it takes profiles.
    fn profiles(&self) -> &[Glob] {
        &[]
    }
}

/// The grant of a capability whose section's presence is the whole grant: it has no keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence;

/// A keyless section as serde reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPresence {}

impl CapGrant for Presence {
    type Raw = RawPresence;

    fn load(_: RawPresence, _: &Section<'_, '_>) -> Result<Self, PolicyError> {
        Ok(Presence)
    }

    fn summary(&self) -> Value {
        Value::Object(serde_json::Map::new())
    }
}

macro_rules! plugin_sections {
    ($($variant:ident $name:ident,)*) => {
        /// `[plugin.<name>]` as serde reads it: the plugin's keys, then one optional section
        /// per capability.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct RawPlugin {
            pub(super) sha256: Option<String>,
            pub(super) timeout_ms: Option<u64>,
            pub(super) memory_mib: Option<u64>,
            $($name: Option<<super::$name::Grant as CapGrant>::Raw>,)*
            kubernetes: Option<super::kubernetes::Raw>,
        }

        /// What one plugin is granted. Absent capability sections grant nothing.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct PluginPolicy {
            /// The plugin's name, as in its `plugin.toml`.
            pub name: String,
            /// Lowercase hex sha256 the plugin's wasm must have, when pinned.
            pub sha256: Option<String>,
            /// Per-plugin override of [`super::Limits::timeout_ms`].
            pub timeout_ms: Option<u64>,
            /// Per-plugin override of [`super::Limits::memory_mib`].
            pub memory_mib: Option<u64>,
            $(
                #[doc = concat!("`[plugin.<name>.", stringify!($name), "]`, when present.")]
                pub $name: Option<super::$name::Grant>,
            )*
            /// `[plugin.<name>.kubernetes]`, when present: refines `http` for kubernetes profiles.
            pub kubernetes: Option<super::kubernetes::Grant>,
        }

        impl PluginPolicy {
            /// Checks each capability section of `raw`; the plugin's own keys are checked (and
            /// `sha256` normalised) by the caller.
            pub(super) fn load(
                doc: &Doc<'_>,
                name: &str,
                sha256: Option<String>,
                raw: RawPlugin,
            ) -> Result<PluginPolicy, PolicyError> {
                Ok(PluginPolicy {
                    name: name.to_string(),
                    sha256,
                    timeout_ms: raw.timeout_ms,
                    memory_mib: raw.memory_mib,
                    $($name: match raw.$name {
                        None => None,
                        Some(r) => Some(<super::$name::Grant as CapGrant>::load(
                            r,
                            &Section::new(doc, name, Cap::$variant),
                        )?),
                    },)*
                    kubernetes: match raw.kubernetes {
                        None => None,
                        Some(r) => Some(super::kubernetes::Grant::load(
                            r,
                            &Section::named(doc, name, super::kubernetes::SECTION),
                        )?),
                    },
                })
            }

            /// Whether the plugin has the section of `cap` at all.
            pub fn has(&self, cap: Cap) -> bool {
                match cap {
                    $(Cap::$variant => self.$name.is_some(),)*
                }
            }

            /// The profiles granted through `cap`, when the plugin has its section.
            pub(super) fn profiles(&self, cap: Cap) -> Option<&[Glob]> {
                match cap {
                    $(Cap::$variant => self.$name.as_ref().map(CapGrant::profiles),)*
                }
            }

            /// Every section present, as JSON keyed by capability.
            pub(super) fn summaries(&self) -> serde_json::Map<String, Value> {
                let mut caps = serde_json::Map::new();
                $(
                    if let Some(g) = &self.$name {
                        caps.insert(Cap::$variant.name().into(), g.summary());
                    }
                )*
                if let Some(k) = &self.kubernetes {
                    caps.insert(super::kubernetes::SECTION.into(), k.summary());
                }
                caps
            }
        }

        /// Whether capability `cap` names profiles (and so may be asked about one).
        pub(super) fn takes_profiles(cap: Cap) -> bool {
            match cap {
                $(Cap::$variant => <super::$name::Grant as CapGrant>::TAKES_PROFILES,)*
            }
        }
    };
}
with_caps!(plugin_sections);

/// Glob patterns as written, for summaries.
pub(super) fn strs(globs: &[Glob]) -> Vec<&str> {
    globs.iter().map(Glob::as_str).collect()
}
