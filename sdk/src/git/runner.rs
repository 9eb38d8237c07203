//! The transport of every git helper: a [`Runner`] runs a program in one repository (through
//! the plugin's own `exec` binding) and reads and stores artifacts; the provided methods turn
//! git's failures into errors naming the repository and reread output the host cut.

use crate::caps::types::{ArtifactRef, ByteSource, ExecResult, KeyValue};
use crate::prelude::*;

/// Default bytes of a diff, patch or render returned inline.
pub const INLINE_MAX: u64 = 64 * 1024;

/// Bytes of machine-format output (status, numstat, log, renders) parsed at most: past it the
/// lists are cut and say so. Well under an instance's memory limit.
pub const PARSE_MAX: u64 = 8 * 1024 * 1024;

/// Options of one run.
#[derive(Default)]
pub struct Opts {
    /// Variables for the host to add (each must be granted).
    pub env: Vec<KeyValue>,
    /// Standard input.
    pub stdin: Option<ByteSource>,
    /// Bytes of each stream inline (default [`PARSE_MAX`]).
    pub max_output: Option<u64>,
}

/// One repository and the capabilities the git helpers need, implemented by each plugin over
/// its own `exec`, `artifacts` and `log` bindings (the SDK binds no capability).
pub trait Runner {
    /// `root:path`, as errors and outputs name the repository.
    fn name(&self) -> String;

    /// Runs `program args` in the repository; returns how it ended, whatever the exit code.
    fn exec(&self, program: &str, args: &[String], opts: Opts) -> Result<ExecResult, ToolError>;

    /// `len` bytes of an artifact from `offset`.
    fn read_artifact(&self, uri: &str, offset: u64, len: u64) -> Result<Vec<u8>, ToolError>;

    /// Stores `bytes` as an artifact.
    fn put_artifact(
        &self,
        bytes: &[u8],
        media_type: &str,
        label: &str,
    ) -> Result<ArtifactRef, ToolError>;

    /// A warning for the log (the agent sees it as a notification).
    fn warn(&self, message: &str);

    /// Runs independent `program` runs, `(args, opts)` each, at once where the plugin's `exec`
    /// can (its `run-all`); results in order. By default one after the other through
    /// [`Runner::exec`].
    fn exec_all(
        &self,
        program: &str,
        runs: Vec<(Vec<String>, Opts)>,
    ) -> Vec<Result<ExecResult, ToolError>> {
        runs.into_iter()
            .map(|(args, opts)| self.exec(program, &args, opts))
            .collect()
    }

    /// Independent `git` runs at once, each as [`Runner::git`]; results in order. They may
    /// overlap, so each runs with `--no-optional-locks`: none takes the index lock another (or
    /// the user's own git) could then find held.
    fn git_all(&self, runs: &[Vec<String>]) -> Vec<Result<ExecResult, ToolError>> {
        let batch = runs
            .iter()
            .map(|a| {
                let mut args = vec!["--no-optional-locks".to_string()];
                args.extend(a.iter().cloned());
                (args, Opts::default())
            })
            .collect();
        self.exec_all("git", batch)
            .into_iter()
            .zip(runs)
            .map(|(r, args)| match r {
                Ok(r) if r.exit_code == Some(0) => Ok(r),
                Ok(r) => Err(self.failure(args, &r)),
                Err(e) => Err(e),
            })
            .collect()
    }

    /// Runs `git args`; a non-zero exit is an error carrying git's own message.
    fn git(&self, args: &[String]) -> Result<ExecResult, ToolError> {
        self.git_with(args, Opts::default())
    }

    /// [`Runner::git`] with environment, stdin or an output cap.
    fn git_with(&self, args: &[String], opts: Opts) -> Result<ExecResult, ToolError> {
        let r = self.exec("git", args, opts)?;
        if r.exit_code == Some(0) {
            return Ok(r);
        }
        Err(self.failure(args, &r))
    }

    /// The error for a git run that did not succeed.
    fn failure(&self, args: &[String], r: &ExecResult) -> ToolError {
        let stderr = String::from_utf8_lossy(&r.stderr);
        let msg = stderr.trim();
        let how = match (&r.exit_code, &r.signal) {
            (_, Some(s)) => format!("killed by {s}"),
            (Some(c), None) => format!("exit {c}"),
            (None, None) => "no exit status".into(),
        };
        let sub = args.first().map_or("", String::as_str);
        let advice = if msg.contains("not a git repository") {
            format!(
                "; `path` ({}) must be a git repository inside its root",
                self.name()
            )
        } else if msg.contains("Please tell me who you are") || msg.contains("empty ident") {
            "; give `author` ({\"name\": …, \"email\": …}) in the call".into()
        } else {
            String::new()
        };
        ToolError::failed(format!(
            "git {sub} in {} failed ({how}): {}{advice}",
            self.name(),
            super::cut(msg, 2000)
        ))
        .with_detail(json!({"exit_code": r.exit_code, "stderr": super::cut(msg, 8000)}))
    }

    /// The whole stdout of a run, read back from its artifact when it was cut (at most
    /// [`PARSE_MAX`] bytes); the flag says the result is still partial.
    fn full_stdout(&self, r: &ExecResult) -> Result<(Vec<u8>, bool), ToolError> {
        let Some(a) = r.stdout_artifact.as_ref().filter(|_| r.stdout_truncated) else {
            return Ok((r.stdout.clone(), false));
        };
        let len = a.size.min(PARSE_MAX);
        let mut out = Vec::with_capacity(len as usize);
        while (out.len() as u64) < len {
            let chunk = self.read_artifact(
                &a.uri,
                out.len() as u64,
                (len - out.len() as u64).min(1 << 20),
            )?;
            if chunk.is_empty() {
                break;
            }
            out.extend(chunk);
        }
        let partial = a.size > PARSE_MAX;
        if partial {
            // The answer's lists say they are cut; the log says why and where the whole is.
            self.warn(&format!(
                "output of {} bytes read up to {PARSE_MAX} bytes for parsing; the whole output is in {}",
                a.size, a.uri
            ));
        }
        Ok((out, partial))
    }
}
