//! The state directory: where config, artifacts, the audit log and the compile cache live.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The resolved state directory and the files in it.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Resolves the directory as DESIGN.md says: `INFRA_HOME`, else `MCP_PROFILES_DIR`, else
    /// `./.infra` when it exists, else `$XDG_STATE_HOME/infra` (`~/.local/state/infra`).
    pub fn resolve() -> anyhow::Result<Self> {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let root = if let Some(p) = env("INFRA_HOME").or_else(|| env("MCP_PROFILES_DIR")) {
            p
        } else if Path::new(".infra").is_dir() {
            PathBuf::from(".infra")
        } else if let Some(x) = env("XDG_STATE_HOME") {
            x.join("infra")
        } else if let Some(h) = env("HOME") {
            h.join(".local/state/infra")
        } else {
            anyhow::bail!("no state directory: set INFRA_HOME to a writable directory");
        };
        Self::at(root)
    }

    /// Uses `root` as the state directory, creating it when missing.
    pub fn at(root: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).with_context(|| {
            format!(
                "cannot create the state directory {}; set INFRA_HOME to a writable directory",
                root.display()
            )
        })?;
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

    /// `jobs.json`: background commands started with `exec_detached`.
    pub fn jobs(&self) -> PathBuf {
        self.root.join("jobs.json")
    }

    /// `artifacts/`: stored outputs.
    pub fn artifacts(&self) -> PathBuf {
        self.root.join("artifacts")
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
