//! From a program name to the file that runs: the operator's `[programs]` entry (or, for an
//! unsafe grant, the host's `PATH` or an absolute path), with its sha256 pin checked right
//! before the run so a binary swapped after the policy was written is refused.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Refusal;
use super::env::PATH;
use crate::policy::Policy;

/// A program resolved for one run.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The name the plugin used.
    pub name: String,
    /// The file to execute.
    pub path: PathBuf,
}

impl Resolved {
    /// The file's name (`git` for `/usr/bin/git`): what the program guards key on.
    pub fn file_name(&self) -> &str {
        self.path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
    }
}

/// Resolves `name` through `[programs]`; with `unsafe_ok`, also an absolute path or a name on
/// the host's `PATH`. The pin, when there is one, is checked here: call this right before the
/// run.
pub fn resolve(policy: &Policy, name: &str, unsafe_ok: bool) -> Result<Resolved, Refusal> {
    if let Some(p) = policy.program(name) {
        check_file(name, &p.path)?;
        if let Some(pin) = &p.sha256 {
            let got = sha256_file(&p.path)?;
            if &got != pin {
                return Err(Refusal::Denied(format!(
                    "program '{name}': {} has sha256 {got}, but [programs] {name} pins {pin}; the binary changed since the policy was written — check it, then update the pin in {} (`sha256sum {}`)",
                    p.path.display(),
                    policy.origin(),
                    p.path.display()
                )));
            }
        }
        return Ok(Resolved {
            name: name.into(),
            path: p.path.clone(),
        });
    }
    if !unsafe_ok {
        return Err(Refusal::NotFound(format!(
            "program '{name}' is not defined; the operator names programs under [programs] in {} (e.g. {name} = \"/usr/bin/{name}\")",
            policy.origin()
        )));
    }
    let path = if name.starts_with('/') {
        PathBuf::from(name)
    } else if name.contains('/') {
        return Err(Refusal::Invalid(format!(
            "program: '{name}' is neither a name on PATH nor an absolute path; give one of the two"
        )));
    } else {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_else(|| PATH.into()))
            .map(|d| d.join(name))
            .find(|p| is_executable(p))
            .ok_or_else(|| {
                Refusal::NotFound(format!(
                    "program '{name}' is not on the host's PATH; give its absolute path"
                ))
            })?
    };
    check_file(name, &path)?;
    Ok(Resolved {
        name: name.into(),
        path,
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn check_file(name: &str, path: &Path) -> Result<(), Refusal> {
    if !path.exists() {
        return Err(Refusal::NotFound(format!(
            "program '{name}': {} does not exist on this host; install it, or correct its path under [programs]",
            path.display()
        )));
    }
    if !is_executable(path) {
        return Err(Refusal::Invalid(format!(
            "program '{name}': {} is not an executable file; correct its path under [programs]",
            path.display()
        )));
    }
    Ok(())
}

/// Lowercase hex sha256 of the file at `path`.
pub fn sha256_file(path: &Path) -> Result<String, Refusal> {
    let mut f = std::fs::File::open(path).map_err(|e| {
        Refusal::Failed(format!(
            "cannot read {} to check its sha256 pin: {e}",
            path.display()
        ))
    })?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Refusal::Failed(format!("reading {}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}
