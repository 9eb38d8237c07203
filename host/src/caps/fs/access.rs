//! Who may touch which root, and the one way every fs use runs: the grant checked (a denial
//! recorded), one capability event opened on `<root>:<path>`, the path checked, the root's
//! directory handle opened, the work done on it within the call's deadline, the outcome recorded.

use std::path::PathBuf;
use std::time::Duration;

use cap_std::fs::Dir;

use super::path;
use crate::caps::CallCtx;
use crate::caps::infra::host::fs::RootInfo;
use crate::caps::infra::host::types::CapError;
use crate::caps::roots::{self, RootDir};
use crate::policy::{Decision, UNSAFE_ROOT};

/// Longest `<root>:<path>` kept in an audit event; a hostile path may be kilobytes long.
const MAX_TARGET: usize = 300;

/// Whether a use changes anything under the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only.
    Read,
    /// Creates, replaces or removes.
    Write,
}

/// Where one use works: the root's directory handle and the checked path inside it.
pub struct Place {
    /// The root's directory handle: every path is resolved inside it.
    pub dir: Dir,
    /// The path relative to the root (`.` for the root itself).
    pub rel: PathBuf,
    /// `<root>:<path>` as messages show it.
    pub shown: String,
    /// The unsafe root `/`: listings show absolute paths.
    pub absolute: bool,
}

/// `<root>:<path>` for audit events and messages: scrubbed, and cut when long.
fn target(call: &CallCtx, root: &str, path: &str) -> String {
    let text = format!("{root}:{path}");
    let mut text = call.shared.redactor.scrub_str(&text).into_owned();
    if text.len() > MAX_TARGET {
        let mut at = MAX_TARGET;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
        text.push('…');
    }
    text
}

/// Checks that the plugin may use `root` at all; records a denial. `Ok(true)` for the unsafe
/// root `/`, which needs the grant's `unsafe = true` and the server's flag both.
fn grant(call: &CallCtx, root: &str, target: &str) -> Result<bool, CapError> {
    let policy = &call.shared.policy;
    if root == UNSAFE_ROOT {
        if policy.fs_unsafe(&call.plugin, &call.shared.flags) {
            return Ok(true);
        }
        let mut flag_on = call.shared.flags;
        flag_on.unsafe_local = true;
        let missing = match (
            policy.fs_unsafe(&call.plugin, &flag_on),
            call.shared.flags.unsafe_local,
        ) {
            (true, false) => "INFRA_UNSAFE_LOCAL=1 is not set on the server",
            (false, true) => "the grant has no `unsafe = true`",
            _ => "neither is set",
        };
        let reason = format!(
            "policy: root '/' (the whole filesystem) needs `unsafe = true` under [plugin.{p}.fs] in {o} and INFRA_UNSAFE_LOCAL=1 in infra's environment ({missing}); otherwise name one of the roots roots() lists",
            p = call.plugin,
            o = policy.origin()
        );
        call.decide("fs", target, Decision::Deny(reason.clone()))
            .map_err(CapError::Denied)?;
    }
    call.decide("fs", target, policy.check_fs_root(&call.plugin, root))
        .map_err(CapError::Denied)?;
    Ok(false)
}

/// Why a write under `root` is refused, if it is: the operator's `[roots]` entry and the
/// plugin's grant must both allow it.
fn write_refusal(call: &CallCtx, root: &RootDir, absolute: bool) -> Option<String> {
    let policy = &call.shared.policy;
    if !absolute && root.read_only {
        return Some(format!(
            "policy: root '{}' is read-only ([roots] {} in {}); the operator sets read_only = false there to allow writes",
            root.name,
            root.name,
            policy.origin()
        ));
    }
    if policy.fs_read_only(&call.plugin) {
        return Some(format!(
            "policy: plugin '{p}' may only read through fs; the operator sets read_only = false under [plugin.{p}.fs] in {o} to allow writes",
            p = call.plugin,
            o = policy.origin()
        ));
    }
    None
}

/// Runs blocking file-system work off the async threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CapError> + Send + 'static,
) -> Result<T, CapError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| CapError::Failed(format!("fs: the worker thread failed: {e}")))?
}

/// Opens the directory handle of `root`.
async fn open_root(call: &CallCtx, root: &RootDir) -> Result<Dir, CapError> {
    let dir = root.dir.clone();
    let name = root.name.clone();
    let origin = call.shared.policy.origin().to_string();
    blocking(move || {
        Dir::open_ambient_dir(&dir, cap_std::ambient_authority()).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => {
                CapError::NotFound(format!(
                    "root '{name}' stands for {}, which does not exist or is not a directory; the operator creates it or corrects [roots] {name} in {origin}",
                    dir.display()
                ))
            }
            _ => CapError::Failed(format!(
                "cannot open root '{name}' ({}): {e}; the operator checks that infra may read it",
                dir.display()
            )),
        })
    })
    .await
}

