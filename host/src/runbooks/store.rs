//! Where runbooks come from: the built-ins embedded in the binary (`host/runbooks/*.json`) and
//! the user's `runbooks.json` (`MCP_RUNBOOKS_PATH`, else the state directory's), one object
//! keyed by name, which overrides a built-in of the same name. Never a file of the working
//! directory: a cloned repository must not be able to plant workflows.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use serde_json::Value;

use super::model::Runbook;
use crate::locked_file::Locked;

/// Most runbooks the user's file holds: an agent storing runbooks cannot grow it without end.
pub const MAX_USER_RUNBOOKS: usize = 500;
/// Largest runbook, as JSON.
pub const MAX_RUNBOOK_BYTES: usize = 128 * 1024;

/// The built-in runbooks, by name.
const BUILTIN: &[(&str, &str)] = &[
    (
        "repo.snapshot",
        include_str!("../../runbooks/repo.snapshot.json"),
    ),
    ("http.check", include_str!("../../runbooks/http.check.json")),
    (
        "gitops.plan",
        include_str!("../../runbooks/gitops.plan.json"),
    ),
    (
        "gitops.propose",
        include_str!("../../runbooks/gitops.propose.json"),
    ),
    (
        "gitops.sync",
        include_str!("../../runbooks/gitops.sync.json"),
    ),
    (
        "gitops.verify",
        include_str!("../../runbooks/gitops.verify.json"),
    ),
    (
        "gitops.rollback",
        include_str!("../../runbooks/gitops.rollback.json"),
    ),
    (
        "gitops.release",
        include_str!("../../runbooks/gitops.release.json"),
    ),
    (
        "terraform.plan",
        include_str!("../../runbooks/terraform.plan.json"),
    ),
    (
        "terraform.apply",
        include_str!("../../runbooks/terraform.apply.json"),
    ),
    (
        "ssh.system_info",
        include_str!("../../runbooks/ssh.system_info.json"),
    ),
    ("ssh.health", include_str!("../../runbooks/ssh.health.json")),
    (
        "host.monitor",
        include_str!("../../runbooks/host.monitor.json"),
    ),
    (
        "preflight.ssh",
        include_str!("../../runbooks/preflight.ssh.json"),
    ),
    (
        "preflight.k8s",
        include_str!("../../runbooks/preflight.k8s.json"),
    ),
    ("k8s.render", include_str!("../../runbooks/k8s.render.json")),
    ("k8s.diff", include_str!("../../runbooks/k8s.diff.json")),
    ("k8s.apply", include_str!("../../runbooks/k8s.apply.json")),
    (
        "k8s.rollout.inspect",
        include_str!("../../runbooks/k8s.rollout.inspect.json"),
    ),
];

/// Where a runbook was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Embedded in the binary.
    Builtin,
    /// The user's file.
    User,
    /// The user's file, replacing a built-in of the same name.
    Override,
}

/// Checks a runbook name: letters, digits, `.`, `_`, `-`, 1 to 100.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    match ok {
        true => Ok(()),
        false => Err(format!(
            "{name:?} is not a runbook name: 1 to 100 letters, digits, `.`, `_`, `-` (e.g. `deploy.web`)"
        )),
    }
}

/// The built-ins, parsed once: every `list`, `get`, `run` and prompt reads them. A built-in
/// that does not parse is a bug caught by the tests.
pub fn builtins() -> &'static BTreeMap<String, Runbook> {
    static PARSED: std::sync::OnceLock<BTreeMap<String, Runbook>> = std::sync::OnceLock::new();
    PARSED.get_or_init(|| {
        BUILTIN
            .iter()
            .filter_map(|(n, text)| {
                serde_json::from_str(text)
                    .map_err(|e| tracing::error!("built-in runbook {n} does not parse: {e}"))
                    .ok()
                    .map(|r| (n.to_string(), r))
            })
            .collect()
    })
}

/// What [`Store::upsert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// A new runbook was stored.
    Added,
    /// One of the same name was replaced.
    Replaced,
    /// Nothing: the file holds this many runbooks, the most it keeps.
    Full(usize),
}

