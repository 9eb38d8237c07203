//! `[programs]`: the programs the operator names for `exec`, each an absolute path and
//! optionally the sha256 its binary must have. A plugin is granted program *names*
//! (`[plugin.<name>.exec] programs`); only this table turns a name into a file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::Policy;
use super::error::{Doc, PolicyError};

/// One named program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Its absolute path.
    pub path: PathBuf,
    /// Lowercase hex sha256 the file must have when it runs, when pinned.
    pub sha256: Option<String>,
}

/// A `[programs]` entry as serde reads it: a path, or a table with a pin.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawProgram {
    /// `git = "/usr/bin/git"`.
    Path(String),
    /// `git = { path = "/usr/bin/git", sha256 = "…" }`.
    Pinned(RawPinned),
}

/// The table form.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPinned {
    path: String,
    sha256: Option<String>,
}

/// Checks `[programs]`: plain names, absolute paths, well-formed pins.
pub(super) fn programs(
    doc: &Doc<'_>,
    raw: BTreeMap<String, RawProgram>,
) -> Result<BTreeMap<String, Program>, PolicyError> {
    let mut out = BTreeMap::new();
    for (name, r) in raw {
        let at = ["programs", name.as_str()];
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(doc.invalid(&at, None, None, format!(
                "'{name}' is not a program name; program names are letters, digits, '-', '_' and '.'"
            )));
        }
        let (path, sha256) = match r {
            RawProgram::Path(p) => (p, None),
            RawProgram::Pinned(RawPinned { path, sha256 }) => (path, sha256),
        };
        let file = PathBuf::from(&path);
        if !file.is_absolute() || path.split('/').any(|c| c == "..") {
            return Err(doc.invalid(&at, None, None, format!(
                "'{path}' is not an absolute path without '..'; name the binary in full, e.g. {name} = \"/usr/bin/{name}\""
            )));
        }
        let sha256 =
            match sha256 {
                None => None,
                Some(s) => {
                    let hex = s.to_ascii_lowercase();
                    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(doc.invalid(&at, Some("sha256"), None, format!(
                        "'{s}' is not a sha256; give the 64 hex digits of `sha256sum {path}`"
                    )));
                    }
                    Some(hex)
                }
            };
        out.insert(name, Program { path: file, sha256 });
    }
    Ok(out)
}

impl Policy {
    /// The program named `name`, when the operator defined it.
    pub fn program(&self, name: &str) -> Option<&Program> {
        self.programs.get(name)
    }

    /// Every program the operator defined, by name.
    pub fn programs(&self) -> impl Iterator<Item = (&str, &Program)> {
        self.programs.iter().map(|(n, p)| (n.as_str(), p))
    }
}
