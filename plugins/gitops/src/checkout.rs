//! The repository a `render`, `plan` or `propose` works on — a directory under a granted root —
//! and the [`Runner`] the SDK's git helpers use there: git and kubectl run through the host's
//! `exec` capability, cut output read back from the artifact store, warnings to the log.

use crate::caps::artifacts;
use crate::caps::exec::{self, Command};
use crate::caps::log;
use crate::caps::types::{ArtifactRef, ExecResult};
use infra_sdk::git::{Opts, PARSE_MAX, Runner, relative};
use infra_sdk::prelude::*;

/// A directory under a granted root.
pub struct Checkout {
    /// The granted root.
    pub root: String,
    /// The directory under it.
    pub path: String,
    /// The call's deadline, for exec and git.
    pub timeout_ms: u32,
}

impl Checkout {
    /// The checkout named by `root` (default `workspace`) and `path` (default `.`); refuses an
    /// absolute path or one leaving the root.
    pub fn new(root: Option<&str>, path: Option<&str>, ctx: &Ctx) -> Result<Self, ToolError> {
        let root = root.unwrap_or("workspace");
        if root.is_empty() {
            return Err(ToolError::invalid(
                "root",
                "empty: name a root the policy grants (e.g. \"workspace\")",
            ));
        }
        let path = path.unwrap_or(".");
        relative("path", path)?;
        if path.starts_with('-') {
            return Err(ToolError::invalid(
                "path",
                "a directory name may not start with '-'",
            ));
        }
        Ok(Self {
            root: root.into(),
            path: path.into(),
            timeout_ms: ctx.timeout_ms,
        })
    }
}

impl Runner for Checkout {
    fn name(&self) -> String {
        format!("{}:{}", self.root, self.path)
    }

    fn exec(&self, program: &str, args: &[String], opts: Opts) -> Result<ExecResult, ToolError> {
        let cmd = Command {
            program: program.into(),
            args: args.to_vec(),
            root: self.root.clone(),
            cwd: (self.path != ".").then(|| self.path.clone()),
            env: opts.env,
            stdin: opts.stdin,
            profile: None,
            timeout_ms: self.timeout_ms,
            max_output: opts.max_output.unwrap_or(PARSE_MAX),
        };
        exec::run(&cmd).map_err(|e| {
            let e = ToolError::from(e);
            // A missing root or directory is named with the fields that chose it.
            let advice = if e.kind == ErrorKind::NotFound {
                " (check `root` — named in the policy's [roots] and granted under \
                 [plugin.gitops.exec] roots — and `path`, a directory under it)"
            } else {
                ""
            };
            ToolError {
                message: format!("{program} in {}: {}{advice}", self.name(), e.message),
                ..e
            }
        })
    }

    fn read_artifact(&self, uri: &str, offset: u64, len: u64) -> Result<Vec<u8>, ToolError> {
        Ok(artifacts::read(uri, offset, len)?)
    }

    fn put_artifact(
        &self,
        bytes: &[u8],
        media_type: &str,
        label: &str,
    ) -> Result<ArtifactRef, ToolError> {
        Ok(artifacts::put(bytes, media_type, label)?)
    }

    fn warn(&self, message: &str) {
        log::write(log::Level::Warn, message);
    }
}
