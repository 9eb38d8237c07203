//! The state directory: where config, artifacts, the audit log and the compile cache live.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The resolved state directory and the files in it.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Resolves the directory: `INFRA_HOME`, else `MCP_PROFILES_DIR`, else
    /// `$XDG_STATE_HOME/infra`, else `~/.local/state/infra`.
    ///
    /// Never a directory found in the working directory: MCP clients start servers inside the
    /// user's workspace, and a cloned repository is attacker-controlled (it could plant a policy,
    /// profiles that send local files to its own server, or plugins).
    pub fn resolve() -> anyhow::Result<Self> {
        Self::at(Self::locate(|k| std::env::var_os(k))?)
    }

    /// Where [`StateDir::resolve`] looks, given the environment `env`.
    pub fn locate(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> anyhow::Result<PathBuf> {
        let var = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(p) = var("INFRA_HOME").or_else(|| var("MCP_PROFILES_DIR")) {
            return Ok(p);
        }
        // The XDG spec says a relative XDG_STATE_HOME is invalid and must be ignored: it would
        // point into whatever directory infra happens to start in.
        if let Some(x) = var("XDG_STATE_HOME").filter(|x| x.is_absolute()) {
            return Ok(x.join("infra"));
        }
        if let Some(h) = var("HOME").filter(|h| h.is_absolute()) {
            return Ok(h.join(".local/state/infra"));
        }
        anyhow::bail!(
            "no state directory: HOME is not set; set INFRA_HOME to an absolute path of a directory only you can write"
        )
    }

    /// Uses `root` as the state directory: created private (`0700`) when missing, refused when
    /// another user owns it or group/others may write it.
    pub fn at(root: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let root = root.into();
        private_dir(&root, "state directory")?;
        Ok(Self { root })
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `policy.toml`, the user policy (replaces the embedded default when present).
    pub fn policy(&self) -> PathBuf {
        self.root.join("policy.toml")
    }

    /// `profiles.json`: HTTP and Postgres profiles.
    pub fn profiles(&self) -> PathBuf {
        self.root.join("profiles.json")
    }

    /// `audit.jsonl`: the hash-chained audit log.
    pub fn audit(&self) -> PathBuf {
        self.root.join("audit.jsonl")
    }

    /// `targets.json`: ssh targets.
    pub fn targets(&self) -> PathBuf {
        self.root.join("targets.json")
    }

    /// `known_hosts.json`: ssh host keys pinned on first use.
    pub fn known_hosts(&self) -> PathBuf {
        self.root.join("known_hosts.json")
    }

    /// `state.json`, the `state` tool's persistent scope.
    pub fn values(&self) -> PathBuf {
        self.root.join("state.json")
    }

    /// `runbooks.json`, user runbooks (unless `MCP_RUNBOOKS_PATH` names another file).
    pub fn runbooks(&self) -> PathBuf {
        self.root.join("runbooks.json")
    }

    /// `capabilities.json`, the user's intent map (unless `MCP_CAPABILITIES_PATH` names another
    /// file).
    pub fn capabilities(&self) -> PathBuf {
        self.root.join("capabilities.json")
    }

    /// `jobs.json`: background commands started with `exec_detached`.
    pub fn jobs(&self) -> PathBuf {
        self.root.join("jobs.json")
    }

    /// `artifacts/`: stored outputs.
    pub fn artifacts(&self) -> PathBuf {
        self.root.join("artifacts")
    }

    /// `locks/`: the guard's per-target write locks.
    pub fn locks(&self) -> PathBuf {
        self.root.join("locks")
    }

    /// `plugins/`: third-party plugins (`*.wasm` with a `*.toml` manifest beside each).
    pub fn plugins(&self) -> PathBuf {
        self.root.join("plugins")
    }

    /// Precompiled components: `INFRA_CACHE_DIR` when set (one cache shared by several state
    /// directories), else `cache/` in the state directory.
    pub fn cache(&self) -> PathBuf {
        match std::env::var_os("INFRA_CACHE_DIR").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => self.root.join("cache"),
        }
    }
}

/// Creates `dir` (and missing parents) with mode `0700`, or checks an existing one: it must be a
/// directory owned by the user infra runs as, and not writable by group or others — whoever can
/// write there can plant a policy, profiles or plugins. `what` names it in errors.
pub fn private_dir(dir: &Path, what: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| {
            format!(
                "cannot create the {what} {}; set INFRA_HOME to a directory you can write",
                dir.display()
            )
        })?;
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("cannot read the {what} {}", dir.display()))?;
    if !meta.is_dir() {
        anyhow::bail!(
            "the {what} {} is not a directory; move it away or set INFRA_HOME elsewhere",
            dir.display()
        );
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        anyhow::bail!(
            "the {what} {} belongs to uid {}, not to you (uid {me}): another user could plant a policy, profiles or plugins there; use a directory of your own (INFRA_HOME)",
            dir.display(),
            meta.uid()
        );
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        anyhow::bail!(
            "the {what} {} is writable by group or others (mode {mode:03o}): anyone who can write there could plant a policy, profiles or plugins; run `chmod 700 {}`",
            dir.display(),
            dir.display()
        );
    }
    if mode & 0o077 != 0 {
        // Readable but not writable by others: not an attack route, but what infra keeps there
        // (audit log, artifacts) is the user's; tighten it rather than refuse to start.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).with_context(
            || {
                format!(
                    "cannot make the {what} {} private; run `chmod 700` on it",
                    dir.display()
                )
            },
        )?;
    }
    Ok(())
}

/// Reads a config file of the state directory; `None` when it does not exist (no entries).
pub fn read_optional(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => {
            Err(e).with_context(|| format!("cannot read {}; check its permissions", path.display()))
        }
    }
}
