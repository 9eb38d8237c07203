//! One capability's section of a plugin, `[plugin.<name>.<cap>]`, as its [`super::CapGrant`]
//! loads it: the lists it holds, parsed, and errors that name the file, the section and the line.

use super::error::{Doc, PolicyError};
use super::pattern::{Glob, HostPattern};
use crate::cap::Cap;

/// One `[plugin.<name>.<cap>]` section being loaded.
pub struct Section<'s, 'd> {
    doc: &'s Doc<'d>,
    path: [&'s str; 3],
}

impl<'s, 'd> Section<'s, 'd> {
    /// The section of capability `cap` in `[plugin.<plugin>]`.
    pub(super) fn new(doc: &'s Doc<'d>, plugin: &'s str, cap: Cap) -> Self {
        Section {
            doc,
            path: ["plugin", plugin, cap.name()],
        }
    }

    /// A section of `[plugin.<plugin>]` that refines a capability without being one
    /// (`kubernetes`).
    pub(super) fn named(doc: &'s Doc<'d>, plugin: &'s str, name: &'static str) -> Self {
        Section {
            doc,
            path: ["plugin", plugin, name],
        }
    }
}

impl Section<'_, '_> {
    /// The name of the plugin the section belongs to.
    pub fn plugin(&self) -> &str {
        self.path[1]
    }

    /// The error of a bad value under `key` (element `index` of a list), with `message` saying
    /// what is wrong and how to write it instead.
    pub fn invalid(&self, key: &str, index: Option<usize>, message: String) -> PolicyError {
        self.doc.invalid(&self.path, Some(key), index, message)
    }

    /// The name patterns listed under `key`.
    pub fn globs(&self, key: &str, raw: &[String]) -> Result<Vec<Glob>, PolicyError> {
        raw.iter()
            .enumerate()
            .map(|(i, g)| {
                Glob::parse(g).map_err(|why| {
                    self.invalid(key, Some(i), format!("name pattern is malformed: {why}"))
                })
            })
            .collect()
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
