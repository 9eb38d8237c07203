//! What the `repo` tool returns: one record whose fields each action fills.

use crate::caps::types::ExecResult;
use infra_sdk::git::parse::{Commit, DiffStat, Status};
use infra_sdk::prelude::*;

/// The result of a `repo` call.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct RepoOutput {
    /// The root the repository is under.
    pub root: String,
    /// The repository's directory under the root.
    pub path: String,
    /// `snapshot`, `status`, `assert_clean`, a planned `commit`: branch facts and paths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// `snapshot` (work tree against HEAD), `diff`, `show`: per-file counts and totals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diffstat: Option<DiffStat>,
    /// `diff`/`show` with `format: "patch"`: the unified diff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<Text>,
    /// `snapshot`, `log`: commits, newest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commits: Option<Vec<Commit>>,
    /// `show`, `commit`, `revert`: the commit shown or made (or to be reverted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<Commit>,
    /// `assert_clean`: the repository has no change that counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clean: Option<bool>,
    /// Writes: whether it was carried out (`apply: true`) or only planned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<bool>,
    /// Writes: what the call did or, without `apply: true`, would do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// `apply_patch`: the check (and application) per file and hunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_check: Option<infra_sdk::git::patch::PatchCheck>,
    /// `branch`: the branch HEAD is on after the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// `push`: the URL the host checked and what git said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<PushOutput>,
    /// `render`: the manifests and a summary of each object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub render: Option<infra_sdk::git::render::Rendered>,
}

/// Text that may be long: inline up to `max_output`, the whole in an artifact when cut.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Text {
    /// The text (UTF-8, invalid bytes replaced), at most `max_output` bytes.
    pub text: String,
    /// The text was longer than `max_output`.
    pub truncated: bool,
    /// The whole text, when truncated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
}

impl Text {
    /// Stdout of a run as text.
    pub fn stdout(r: &ExecResult) -> Self {
        Self {
            text: String::from_utf8_lossy(&r.stdout).into_owned(),
            truncated: r.stdout_truncated,
            artifact: r.stdout_artifact.clone().map(Into::into),
        }
    }
}

/// How a push went.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PushOutput {
    /// The remote name.
    pub remote: String,
    /// The URL pushed (or to be pushed) to, as the host checks it against the grant.
    pub url: String,
    /// The refspecs given (none: the current branch to its upstream).
    pub refspecs: Vec<String>,
    /// Force with lease.
    pub force: bool,
    /// git's exit code, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// What git printed (its progress and the ref updates), when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}
