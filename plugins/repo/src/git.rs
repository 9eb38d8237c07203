//! Running git (and kubectl) in the repository through the host's `exec` capability: the
//! argument hygiene every action shares (revisions that cannot pass for options, paths taken
//! literally) and the mapping of git's failures to errors naming the field.

use crate::args::At;
use crate::caps::artifacts;
use crate::caps::exec::{self, Command};
use crate::caps::fs;
use crate::caps::log;
use crate::caps::types::{ByteSource, CapError, ExecResult, FileKind, KeyValue};
use infra_sdk::prelude::*;

/// Default bytes of a diff, patch or render returned inline.
pub const INLINE_MAX: u64 = 64 * 1024;

/// Bytes of machine-format output (status, numstat, log) the plugin parses at most: past it,
/// the lists are cut and say so. Well under the instance's memory limit.
const PARSE_MAX: u64 = 8 * 1024 * 1024;

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

    /// `root:path`, as errors and outputs name the repository.
    pub fn name(&self) -> String {
        format!("{}:{}", self.root, self.path)
    }

    /// The call's remaining deadline, for the git capability.
    pub fn timeout_ms(&self) -> u32 {
        self.timeout_ms
    }

    /// Runs `program args` in the repository; returns how it ended, whatever the exit code.
    pub fn exec(
        &self,
        program: &str,
        args: &[String],
        opts: Opts,
    ) -> Result<ExecResult, ToolError> {
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
        })
    }

    /// Runs `git args`; a non-zero exit is an error carrying git's own message.
    pub fn git(&self, args: &[String]) -> Result<ExecResult, ToolError> {
        self.git_with(args, Opts::default())
    }

    /// [`Repo::git`] with environment, stdin or an output cap.
    pub fn git_with(&self, args: &[String], opts: Opts) -> Result<ExecResult, ToolError> {
        let r = self.exec("git", args, opts)?;
        if r.exit_code == Some(0) {
            return Ok(r);
        }
        Err(self.failure(args, &r))
    }

    /// The error for a git run that did not succeed.
    pub fn failure(&self, args: &[String], r: &ExecResult) -> ToolError {
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
                "; `path` ({}) must be a git repository inside root '{}'",
                self.path, self.root
            )
        } else if msg.contains("Please tell me who you are") || msg.contains("empty ident") {
            "; give `author` ({\"name\": …, \"email\": …}) in the call".into()
        } else {
            String::new()
        };
        ToolError::failed(format!(
            "git {sub} in {} failed ({how}): {}{advice}",
            self.name(),
            crate::parse::cut(msg, 2000)
        ))
        .with_detail(json!({"exit_code": r.exit_code, "stderr": crate::parse::cut(msg, 8000)}))
    }
}

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

/// The whole stdout of a run, read back from its artifact when it was cut (at most
/// [`PARSE_MAX`] bytes); the flag says the result is still partial.
pub fn full_stdout(r: &ExecResult) -> Result<(Vec<u8>, bool), ToolError> {
    let Some(a) = r.stdout_artifact.as_ref().filter(|_| r.stdout_truncated) else {
        return Ok((r.stdout.clone(), false));
    };
    let len = a.size.min(PARSE_MAX);
    let mut out = Vec::with_capacity(len as usize);
    while (out.len() as u64) < len {
        let chunk = artifacts::read(
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
        // The answer's lists say they are cut; the log says why and where the whole output is.
        log::write(
            log::Level::Warn,
            &format!(
                "output of {} bytes read up to {PARSE_MAX} bytes for parsing; the whole output is in {}",
                a.size, a.uri
            ),
        );
    }
    Ok((out, partial))
}

/// Refuses an absolute `value` or one whose `..` climbs out of where it starts.
pub use infra_sdk::relative_path as relative;

/// A revision from the call, refused when git could read it as an option.
pub fn rev(field: &str, value: &str) -> Result<String, ToolError> {
    if value.is_empty() || value.starts_with('-') || value.contains('\0') {
        return Err(ToolError::invalid(
            field,
            format!("'{value}' is not a revision: give a branch, tag, commit or range (`a..b`)"),
        ));
    }
    Ok(value.to_string())
}

/// Paths from the call as literal pathspecs (no globbing, no magic), after `--`.
pub fn pathspecs(field: &str, paths: &[String]) -> Result<Vec<String>, ToolError> {
    let mut out = vec!["--".to_string()];
    for p in paths {
        relative(field, p)?;
        if p.is_empty() || p.contains('\0') {
            return Err(ToolError::invalid(
                field,
                "an empty path: name a file or directory",
            ));
        }
        out.push(format!(":(literal){p}"));
    }
    Ok(out)
}

/// `args` as owned strings.
pub fn args(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_revisions_that_escape_or_pass_for_options_are_refused() {
        assert!(relative("path", "a/../b").is_ok());
        assert_eq!(
            relative("path", "a/../../b").unwrap_err().field.as_deref(),
            Some("path")
        );
        assert!(
            relative("path", "/etc")
                .unwrap_err()
                .message
                .contains("absolute")
        );
        assert!(rev("rev", "--output=/tmp/x").is_err());
        assert_eq!(rev("rev", "main~2..HEAD").unwrap(), "main~2..HEAD");
        assert_eq!(
            pathspecs("paths", &["*.rs".into()]).unwrap(),
            ["--", ":(literal)*.rs"]
        );
        assert!(pathspecs("paths", &["../x".into()]).is_err());
    }
}
