//! Named roots as `fs` and `exec` use them: the operator's `[roots]` entry behind a name, the
//! directory it stands for, and whether writes are refused. Grants are checked by the caller
//! (`fs` and `exec` grant roots separately); this module only turns a granted name into a place.

use std::path::PathBuf;

use super::Shared;
use super::infra::host::types::CapError;
use crate::policy::UNSAFE_ROOT;

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
    Ok(RootDir {
        name: name.to_string(),
        dir: root.dir(&shared.start_dir),
        read_only: root.read_only,
    })
}
