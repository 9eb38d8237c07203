//! `tf_plan` (and `tf_destroy` without a plan to apply): `init`, then `plan -out` into the
//! plugin's plan directory, the file renamed to its own sha256, `show -json` of it redacted
//! ([`summary::redact`]) and stored as an artifact, and the summary. The plan file itself stays
//! in the working directory (see the module doc of [`super`]).

use infra_sdk::prelude::*;
use infra_sdk::relative_path;
use sha2::{Digest, Sha256};

use super::summary::{self, Secrets, Summary};
use super::{Inputs, PLAN_DIR, Workspace, lock_timeout, strings};
use crate::caps::artifacts;
use crate::caps::fs::{self, WriteOptions};
use crate::caps::types::{ByteSource, KeyValue};

/// Largest plan file handled. It is read inline (never streamed into an artifact, which an
/// agent could read): a bigger one is refused before it is read.
pub const PLAN_MAX: u64 = 8 * 1024 * 1024;

/// Largest `show -json` output handled inline.
const JSON_MAX: u64 = 16 * 1024 * 1024;

/// What `tf_plan` answers.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Planned {
    /// The working directory, `<root>:<path>`.
    pub workspace: String,
    /// The plan's sha256: pass it as `plan_sha256` to `tf_apply` (or `tf_destroy`) with
    /// `apply: true` to apply exactly this plan.
    pub plan_sha256: String,
    /// Where the plan file is kept, relative to the root (inside the working directory; it
    /// holds variable values, so it is not an artifact).
    pub plan_file: String,
    /// A destroy plan (`-destroy`).
    pub destroy: bool,
    /// What applying it changes.
    pub summary: Summary,
    /// `terraform show -json` of the plan, sensitive values replaced by "(sensitive value)".
    pub plan_json: Artifact,
}

/// Plans the workspace (`destroy`: a destroy plan) and keeps the plan for `tf_apply`.
pub fn plan(ws: &Workspace, inputs: &Inputs, destroy: bool) -> Result<Planned, ToolError> {
    let (env, mut args) = inputs_args(inputs)?;
    let none = Secrets::default();
    ws.init(&none)?;
    fs::mkdir(&ws.root, &ws.file(PLAN_DIR))?;
    let pending = format!("{PLAN_DIR}/pending-{}.tfplan", unique());
    let mut plan_args = strings(&["plan", "-input=false", "-no-color"]);
    plan_args.push(lock_timeout());
    plan_args.push(format!("-out={pending}"));
    if destroy {
        plan_args.push("-destroy".into());
    }
    plan_args.append(&mut args);
    let planned = ws.terraform_ok(&plan_args, env, &none);
    let bytes = planned.and_then(|_| read_plan(ws, &pending));
    let _ = fs::remove(&ws.root, &ws.file(&pending), false);
    let bytes = bytes?;
    let sha = hex::encode(Sha256::digest(&bytes));
    let file = plan_file(&sha);
    fs::write(
        &ws.root,
        &ws.file(&file),
        &ByteSource::Bytes(bytes),
        WriteOptions {
            mode: Some(0o600),
            mkdirs: false,
            overwrite: true,
        },
    )?;
    let (json, _, summary) = show(ws, &file)?;
    let plan_json: Artifact = artifacts::put(
        json.as_bytes(),
        "application/json",
        &format!(
            "terraform show -json of plan {sha} in {} (sensitive values redacted)",
            ws.target()
        ),
    )?
    .into();
    Ok(Planned {
        workspace: ws.target(),
        plan_sha256: sha,
        plan_file: ws.file(&file),
        destroy,
        summary,
        plan_json,
    })
}

/// The plan file named by `sha`, relative to the working directory.
pub fn plan_file(sha: &str) -> String {
    format!("{PLAN_DIR}/{sha}.tfplan")
}

/// The bytes of the plan file `rel` (relative to the working directory), read inline only.
pub fn read_plan(ws: &Workspace, rel: &str) -> Result<Vec<u8>, ToolError> {
    let path = ws.file(rel);
    let st = fs::stat(&ws.root, &path)?;
    if st.size > PLAN_MAX {
        return Err(ToolError::failed(format!(
            "the plan file {path} is {} bytes, more than the {PLAN_MAX} this tool handles; plan a smaller part (`targets`) or split the configuration",
            st.size
        )));
    }
    let r = fs::read(&ws.root, &path, PLAN_MAX)?;
    r.data.ok_or_else(|| {
        ToolError::failed(format!(
            "the plan file {path} did not come back inline; raise [limits] capture_bytes to at least {PLAN_MAX}"
        ))
    })
}

/// `terraform show -json` of the plan file `rel`: the redacted JSON text, the sensitive values
/// found (to scrub other output of the same plan) and the summary.
pub fn show(ws: &Workspace, rel: &str) -> Result<(String, Secrets, Summary), ToolError> {
    let args = vec![
        "show".into(),
        "-json".into(),
        "-no-color".into(),
        rel.into(),
    ];
    let r = ws.terraform(&args, Vec::new(), JSON_MAX)?;
    if r.exit_code != Some(0) {
        return Err(ws.failure(&args, &r, &Secrets::default()));
    }
    if r.stdout_truncated {
        return Err(ToolError::failed(format!(
            "terraform show -json printed more than {JSON_MAX} bytes; plan a smaller part (`targets`)"
        )));
    }
    let mut plan: Value = serde_json::from_slice(&r.stdout).map_err(|e| {
        ToolError::failed(format!(
            "terraform show -json printed no JSON ({e}); is /usr/local/bin/terraform Terraform 1.x?"
        ))
    })?;
    let secrets = summary::redact(&mut plan);
    let summary = summary::summarize(&plan);
    let text = serde_json::to_string(&plan)
        .map_err(|e| ToolError::failed(format!("serialising the plan: {e}")))?;
    Ok((text, secrets, summary))
}

/// The variables as `TF_VAR_*` and the arguments for `var_files` and `targets`.
fn inputs_args(inputs: &Inputs) -> Result<(Vec<KeyValue>, Vec<String>), ToolError> {
    let mut env = Vec::new();
    for (name, value) in inputs.vars.iter().flatten() {
        let ok = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(ToolError::invalid(
                "vars",
                format!(
                    "'{name}' is not a variable name this tool passes (letters, digits and '_'); put it in a .tfvars file and name it in `var_files`"
                ),
            ));
        }
        env.push(KeyValue {
            key: format!("TF_VAR_{name}"),
            value: value.clone(),
        });
    }
    let mut args = Vec::new();
    for f in inputs.var_files.iter().flatten() {
        relative_path("var_files", f)?;
        if f.is_empty() || f.starts_with('-') || f.contains('\0') {
            return Err(ToolError::invalid(
                "var_files",
                format!("'{f}' is not a file name: give a .tfvars file relative to `path`"),
            ));
        }
        args.push(format!("-var-file={f}"));
    }
    for t in inputs.targets.iter().flatten() {
        if t.is_empty() || t.starts_with('-') || t.chars().any(char::is_control) {
            return Err(ToolError::invalid(
                "targets",
                format!(
                    "'{t}' is not a resource address: write e.g. `terraform_data.a` or `module.db`"
                ),
            ));
        }
        args.push(format!("-target={t}"));
    }
    Ok((env, args))
}

/// A name no other plan of this workspace uses at the same time.
pub fn unique() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{now:x}")
}
