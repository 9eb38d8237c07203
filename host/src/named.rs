//! A JSON file of named entries in the state directory: `profiles.json`, `targets.json`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

/// Entries by name, and the file they came from (named in every error about them).
#[derive(Debug, Clone)]
pub struct Named<T> {
    entries: BTreeMap<String, T>,
    origin: String,
}

impl<T> Default for Named<T> {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
            origin: String::new(),
        }
    }
}

impl<T> Named<T> {
    /// Loads `path` (a missing file means no entries), each entry through `entry(name, value, origin)`.
    pub fn load_with(
        path: &Path,
        what: &str,
        entry: impl Fn(&str, Value, &str) -> anyhow::Result<T>,
    ) -> anyhow::Result<Self> {
        let origin = path.display().to_string();
        match crate::state::read_optional(path)? {
            Some(text) => Self::parse_with(&text, &origin, what, entry),
            None => Ok(Self {
                entries: BTreeMap::new(),
                origin,
            }),
        }
    }

    /// Parses JSON text: an object of `what` (e.g. "profiles") by name.
    pub fn parse_with(
        text: &str,
        origin: &str,
        what: &str,
        entry: impl Fn(&str, Value, &str) -> anyhow::Result<T>,
    ) -> anyhow::Result<Self> {
        let raw: BTreeMap<String, Value> = serde_json::from_str(text).with_context(|| {
            format!("{origin} is not a JSON object of {what}; see the format in README.md (section State)")
        })?;
        let mut entries = BTreeMap::new();
        for (name, value) in raw {
            let parsed = entry(&name, value, origin)?;
            entries.insert(name, parsed);
        }
        Ok(Self {
            entries,
            origin: origin.to_string(),
        })
    }

    /// The file the entries came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// An entry by name.
    pub fn get(&self, name: &str) -> Option<&T> {
        self.entries.get(name)
    }

    /// Entry names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Every entry with its name, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Every entry.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.entries.values()
    }
}
