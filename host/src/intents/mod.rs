//! Intents: what an agent wants done (`gitops.plan`, `terraform.plan`, …) mapped to the runbook
//! that does it, chosen by the repository's context ([`context`]). The map is
//! `capabilities.json` (`MCP_CAPABILITIES_PATH`, else the state directory's), over the built-in
//! defaults embedded from `host/intents/capabilities.json`; an entry of the user's file replaces
//! the default of the same intent.

pub mod context;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use context::Context;

/// The built-in map.
const BUILTIN: &str = include_str!("../../intents/capabilities.json");

/// One intent's entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Capability {
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// The runbook that does it.
    pub runbook: String,
    /// When it fits the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<When>,
    /// Inputs taken from the context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<ContextInputs>,
    /// Reads or writes.
    #[serde(default)]
    pub effects: Effects,
}

/// When an intent fits: the context has one of `tags_any` and all of `tags_all`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct When {
    /// Any of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags_any: Vec<String>,
    /// All of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags_all: Vec<String>,
}

/// Inputs the context gives.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContextInputs {
    /// Input name → a kind of directory (`kustomize`, `helm`): the first one found, relative to
    /// the repository.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, String>,
    /// The runbook's `path` is the repository's path joined with the first directory of this
    /// kind (`terraform`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// Fixed defaults.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub defaults: Map<String, Value>,
}

/// What running the intent does.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Effects {
    /// `read` or `write`.
    #[serde(default = "read")]
    pub kind: String,
    /// Writes need `apply: true`.
    #[serde(default)]
    pub requires_apply: bool,
}

fn read() -> String {
    "read".into()
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    capabilities: BTreeMap<String, Capability>,
}

/// The intent map: built-ins and the user's file.
pub struct Intents {
    file: PathBuf,
}

impl Intents {
    /// The map whose user file is `MCP_CAPABILITIES_PATH` when set, else `default`.
    pub fn new(default: PathBuf) -> Self {
        let file = std::env::var_os("MCP_CAPABILITIES_PATH")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or(default);
        Self { file }
    }

    /// Every intent with its entry.
    pub fn all(&self) -> anyhow::Result<BTreeMap<String, Capability>> {
        let mut all = serde_json::from_str::<File>(BUILTIN)
            .context("the built-in capabilities")?
            .capabilities;
        if let Some(text) = crate::state::read_optional(&self.file)? {
            let user: File = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not {{\"capabilities\": {{intent: {{runbook, when, effects}}}}}}; fix it",
                    self.file.display()
                )
            })?;
            all.extend(user.capabilities);
        }
        Ok(all)
    }
}

/// Whether `cap` fits `ctx`, and why (or why not).
pub fn fits(cap: &Capability, ctx: &Context) -> (bool, String) {
    let Some(w) = &cap.when else {
        return (true, "fits any repository".into());
    };
    let any = w.tags_any.is_empty() || w.tags_any.iter().any(|t| ctx.tags.contains(t));
    let missing: Vec<&String> = w
        .tags_all
        .iter()
        .filter(|t| !ctx.tags.contains(*t))
        .collect();
    match (any, missing.is_empty()) {
        (true, true) => {
            let found: Vec<&String> = w
                .tags_any
                .iter()
                .filter(|t| ctx.tags.contains(*t))
                .collect();
            (
                true,
                match found.is_empty() {
                    true => "fits".into(),
                    false => format!(
                        "the repository is {}",
                        found
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
            )
        }
        (false, _) => (
            false,
            format!("needs one of: {} (not found)", w.tags_any.join(", ")),
        ),
        (_, false) => (
            false,
            format!(
                "needs all of: {} (missing {})",
                w.tags_all.join(", "),
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }
}

/// The runbook inputs an intent gets from the context: `root`, `path` (or the workdir), and the
/// directories it names; the caller's inputs win.
pub fn context_inputs(
    cap: &Capability,
    ctx: &Context,
    root: &str,
    path: &str,
    given: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("root".into(), json!(root));
    out.insert("path".into(), json!(path));
    if let Some(i) = &cap.inputs {
        for (k, v) in &i.defaults {
            out.insert(k.clone(), v.clone());
        }
        for (input, kind) in &i.context {
            if let Some(d) = ctx.dirs.get(kind).and_then(|d| d.first()) {
                out.insert(input.clone(), json!(d));
            }
        }
        if let Some(kind) = &i.workdir
            && let Some(d) = ctx.dirs.get(kind).and_then(|d| d.first())
        {
            let p = match (path, d.as_str()) {
                (".", d) | ("", d) => d.to_string(),
                (p, ".") => p.to_string(),
                (p, d) => format!("{p}/{d}"),
            };
            out.insert("path".into(), json!(p));
        }
    }
    for (k, v) in given {
        out.insert(k.clone(), v.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_map_parses_and_names_builtin_runbooks() {
        let d = tempfile::tempdir().unwrap();
        let all = Intents::new(d.path().join("none.json")).all().unwrap();
        let books = crate::runbooks::store::builtins();
        for (i, c) in &all {
            assert!(books.contains_key(&c.runbook), "{i} → {}", c.runbook);
        }
    }
}
