//! Terraform through the host's `exec` capability, in a working directory inside a granted
//! root: `tf_plan` ([`plan`]), `tf_apply` and `tf_destroy` ([`apply`]), the plan's summary and
//! the redaction of its sensitive values ([`summary`]).
//!
//! A saved plan stays inside the working directory, under [`PLAN_DIR`], named by its own
//! sha256: it holds variable values in clear (sensitive ones too), so it never becomes an
//! artifact and its bytes never leave this plugin; the answer carries its sha256 only, which is
//! both the reference `tf_apply` takes and the proof the file is unchanged.

pub mod apply;
pub mod plan;
pub mod summary;

use std::collections::BTreeMap;

use infra_sdk::prelude::*;
use infra_sdk::relative_path;

use crate::caps::exec::{self, Command};
use crate::caps::fs;
use crate::caps::types::{CapError, ExecResult, FileKind, KeyValue};

/// The plugin-owned directory of saved plans, inside the working directory.
pub const PLAN_DIR: &str = ".infra-terraform";

/// How long terraform waits for the state lock before giving up.
const LOCK_TIMEOUT: &str = "-lock-timeout=30s";

/// Bytes of terraform's human output kept inline (errors quote from it).
const OUTPUT_MAX: u64 = 256 * 1024;

/// A Terraform working directory: a granted root and a directory under it.
pub struct Workspace {
    /// The granted root.
    pub root: String,
    /// The directory under it, normalised (`.` for the root itself).
    pub path: String,
    timeout_ms: u32,
}

/// Where the call runs terraform, as every terraform action takes it.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Workdir {
    /// A root of the policy's `[roots]` granted under `[plugin.gitops.exec] roots` (writable:
    /// terraform writes `.terraform`, the state and the plan there).
    pub root: String,
    /// The working directory (the configuration's `.tf` files) relative to the root; `.` for
    /// the root itself. Never absolute, never out of the root.
    pub path: String,
}

/// What a plan reads besides the configuration.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct Inputs {
    /// Variable values as strings (passed as `TF_VAR_<name>`). They are recorded with the
    /// call's arguments in the audit log: give sensitive values in a `var_files` file instead.
    pub vars: Option<BTreeMap<String, String>>,
    /// `.tfvars` files relative to the working directory (`-var-file`), e.g. the operator's
    /// `secrets.auto.tfvars`; their values never appear in the answer when the variable is
    /// `sensitive = true`.
    pub var_files: Option<Vec<String>>,
    /// Resource addresses to limit the plan to (`-target`), e.g. `module.db` or
    /// `terraform_data.a`. For exceptional cases, as Terraform says.
    pub targets: Option<Vec<String>>,
}

