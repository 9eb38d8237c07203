//! The repository an action works on, and the [`Runner`] the SDK's git helpers use: git (and
//! kubectl) run through the host's `exec` capability in that repository, cut output read back
//! from the artifact store, warnings to the log.

use crate::args::At;
use crate::caps::artifacts;
use crate::caps::exec::{self, Command};
use crate::caps::fs;
use crate::caps::log;
use crate::caps::types::{ArtifactRef, CapError, ExecResult, FileKind};
use infra_sdk::git::{Opts, PARSE_MAX, Runner, relative};
use infra_sdk::prelude::*;

/// The repository an action works on.
pub struct Repo {
    /// The granted root.
    pub root: String,
    /// The directory under it.
    pub path: String,
    timeout_ms: u32,
}

impl Repo {
    /// The repository named by the call; refuses an absolute path or one leaving the root.
    pub fn new(at: &At, ctx: &Ctx) -> Result<Self, ToolError> {
        let root = at.root.clone().unwrap_or_else(|| "workspace".into());
        if root.is_empty() {
            return Err(ToolError::invalid(
                "root",
                "empty: name a root the policy grants (e.g. \"workspace\")",
            ));
        }
        let path = at.path.clone().unwrap_or_else(|| ".".into());
        relative("path", &path)?;
        // A clear answer naming the field before any program runs: git's own message for a
        // missing directory names neither the root nor the field.
        match fs::stat(&root, &path) {
            Ok(st) if st.kind == FileKind::Directory => {}
            Ok(_) => {
                return Err(ToolError::invalid(
                    "path",
                    format!(
                        "'{path}' under root '{root}' is not a directory: name the repository's directory"
                    ),
                ));
            }
            Err(CapError::NotFound(m)) => {
                return Err(ToolError::invalid(
                    "path",
                    format!(
                        "'{path}' does not exist under root '{root}' ({m}); name the repository's directory relative to the root"
                    ),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(Self {
            root,
            path,
            timeout_ms: ctx.timeout_ms,
        })
    }

    /// The call's remaining deadline, for the git capability.
    pub fn timeout_ms(&self) -> u32 {
        self.timeout_ms
    }

    /// The `exec` command running `program args` in the repository.
    fn command(&self, program: &str, args: Vec<String>, opts: Opts) -> Command {
        Command {
            program: program.into(),
            args,
            root: self.root.clone(),
            cwd: (self.path != ".").then(|| self.path.clone()),
            env: opts.env,
            stdin: opts.stdin,
            profile: None,
            timeout_ms: self.timeout_ms,
            max_output: opts.max_output.unwrap_or(PARSE_MAX),
        }
    }

    /// A refused or failed run of `program`, naming the repository.
    fn exec_error(&self, program: &str, e: CapError) -> ToolError {
        let e = ToolError::from(e);
        // The host's denials carry their own advice; a root it cannot find gets ours.
        let advice = if e.kind == ErrorKind::NotFound {
            " (is the root named in the policy's [roots] and granted under [plugin.repo.exec] roots?)"
        } else {
            ""
        };
        ToolError {
            message: format!("{program} in {}: {}{advice}", self.name(), e.message),
            ..e
        }
    }
}

impl Runner for Repo {
    fn name(&self) -> String {
        format!("{}:{}", self.root, self.path)
    }

    fn exec(&self, program: &str, args: &[String], opts: Opts) -> Result<ExecResult, ToolError> {
        exec::run(&self.command(program, args.to_vec(), opts))
            .map_err(|e| self.exec_error(program, e))
    }

    fn exec_all(
        &self,
        program: &str,
        runs: Vec<(Vec<String>, Opts)>,
    ) -> Vec<Result<ExecResult, ToolError>> {
        let cmds: Vec<Command> = runs
            .into_iter()
            .map(|(args, opts)| self.command(program, args, opts))
            .collect();
        exec::run_all(&cmds)
            .into_iter()
            .map(|r| r.map_err(|e| self.exec_error(program, e)))
            .collect()
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
