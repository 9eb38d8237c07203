//! Named roots as `fs` and `exec` use them: the operator's `[roots]` entry behind a name, the
//! directory it stands for, and whether writes are refused. Grants are checked by the caller
//! (`fs` and `exec` grant roots separately); this module only turns a granted name into a place.

use std::path::{Path, PathBuf};

use super::Shared;
use super::infra::host::types::CapError;
use crate::policy::{START_DIR, UNSAFE_ROOT};

/// A root resolved for one use.
#[derive(Debug, Clone)]
pub struct RootDir {
    /// The name the plugin used.
    pub name: String,
    /// The directory, absolute.
    pub dir: PathBuf,
    /// The operator marked the root read-only.
    pub read_only: bool,
}

/// The root (the deepest one) and relative path of an absolute directory, for the names of the
/// tool infra replaces that gave a repository by path. It only names a place: every use still
/// passes the plugin's grants.
pub fn locate(shared: &Shared, abs: &Path) -> Option<(String, String)> {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let abs = canon(abs);
    let (root, rel) = shared
        .policy
        .roots()
        .filter(|(name, _)| *name != UNSAFE_ROOT)
        .filter_map(|(name, r)| {
            let rel = abs.strip_prefix(canon(&r.dir(&shared.start_dir))).ok()?;
            // A path that does not exist is not canonical: `root/../..` must not name a place
            // in the root.
            rel.components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
                .then(|| (name.to_string(), rel.to_path_buf()))
        })
        .min_by_key(|(_, rel)| rel.components().count())?;
    let rel = match rel.as_os_str().is_empty() {
        true => ".".to_string(),
        false => rel.to_string_lossy().into_owned(),
    };
    Some((root, rel))
}

/// The directory behind root `name`. The pseudo-root [`UNSAFE_ROOT`] is not resolved here: the
/// caller decides, from the grant and the flag, whether it may stand for `/`.
pub fn resolve(shared: &Shared, name: &str) -> Result<RootDir, CapError> {
    if name == UNSAFE_ROOT {
        return Err(CapError::Denied(format!(
            "root '{UNSAFE_ROOT}' (the whole filesystem) needs `unsafe = true` in the plugin's grant and INFRA_UNSAFE_LOCAL=1; name one of the operator's roots instead"
        )));
    }
    let root = shared.policy.root(name).ok_or_else(|| {
        let known: Vec<&str> = shared.policy.roots().map(|(n, _)| n).collect();
        CapError::NotFound(format!(
            "root '{name}' is not defined; the operator names roots under [roots] in {} (defined: {})",
            shared.policy.origin(),
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        ))
    })?;
    if root.path == Path::new(START_DIR) {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        start_dir_is_a_project(&shared.start_dir, home.as_deref()).map_err(|why| {
            CapError::Denied(format!(
                "root '{name}' is `path = \".\"`, the directory infra was started in, which {why}; \
                 start infra in the project's directory (most MCP clients take a `cwd`), or \
                 give the root an absolute path under [roots] in {}",
                shared.policy.edit_target()
            ))
        })?;
    }
    Ok(RootDir {
        name: name.to_string(),
        dir: root.dir(&shared.start_dir),
        read_only: root.read_only,
    })
}

/// Whether the directory infra was started in can stand for a `"."` root: not `/` and not the
/// user's home — an MCP client that starts servers there (some start them in `/`) would
/// otherwise grant the whole machine, or `~/.ssh`, to a root meant for one project.
fn start_dir_is_a_project(start: &Path, home: Option<&Path>) -> Result<(), String> {
    let same = |a: &Path, b: &Path| {
        a == b
            || a.canonicalize()
                .ok()
                .zip(b.canonicalize().ok())
                .is_some_and(|(x, y)| x == y)
    };
    if same(start, Path::new("/")) {
        return Err("is `/` (the whole filesystem)".into());
    }
    if home.is_some_and(|h| same(start, h)) {
        return Err(format!("is the home directory {}", start.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dot_root_never_stands_for_slash_or_home() {
        let home = Path::new("/home/u");
        assert!(start_dir_is_a_project(Path::new("/"), Some(home)).is_err());
        assert!(start_dir_is_a_project(Path::new("/home/u"), Some(home)).is_err());
        assert!(start_dir_is_a_project(Path::new("/home/u/src/app"), Some(home)).is_ok());
        assert!(start_dir_is_a_project(Path::new("/srv/app"), None).is_ok());
    }
}
