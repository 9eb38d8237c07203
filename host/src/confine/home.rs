//! The per-run `HOME`: a fresh directory (0700) that the program may write, holding `tmp/` (its
//! `TMPDIR`) and whatever credential files the host writes for the run; removed with everything
//! in it when the run ends.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::Refusal;

/// A run's home directory; removed on drop.
#[derive(Debug)]
pub struct RunHome {
    dir: tempfile::TempDir,
}

impl RunHome {
    /// A new, empty home (0700) with `tmp/` in it.
    pub fn new() -> Result<RunHome, Refusal> {
        let failed = |e: std::io::Error| {
            Refusal::Failed(format!(
                "cannot make the run's home directory under {}: {e}; check that TMPDIR is writable",
                std::env::temp_dir().display()
            ))
        };
        let dir = tempfile::Builder::new()
            .prefix("infra-exec-")
            .tempdir()
            .map_err(failed)?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(failed)?;
        std::fs::create_dir(dir.path().join("tmp")).map_err(failed)?;
        Ok(RunHome { dir })
    }

    /// The directory (`HOME`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `HOME/tmp` (`TMPDIR`).
    pub fn tmp(&self) -> PathBuf {
        self.dir.path().join("tmp")
    }

    /// Writes `name` in the home with `mode`, created new (never through a link).
    pub fn write(&self, name: &str, content: &[u8], mode: u32) -> Result<PathBuf, Refusal> {
        use std::io::Write;
        let path = self.dir.path().join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .and_then(|mut f| f.write_all(content).map(|_| f))
            .map_err(|e| {
                Refusal::Failed(format!("cannot write {} for the run: {e}", path.display()))
            })?;
        f.flush()
            .map_err(|e| Refusal::Failed(format!("writing {}: {e}", path.display())))?;
        Ok(path)
    }
}