/// One fs use of `op` on `root`:`path`, recorded as one capability event: `work` gets the
/// place and returns its value with the event's detail. Refusals of the path or of a write are
/// recorded as denials; so is anything `work` refuses as `denied` (a symlink out of the root).
pub async fn run<T, F, Fut>(
    call: &CallCtx,
    op: &str,
    root: &str,
    path: &str,
    access: Access,
    work: F,
) -> Result<T, CapError>
where
    F: FnOnce(Place) -> Fut,
    Fut: Future<Output = Result<(T, String), CapError>>,
{
    let target = target(call, root, path);
    if root.is_empty() {
        let ev = call.event("fs", &target);
        let m = "root: empty; name one of the roots roots() lists".to_string();
        ev.fail(&m);
        return Err(CapError::Invalid(m));
    }
    let absolute = grant(call, root, &target)?;
    let ev = call.event("fs", &target);
    let resolved = if absolute {
        RootDir {
            name: UNSAFE_ROOT.into(),
            dir: PathBuf::from("/"),
            read_only: false,
        }
    } else {
        match roots::resolve(&call.shared, root) {
            Ok(r) => r,
            Err(e) => {
                ev.fail(e.message());
                return Err(e);
            }
        }
    };
    if access == Access::Write
        && let Some(reason) = write_refusal(call, &resolved, absolute)
    {
        return Err(CapError::Denied(ev.deny(reason)));
    }
    let rel = match path::relative(path, root, absolute) {
        Ok(rel) => rel,
        Err(m) => return Err(CapError::Invalid(ev.deny(m))),
    };
    let remaining = Duration::from_millis(call.remaining_ms());
    let shown = target.clone();
    let result = tokio::time::timeout(remaining, async {
        let dir = open_root(call, &resolved).await?;
        let rel = if absolute {
            let follow = FOLLOWS_FINAL.contains(&op);
            blocking(move || Ok(unsafe_resolved(rel, follow))).await?
        } else {
            rel
        };
        work(Place {
            dir,
            rel,
            shown,
            absolute,
        })
        .await
    })
    .await
    .unwrap_or_else(|_| {
        Err(CapError::Timeout(format!(
            "fs {op} on {target} ran past the call's deadline; raise timeout_ms or ask for less"
        )))
    });
    match result {
        Ok((value, detail)) => {
            ev.ok(format!("{op}: {detail}"));
            Ok(value)
        }
        Err(CapError::Denied(m)) => Err(CapError::Denied(ev.deny(m))),
        Err(e) => {
            ev.fail(format!("{op}: {}", e.message()));
            Err(e)
        }
    }
}

/// Operations that act on what a final symlink points to; the others act on the link itself.
const FOLLOWS_FINAL: &[&str] = &["read", "list"];

/// `rel` under the unsafe root `/` with its symlinks resolved by the kernel (all of them when
/// `follow`, else all but the last component). cap-std treats an absolute symlink as leading out
/// of its Dir, even a Dir on `/` — and ordinary systems are full of them (`/etc/localtime`,
/// `/etc/alternatives/*`); under `/` there is no outside to protect, so they are resolved first.
/// A path that does not resolve (yet) is kept as it is, for the operation to report.
fn unsafe_resolved(rel: PathBuf, follow: bool) -> PathBuf {
    let full = std::path::Path::new("/").join(&rel);
    let resolved = if follow {
        std::fs::canonicalize(&full).ok()
    } else {
        match (full.parent(), full.file_name()) {
            (Some(parent), Some(name)) => std::fs::canonicalize(parent).ok().map(|p| p.join(name)),
            _ => None,
        }
    };
    match resolved.as_deref().and_then(|p| p.strip_prefix("/").ok()) {
        Some(p) if p.as_os_str().is_empty() => PathBuf::from("."),
        Some(p) => p.to_path_buf(),
        None => rel,
    }
}

/// The roots the plugin may name: the operator's roots its grant matches, and `/` when the
/// unsafe grant and the flag both allow it.
pub fn granted_roots(call: &CallCtx) -> Vec<RootInfo> {
    let policy = &call.shared.policy;
    let plugin_ro = policy.fs_read_only(&call.plugin);
    let mut out: Vec<RootInfo> = policy
        .roots()
        .filter(|(name, _)| policy.check_fs_root(&call.plugin, name) == Decision::Allow)
        .map(|(name, r)| RootInfo {
            name: name.to_string(),
            path: r.path.to_string_lossy().into_owned(),
            read_only: r.read_only || plugin_ro,
        })
        .collect();
    if policy.fs_unsafe(&call.plugin, &call.shared.flags) {
        out.push(RootInfo {
            name: UNSAFE_ROOT.into(),
            path: "/".into(),
            read_only: plugin_ro,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_the_unsafe_root_symlinks_resolve_except_a_final_one_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        std::fs::write(real.join("file"), "x").unwrap();
        std::os::unix::fs::symlink(real.join("file"), real.join("abs")).unwrap();
        let rel = |p: &std::path::Path| p.strip_prefix("/").unwrap().to_path_buf();
        let followed = unsafe_resolved(rel(&real.join("abs")), true);
        assert_eq!(followed, rel(&real.join("file")));
        let kept = unsafe_resolved(rel(&real.join("abs")), false);
        assert_eq!(kept, rel(&real.join("abs")));
        let missing = rel(&real.join("nope/deeper"));
        assert_eq!(unsafe_resolved(missing.clone(), true), missing);
        assert_eq!(
            unsafe_resolved(PathBuf::from("."), true),
            PathBuf::from(".")
        );
    }
}