impl Workspace {
    /// The working directory of the call: `path` relative to `root`, an existing directory.
    pub fn new(w: &Workdir, ctx: &Ctx) -> Result<Self, ToolError> {
        if w.root.is_empty() {
            return Err(ToolError::invalid(
                "root",
                "empty: name a root the policy grants under [plugin.gitops.exec] roots",
            ));
        }
        relative_path("path", &w.path)?;
        let path = normalise(&w.path);
        match fs::stat(&w.root, &path) {
            Ok(st) if st.kind == FileKind::Directory => {}
            Ok(_) => {
                return Err(ToolError::invalid(
                    "path",
                    format!(
                        "'{path}' under root '{}' is not a directory: name the directory of the configuration's .tf files",
                        w.root
                    ),
                ));
            }
            Err(CapError::NotFound(m)) if m.contains("is not defined") => {
                return Err(ToolError::invalid("root", m));
            }
            Err(CapError::NotFound(m)) => {
                return Err(ToolError::invalid(
                    "path",
                    format!(
                        "'{path}' does not exist under root '{}' ({m}); name the working directory relative to the root",
                        w.root
                    ),
                ));
            }
            Err(CapError::Denied(m)) => {
                return Err(ToolError::denied(format!(
                    "root: {m} (grant it under [plugin.gitops.fs] and [plugin.gitops.exec] roots)"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(Self {
            root: w.root.clone(),
            path,
            timeout_ms: ctx.timeout_ms,
        })
    }

    /// `<root>:<path>`: the workspace as the guard, the lock and the audit record name it.
    pub fn target(&self) -> String {
        format!("{}:{}", self.root, self.path)
    }

    /// A file of the working directory, as the `fs` capability names it (relative to the root).
    pub fn file(&self, rel: &str) -> String {
        match self.path.as_str() {
            "." => rel.to_string(),
            p => format!("{p}/{rel}"),
        }
    }

    /// Runs `terraform args` in the working directory, whatever the exit code.
    pub fn terraform(
        &self,
        args: &[String],
        env: Vec<KeyValue>,
        max_output: u64,
    ) -> Result<ExecResult, ToolError> {
        let cmd = Command {
            program: "terraform".into(),
            args: args.to_vec(),
            root: self.root.clone(),
            cwd: (self.path != ".").then(|| self.path.clone()),
            env,
            stdin: None,
            profile: None,
            timeout_ms: self.timeout_ms,
            max_output,
        };
        exec::run(&cmd).map_err(|e| {
            let e = ToolError::from(e);
            ToolError {
                message: format!("terraform in {}: {}", self.target(), e.message),
                ..e
            }
        })
    }

    /// Runs `terraform args`; a non-zero exit is an error quoting terraform's message, with
    /// the values of `secrets` taken out.
    pub fn terraform_ok(
        &self,
        args: &[String],
        env: Vec<KeyValue>,
        secrets: &summary::Secrets,
    ) -> Result<ExecResult, ToolError> {
        let r = self.terraform(args, env, OUTPUT_MAX)?;
        if r.exit_code == Some(0) {
            return Ok(r);
        }
        Err(self.failure(args, &r, secrets))
    }

    /// The error for a terraform run that did not succeed.
    pub fn failure(
        &self,
        args: &[String],
        r: &ExecResult,
        secrets: &summary::Secrets,
    ) -> ToolError {
        let stderr = secrets.scrub(&String::from_utf8_lossy(&r.stderr));
        let msg = cut(stderr.trim(), 4000);
        let how = match (&r.exit_code, &r.signal) {
            (_, Some(s)) => format!("killed by {s}"),
            (Some(c), None) => format!("exit {c}"),
            (None, None) => "no exit status".into(),
        };
        let sub = args.first().map_or("", String::as_str);
        let advice = if msg.contains("Failed to query available provider packages")
            || msg.contains("could not connect to registry")
        {
            "; this configuration needs a provider download, which needs `network = true` under \
             [plugin.gitops.exec] (or the provider in the root's plugin cache)"
        } else if sub == "init" {
            "; fix the configuration (terraform validate shows where) and plan again"
        } else {
            ""
        };
        ToolError::failed(format!(
            "terraform {sub} in {} failed ({how}): {msg}{advice}",
            self.target()
        ))
    }

    /// `terraform init`: modules and providers (from the root's plugin cache, which the host
    /// sets), no prompts.
    pub fn init(&self, secrets: &summary::Secrets) -> Result<(), ToolError> {
        let args = strings(&["init", "-input=false", "-no-color", LOCK_TIMEOUT]);
        self.terraform_ok(&args, Vec::new(), secrets).map(|_| ())
    }
}

/// `a/./b/` as `a/b`, the empty path as `.`: one spelling per directory, so the guard's target
/// and lock are the same whatever the agent wrote (the host names it from the real path).
fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    match parts.is_empty() {
        true => ".".into(),
        false => parts.join("/"),
    }
}

/// `text` cut to at most `max` bytes on a character boundary.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// `args` as owned strings.
pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The lock timeout every state-touching run passes.
pub fn lock_timeout() -> String {
    LOCK_TIMEOUT.to_string()
}
