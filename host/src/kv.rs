//! The values of the `state` tool and of runbooks' `{{ state.k }}`: a `session` scope that lives
//! as long as the server (one MCP session over stdio), and a `persistent` scope in
//! `<state>/state.json` (mode 0600, rewritten atomically under a lock shared with other infra
//! processes, see [`crate::locked_file`]).
//!
//! Values are scrubbed of known secrets before they are kept: state is read back into answers
//! and runbook arguments, so a secret stored there would leak the next time it is read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use serde_json::Value;

use crate::locked_file::Locked;
use crate::redact::Redactor;

/// Most keys per scope.
pub const MAX_KEYS: usize = 1000;
/// Largest value kept, as JSON text.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Where a value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Until the server stops.
    Session,
    /// In the state directory, across restarts and servers.
    Persistent,
}

/// Both scopes.
pub struct Values {
    session: Mutex<BTreeMap<String, Value>>,
    file: PathBuf,
}

/// Why a value was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The key is not usable.
    #[error(
        "key {0:?}: use 1 to 200 letters, digits and `._-:/` (e.g. `gitops.plan.shop`), not starting with a dot"
    )]
    Key(String),
    /// The value is too large.
    #[error(
        "value of {0:?} is {1} bytes as JSON, more than {MAX_VALUE_BYTES}; keep large data in an artifact and store its URI"
    )]
    Large(String, usize),
    /// The scope is full.
    #[error("the scope holds {MAX_KEYS} keys already; unset some (`list`, `unset`, `clear`)")]
    Full,
    /// The file could not be read or written.
    #[error("{0:#}")]
    Io(#[from] anyhow::Error),
}

/// Checks a key: printable, bounded, no path tricks (keys are never paths, but they show up in
/// answers and templates).
pub fn check_key(key: &str) -> Result<(), Refused> {
    let ok = !key.is_empty()
        && key.len() <= 200
        && !key.starts_with('.')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:/".contains(c));
    match ok {
        true => Ok(()),
        false => Err(Refused::Key(key.chars().take(80).collect())),
    }
}

impl Values {
    /// Values with the persistent scope in `file`.
    pub fn new(file: PathBuf) -> Self {
        Self {
            session: Mutex::new(BTreeMap::new()),
            file,
        }
    }

