//! `apply_patch`: the SDK's check (and, with `apply: true`, application) of a unified diff,
//! reported per file and hunk.

use crate::git::Repo;
use crate::out::RepoOutput;
use infra_sdk::git::patch::{PatchArgs, check_and_apply};
use infra_sdk::prelude::*;

/// `apply_patch`: checks always; applies with `apply` when the check passes.
pub fn apply_patch(
    repo: &Repo,
    p: &PatchArgs,
    apply: bool,
    o: &mut RepoOutput,
) -> Result<(), ToolError> {
    let (check, applied) = check_and_apply(repo, p, apply)?;
    let files = check.files.len();
    o.plan = Some(match (applied, check.ok) {
        (true, _) => format!("applied the patch to {files} file(s)"),
        (false, true) if apply => "the patch was not applied: see `patch_check`".into(),
        (false, true) => format!(
            "the patch applies cleanly to {files} file(s); call again with `apply: true` to apply it"
        ),
        (false, false) => {
            "the patch does not apply: see `patch_check` for the files and hunks".into()
        }
    });
    o.applied = Some(applied);
    o.patch_check = Some(check);
    Ok(())
}
