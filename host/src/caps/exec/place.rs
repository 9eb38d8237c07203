//! Where a program runs: a granted root (or `/` for an unsafe grant with the flag), whether it
//! may write there, and a working directory that stays inside the root — checked on the real
//! path, so a symlink pointing out is refused.

use std::path::{Component, Path, PathBuf};

use super::super::infra::host::types::CapError;
use super::super::{CallCtx, roots};
use crate::policy::{Decision, UNSAFE_ROOT};

/// A root and working directory resolved for one run.
#[derive(Debug, Clone)]
pub struct Place {
    /// The root's name.
    pub root_name: String,
    /// The root's directory, absolute and real.
    pub root_dir: PathBuf,
    /// The program may write under the root.
    pub writable: bool,
    /// The working directory, absolute and real, inside the root.
    pub cwd: PathBuf,
    /// The unsafe grant is in force (root `/`, no Landlock file rules).
    pub unsafe_mode: bool,
    /// A directory outside the root the host itself lets the program write (a push's `file`
    /// remote, after the URL was checked against the grant).
    pub extra_write: Option<PathBuf>,
    /// With network, the only TCP ports the program may connect to (a push: its URL's port).
    pub ports: Option<Vec<u16>>,
}

impl Place {
    /// `<root>:<dir>`: the working directory as the guard names a Terraform workspace — the
    /// real directory relative to the root's, `.` for the root itself.
    pub fn workspace(&self) -> String {
        let rel = self
            .cwd
            .strip_prefix(&self.root_dir)
            .map(|r| r.to_string_lossy().into_owned())
            .unwrap_or_else(|_| self.cwd.to_string_lossy().into_owned());
        match rel.is_empty() {
            true => format!("{}:.", self.root_name),
            false => format!("{}:{rel}", self.root_name),
        }
    }
}

/// How the caller's grant decided about the root.
pub struct RootGrant {
    /// The grant's decision on the root's name.
    pub decision: Decision,
    /// The grant is unsafe and the flag is on.
    pub unsafe_ok: bool,
    /// The grant says read-only.
    pub read_only: bool,
}

impl CallCtx {
    /// The place of an `exec` run in root `root`, directory `cwd`.
    pub fn exec_place(
        &self,
        cap: &str,
        target: &str,
        root: &str,
        cwd: Option<&str>,
    ) -> Result<Place, CapError> {
        let policy = &self.shared.policy;
        let grant = RootGrant {
            decision: policy.check_exec_root(&self.plugin, root),
            unsafe_ok: policy.exec_unsafe(&self.plugin, &self.shared.flags),
            read_only: policy.exec_grant(&self.plugin).is_none_or(|g| g.read_only),
        };
        self.place(cap, target, root, cwd, grant)
    }

    /// Resolves `root` and `cwd` under `grant`; records denials under `cap`.
    pub fn place(
        &self,
        cap: &str,
        target: &str,
        root: &str,
        cwd: Option<&str>,
        grant: RootGrant,
    ) -> Result<Place, CapError> {
        if root == UNSAFE_ROOT {
            if !grant.unsafe_ok {
                return Err(self.deny(cap, target, format!(
                    "root: '{UNSAFE_ROOT}' (the whole filesystem) needs `unsafe = true` in [plugin.{}.{cap}] and INFRA_UNSAFE_LOCAL=1 in infra's environment; name one of the operator's roots instead",
                    self.plugin
                )));
            }
            let cwd = match cwd {
                Some(c) if c.starts_with('/') => PathBuf::from(c),
                Some(c) => {
                    return Err(CapError::Invalid(format!(
                        "cwd: '{c}' must be an absolute path with root '{UNSAFE_ROOT}'"
                    )));
                }
                None => PathBuf::from("/"),
            };
            return Ok(Place {
                root_name: root.into(),
                root_dir: PathBuf::from("/"),
                writable: !grant.read_only,
                cwd: real_dir(&cwd, "cwd")?,
                unsafe_mode: true,
                extra_write: None,
                ports: None,
            });
        }
        // An unsafe grant with the flag may use any operator root, granted or not.
        if !grant.unsafe_ok {
            self.decide(cap, target, grant.decision)
                .map_err(CapError::Denied)?;
        }
        let dir = roots::resolve(&self.shared, root)?;
        let root_dir = real_dir(&dir.dir, "root")?;
        let rel = cwd.unwrap_or("");
        let joined = root_dir.join(relative(rel)?);
        let cwd = real_dir(&joined, "cwd")?;
        if !cwd.starts_with(&root_dir) {
            return Err(self.deny(cap, target, format!(
                "cwd: '{rel}' leads out of root '{root}' (through a symlink); give a directory inside the root"
            )));
        }
        Ok(Place {
            root_name: root.into(),
            root_dir,
            writable: !dir.read_only && !grant.read_only,
            cwd,
            unsafe_mode: false,
            extra_write: None,
            ports: None,
        })
    }
}

/// `rel` as a relative path that cannot climb out lexically.
pub fn relative(rel: &str) -> Result<PathBuf, CapError> {
    let path = Path::new(rel);
    let mut depth: i32 = 0;
    for c in path.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return Err(CapError::Invalid(format!(
                        "cwd: '{rel}' climbs out of the root with '..'; give a path inside the root"
                    )));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(CapError::Invalid(format!(
                    "cwd: '{rel}' is absolute; give a path relative to the root"
                )));
            }
        }
    }
    Ok(path.to_path_buf())
}

/// The real path of a directory that must exist.
fn real_dir(p: &Path, field: &str) -> Result<PathBuf, CapError> {
    let real = std::fs::canonicalize(p).map_err(|e| {
        CapError::NotFound(format!(
            "{field}: directory {} cannot be used: {e}; create it or give another",
            p.display()
        ))
    })?;
    if !real.is_dir() {
        return Err(CapError::Invalid(format!(
            "{field}: {} is not a directory",
            p.display()
        )));
    }
    Ok(real)
}
