//! `[roots]`: the directories the operator names for `fs` and `exec`. A plugin is granted root
//! *names* (`[plugin.<name>.fs] roots`); only this table turns a name into a directory, so no
//! name a guest can choose walks to another one.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::Policy;
use super::error::{Doc, PolicyError};

/// The pseudo-root that stands for the whole filesystem: usable only by grants with
/// `unsafe = true` while `INFRA_UNSAFE_LOCAL=1`.
pub const UNSAFE_ROOT: &str = "/";

/// The path that stands for the directory infra was started in.
pub const START_DIR: &str = ".";

/// One named root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// The directory: absolute, or [`START_DIR`].
    pub path: PathBuf,
    /// Every write under it is refused, whatever the grant says.
    pub read_only: bool,
    /// A Terraform apply or destroy in a working directory under it needs the user's approval
    /// (the guard asks through MCP elicitation), whatever the plugin or the agent says.
    pub protected: bool,
}

impl Root {
    /// The directory this root stands for, `start` being the directory infra was started in.
    pub fn dir(&self, start: &Path) -> PathBuf {
        if self.path == Path::new(START_DIR) {
            start.to_path_buf()
        } else {
            self.path.clone()
        }
    }
}

/// `[roots]` entry as serde reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoot {
    path: String,
    #[serde(default)]
    read_only: bool,
    #[serde(default)]
    protected: bool,
}

/// Checks `[roots]`: names are plain words, paths absolute (or `.`) with no `..`.
pub(super) fn roots(
    doc: &Doc<'_>,
    raw: BTreeMap<String, RawRoot>,
) -> Result<BTreeMap<String, Root>, PolicyError> {
    let mut out = BTreeMap::new();
    for (name, r) in raw {
        let at = ["roots", name.as_str()];
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(doc.invalid(&at, None, None, format!(
                "'{name}' is not a root name; root names are letters, digits, '-', '_' and '.' (the name `/` is reserved for unsafe grants)"
            )));
        }
        let path = PathBuf::from(&r.path);
        let plain = path
            .components()
            .all(|c| !matches!(c, Component::ParentDir));
        if !(r.path == START_DIR || (path.is_absolute() && plain)) {
            return Err(doc.invalid(&at, Some("path"), None, format!(
                "'{}' is not an absolute path without '..'; write the directory in full, e.g. path = \"/srv/checkouts\" (or \".\" for the directory infra is started in)",
                r.path
            )));
        }
        out.insert(
            name,
            Root {
                path,
                read_only: r.read_only,
                protected: r.protected,
            },
        );
    }
    Ok(out)
}

impl Policy {
    /// The root named `name`, when the operator defined it.
    pub fn root(&self, name: &str) -> Option<&Root> {
        self.roots.get(name)
    }

    /// Every root the operator defined, by name.
    pub fn roots(&self) -> impl Iterator<Item = (&str, &Root)> {
        self.roots.iter().map(|(n, r)| (n.as_str(), r))
    }
}
