//! `tf_apply` and `tf_destroy` with a plan: the plan named by `plan_sha256` is read and its
//! bytes checked against that sha256 (a plan changed since `tf_plan` is refused), copied as
//! checked to a file of this call, summed up again from that copy, and — with `apply: true` and
//! the host guard's approval for the workspace — applied from that copy, so what runs is
//! exactly the plan reviewed. Terraform itself refuses a plan whose state moved on; that is
//! answered as a stale plan to make again.

use infra_sdk::prelude::*;
use sha2::{Digest, Sha256};

use super::plan::{self, plan_file, read_plan};
use super::summary::Summary;
use super::{PLAN_DIR, Workspace, cut, lock_timeout, strings};
use crate::apply::{ApprovalInfo, approve};
use crate::caps::fs::{self, WriteOptions};
use crate::caps::types::ByteSource;

/// What `tf_apply` / `tf_destroy` with a plan answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Applied {
    /// The working directory, `<root>:<path>`.
    pub workspace: String,
    /// The plan applied (or that would be).
    pub plan_sha256: String,
    /// What the plan changes.
    pub summary: Summary,
    /// The guard's approval, when applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalInfo>,
    /// Terraform's closing line, e.g. `Apply complete! Resources: 2 added, 0 changed, 0
    /// destroyed.`, when applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

/// Checks the plan `sha` of the workspace and, with `apply`, applies it; `destroy` demands a
/// plan that only destroys.
pub fn apply(ws: &Workspace, sha: &str, apply: bool, destroy: bool) -> Result<Applied, ToolError> {
    if sha.len() != 64
        || !sha
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(ToolError::invalid(
            "plan_sha256",
            format!(
                "'{}' is not a plan's sha256 (64 lowercase hex digits); pass the plan_sha256 tf_plan answered",
                cut(sha, 80)
            ),
        ));
    }
    let file = plan_file(sha);
    let bytes = match read_plan(ws, &file) {
        Ok(b) => b,
        Err(e) if e.kind == ErrorKind::NotFound => {
            return Err(ToolError::invalid(
                "plan_sha256",
                format!(
                    "no plan {sha} in {}: it was never made here, or was applied already; run tf_plan (or tf_destroy without apply) on this root and path and pass the plan_sha256 it answers",
                    ws.target()
                ),
            ));
        }
        Err(e) => return Err(e),
    };
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != sha {
        return Err(ToolError::denied(format!(
            "plan_sha256: the plan file {} was changed after tf_plan made it (its sha256 is now {actual}); it is not the plan that was reviewed, so nothing was applied. Run tf_plan again and review the new plan",
            ws.file(&file)
        )));
    }
    // The checked bytes, in a file of this call: what terraform applies cannot be swapped
    // between the check and the run through the plan's well-known name.
    let copy = format!("{PLAN_DIR}/apply-{sha}-{}.tfplan", plan::unique());
    let _ = fs::remove(&ws.root, &ws.file(&copy), false);
    fs::write(
        &ws.root,
        &ws.file(&copy),
        &ByteSource::Bytes(bytes),
        WriteOptions {
            mode: Some(0o600),
            mkdirs: false,
            overwrite: false,
        },
    )?;
    let result = checked(ws, sha, &copy, apply, destroy);
    let _ = fs::remove(&ws.root, &ws.file(&copy), false);
    if result.as_ref().is_ok_and(|a| a.result.is_some()) {
        // Applied: the plan is spent (terraform would call it stale from now on).
        let _ = fs::remove(&ws.root, &ws.file(&file), false);
    }
    result
}

/// Sums up the checked copy and, with `apply`, asks the guard and applies it.
fn checked(
    ws: &Workspace,
    sha: &str,
    copy: &str,
    apply: bool,
    destroy: bool,
) -> Result<Applied, ToolError> {
    let (_, secrets, summary) = plan::show(ws, copy)?;
    if destroy && !summary.only_destroys() {
        return Err(ToolError::invalid(
            "plan_sha256",
            format!(
                "plan {sha} does not only destroy ({} to add, {} to change); apply it with tf_apply, or make a destroy plan with tf_destroy without apply",
                summary.counts.add, summary.counts.change
            ),
        ));
    }
    let mut out = Applied {
        workspace: ws.target(),
        plan_sha256: sha.to_string(),
        summary,
        approval: None,
        result: None,
    };
    if !apply {
        return Ok(out);
    }
    let approval = approve(
        "terraform",
        &ws.target(),
        Vec::new(),
        &out.summary.text(sha),
    )?;
    let mut args = strings(&["apply", "-input=false", "-no-color"]);
    args.push(lock_timeout());
    args.push(copy.to_string());
    let r = ws.terraform(&args, Vec::new(), 256 * 1024)?;
    if r.exit_code != Some(0) {
        let stderr = String::from_utf8_lossy(&r.stderr);
        if stderr.contains("Saved plan is stale") {
            return Err(ToolError::denied(format!(
                "plan_sha256: plan {sha} is stale — the state of {} changed after it was made (another apply ran), so Terraform refused it and nothing was applied. Run tf_plan again and review the new plan",
                ws.target()
            )));
        }
        return Err(ws.failure(&args, &r, &secrets));
    }
    let stdout = secrets.scrub(&String::from_utf8_lossy(&r.stdout));
    out.result = stdout
        .lines()
        .rev()
        .find(|l| l.contains(" complete! Resources:"))
        .map(|l| l.trim().to_string())
        .or_else(|| Some("applied".into()));
    out.approval = Some(approval);
    Ok(out)
}