/// The user's runbooks file and the built-ins.
pub struct Store {
    file: PathBuf,
}

impl Store {
    /// The store whose user file is `MCP_RUNBOOKS_PATH` when set, else `default`.
    pub fn new(default: PathBuf) -> Self {
        let file = std::env::var_os("MCP_RUNBOOKS_PATH")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or(default);
        Self { file }
    }

    /// The user file.
    pub fn file(&self) -> &std::path::Path {
        &self.file
    }

    /// The user's runbooks.
    pub fn user(&self) -> anyhow::Result<BTreeMap<String, Runbook>> {
        let Some(text) = crate::state::read_optional(&self.file)? else {
            return Ok(BTreeMap::new());
        };
        parse_file(&text).with_context(|| format!("reading {}", self.file.display()))
    }

    /// Every runbook by name with where it comes from; the user's replace built-ins.
    pub fn all(&self) -> anyhow::Result<BTreeMap<String, (Runbook, Source)>> {
        let mut all: BTreeMap<String, (Runbook, Source)> = builtins()
            .iter()
            .map(|(n, r)| (n.clone(), (r.clone(), Source::Builtin)))
            .collect();
        for (n, r) in self.user()? {
            let source = match all.contains_key(&n) {
                true => Source::Override,
                false => Source::User,
            };
            all.insert(n, (r, source));
        }
        Ok(all)
    }

    /// One runbook by name.
    pub fn get(&self, name: &str) -> anyhow::Result<Option<(Runbook, Source)>> {
        Ok(self.all()?.remove(name))
    }

    /// Adds or replaces the user's runbook `name`; a new one is refused, changing nothing, when
    /// the file holds [`MAX_USER_RUNBOOKS`] already (counted under the file's lock).
    pub fn upsert(&self, name: &str, rb: &Runbook) -> anyhow::Result<Upserted> {
        let mut full = None;
        let replaced = self.change(|m| {
            if !m.contains_key(name) && m.len() >= MAX_USER_RUNBOOKS {
                full = Some(m.len());
                return Ok(false);
            }
            Ok(m.insert(name.to_string(), serde_json::to_value(rb)?)
                .is_some())
        })?;
        Ok(match (full, replaced) {
            (Some(held), _) => Upserted::Full(held),
            (None, true) => Upserted::Replaced,
            (None, false) => Upserted::Added,
        })
    }

    /// Removes the user's runbook `name`; returns whether there was one.
    pub fn delete(&self, name: &str) -> anyhow::Result<bool> {
        self.change(|m| Ok(m.remove(name).is_some()))
    }

    fn change(
        &self,
        f: impl FnOnce(&mut serde_json::Map<String, Value>) -> anyhow::Result<bool>,
    ) -> anyhow::Result<bool> {
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let lock = Locked::acquire(&self.file)
            .with_context(|| format!("locking {}", self.file.display()))?;
        let mut map = match lock.read()? {
            Some(t) if !t.trim().is_empty() => {
                parse_file(&t).with_context(|| format!("reading {}", self.file.display()))?;
                serde_json::from_str::<serde_json::Map<String, Value>>(&t)?
            }
            _ => serde_json::Map::new(),
        };
        let changed = f(&mut map)?;
        lock.replace(&serde_json::to_vec_pretty(&map)?)
            .with_context(|| format!("writing {}", self.file.display()))?;
        Ok(changed)
    }
}

/// A runbooks file: an object of runbooks by name. Each bad entry is named.
fn parse_file(text: &str) -> anyhow::Result<BTreeMap<String, Runbook>> {
    let raw: BTreeMap<String, Value> =
        serde_json::from_str(text).context("not a JSON object of runbooks by name")?;
    raw.into_iter()
        .map(|(n, v)| {
            let rb: Runbook = serde_json::from_value(v)
                .with_context(|| format!("runbook {n:?}: fix it or remove it"))?;
            Ok((n, rb))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_parses() {
        assert_eq!(builtins().len(), BUILTIN.len());
    }
}