    fn session(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Value>> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read_file(path: &Path) -> anyhow::Result<BTreeMap<String, Value>> {
        match crate::state::read_optional(path)? {
            None => Ok(BTreeMap::new()),
            Some(text) if text.trim().is_empty() => Ok(BTreeMap::new()),
            Some(text) => serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a JSON object of values; fix it or remove it (the persistent state is lost then)",
                    path.display()
                )
            }),
        }
    }

    /// Changes the persistent map under the file's lock.
    fn change<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, Value>) -> Result<T, Refused>,
    ) -> Result<T, Refused> {
        let lock = Locked::acquire(&self.file)
            .with_context(|| format!("cannot lock {}", self.file.display()))?;
        let mut map = match lock.read().context("read state.json")? {
            None => BTreeMap::new(),
            Some(t) if t.trim().is_empty() => BTreeMap::new(),
            Some(t) => serde_json::from_str(&t).with_context(|| {
                format!("{} is not a JSON object of values", self.file.display())
            })?,
        };
        let out = f(&mut map)?;
        let text = serde_json::to_vec_pretty(&map).context("encode state")?;
        lock.replace(&text)
            .with_context(|| format!("cannot write {}", self.file.display()))?;
        Ok(out)
    }

    /// The value of `key`, if set.
    pub fn get(&self, scope: Scope, key: &str) -> Result<Option<Value>, Refused> {
        check_key(key)?;
        Ok(match scope {
            Scope::Session => self.session().get(key).cloned(),
            Scope::Persistent => Self::read_file(&self.file)?.remove(key),
        })
    }

    /// Sets `key` to `value`, scrubbed of known secrets; returns whether it replaced one.
    pub fn set(
        &self,
        scope: Scope,
        key: &str,
        value: Value,
        redactor: &Redactor,
    ) -> Result<bool, Refused> {
        check_key(key)?;
        let mut value = value;
        redactor.scrub_value(&mut value);
        let size = value.to_string().len();
        if size > MAX_VALUE_BYTES {
            return Err(Refused::Large(key.into(), size));
        }
        let put = |map: &mut BTreeMap<String, Value>| {
            if !map.contains_key(key) && map.len() >= MAX_KEYS {
                return Err(Refused::Full);
            }
            Ok(map.insert(key.to_string(), value).is_some())
        };
        match scope {
            Scope::Session => put(&mut self.session()),
            Scope::Persistent => self.change(put),
        }
    }

    /// Removes `key`; returns whether it was set.
    pub fn unset(&self, scope: Scope, key: &str) -> Result<bool, Refused> {
        check_key(key)?;
        match scope {
            Scope::Session => Ok(self.session().remove(key).is_some()),
            Scope::Persistent => self.change(|m| Ok(m.remove(key).is_some())),
        }
    }

    /// Every key and value of `scope` whose key starts with `prefix`.
    pub fn list(&self, scope: Scope, prefix: &str) -> Result<BTreeMap<String, Value>, Refused> {
        let all = match scope {
            Scope::Session => self.session().clone(),
            Scope::Persistent => Self::read_file(&self.file)?,
        };
        Ok(all
            .into_iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .collect())
    }

    /// Removes every key of `scope` starting with `prefix`; returns how many.
    pub fn clear(&self, scope: Scope, prefix: &str) -> Result<usize, Refused> {
        let drop = |m: &mut BTreeMap<String, Value>| {
            let before = m.len();
            m.retain(|k, _| !k.starts_with(prefix));
            Ok(before - m.len())
        };
        match scope {
            Scope::Session => drop(&mut self.session()),
            Scope::Persistent => self.change(drop),
        }
    }

    /// Both scopes merged for templates: a session value wins over a persistent one.
    pub fn merged(&self) -> Result<BTreeMap<String, Value>, Refused> {
        let mut all = Self::read_file(&self.file)?;
        all.extend(self.session().clone());
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scopes_are_separate_and_persistent_values_survive_a_new_store() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state.json");
        let r = Redactor::default();
        let v = Values::new(file.clone());
        v.set(Scope::Session, "a", json!(1), &r).unwrap();
        v.set(Scope::Persistent, "a", json!({"x": [2]}), &r)
            .unwrap();
        assert_eq!(v.get(Scope::Session, "a").unwrap(), Some(json!(1)));
        let again = Values::new(file.clone());
        assert_eq!(again.get(Scope::Session, "a").unwrap(), None);
        assert_eq!(
            again.get(Scope::Persistent, "a").unwrap(),
            Some(json!({"x": [2]}))
        );
        assert_eq!(v.merged().unwrap()["a"], json!(1));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(again.clear(Scope::Persistent, "").unwrap(), 1);
        assert!(v.list(Scope::Persistent, "").unwrap().is_empty());
    }

    #[test]
    fn bad_keys_large_values_and_secrets_are_refused_or_scrubbed() {
        let dir = tempfile::tempdir().unwrap();
        let v = Values::new(dir.path().join("state.json"));
        let r = Redactor::default();
        for bad in ["", ".x", "a b", "a\nb", &"k".repeat(201), "a{{b}}"] {
            assert!(matches!(
                v.set(Scope::Session, bad, json!(1), &r),
                Err(Refused::Key(_))
            ));
        }
        assert!(matches!(
            v.set(Scope::Session, "big", json!("x".repeat(70_000)), &r),
            Err(Refused::Large(..))
        ));
        v.set(Scope::Session, "cfg", json!({"password": "hunter2"}), &r)
            .unwrap();
        assert_eq!(
            v.get(Scope::Session, "cfg").unwrap().unwrap()["password"],
            "[REDACTED]"
        );
    }
}
