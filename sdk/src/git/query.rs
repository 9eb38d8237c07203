//! Reads every git action builds on: status, a diffstat, commits — each one git run in its
//! machine format, parsed by [`super::parse`]; each also as its arguments and its parse apart,
//! for runs batched with [`Runner::git_all`].

use super::check::{args, pathspecs};
use super::parse::{self, Commit, DiffStat, LOG_FORMAT, Status};
use super::runner::Runner;
use crate::caps::types::ExecResult;
use crate::prelude::*;

/// Bytes of a commit body kept in lists.
pub const BODY_MAX: usize = 4096;

/// Options that keep what git runs and prints independent of the repository's config: no
/// external diff, no textconv, no colour, paths from the top, renames found.
pub const DIFF_FLAGS: &[&str] = &[
    "--no-ext-diff",
    "--no-textconv",
    "--no-color",
    "--no-relative",
    "--find-renames",
];

/// `git status --porcelain=v2 -z --branch`, parsed; `paths` limits it.
pub fn status(repo: &impl Runner, max: usize, paths: &[String]) -> Result<Status, ToolError> {
    status_of(repo, &repo.git(&status_args(paths)?)?, max)
}

/// The arguments of [`status`].
pub fn status_args(paths: &[String]) -> Result<Vec<String>, ToolError> {
    let mut a = args(&[
        "status",
        "--porcelain=v2",
        "-z",
        "--branch",
        "--untracked-files=normal",
        "--renames",
        "--ignore-submodules=none",
    ]);
    if !paths.is_empty() {
        a.extend(pathspecs("paths", paths)?);
    }
    Ok(a)
}

/// [`status`] of a finished run of [`status_args`].
pub fn status_of(repo: &impl Runner, r: &ExecResult, max: usize) -> Result<Status, ToolError> {
    let (out, partial) = repo.full_stdout(r)?;
    let mut s = parse::status(&out, max).map_err(ToolError::failed)?;
    if partial {
        // Only the first PARSE_MAX bytes were read: the counts cover those.
        s.entries_omitted += 1;
    }
    Ok(s)
}

/// `git diff --numstat -z` with `extra` (revisions, `--cached`), parsed.
pub fn numstat(repo: &impl Runner, extra: &[String], max: usize) -> Result<DiffStat, ToolError> {
    numstat_of(repo, &repo.git(&numstat_args(extra))?, max)
}

/// The arguments of [`numstat`].
pub fn numstat_args(extra: &[String]) -> Vec<String> {
    let mut a = args(&["diff", "--numstat", "-z"]);
    a.extend(args(DIFF_FLAGS));
    a.extend(extra.iter().cloned());
    a
}

/// [`numstat`] of a finished run of [`numstat_args`].
pub fn numstat_of(repo: &impl Runner, r: &ExecResult, max: usize) -> Result<DiffStat, ToolError> {
    let (out, _) = repo.full_stdout(r)?;
    parse::numstat(&out, max).map_err(ToolError::failed)
}

/// `git log -z` with `extra` (count, revisions, paths), parsed.
pub fn log(repo: &impl Runner, extra: &[String]) -> Result<Vec<Commit>, ToolError> {
    log_of(repo, &repo.git(&log_args(extra))?)
}

/// The arguments of [`log`].
pub fn log_args(extra: &[String]) -> Vec<String> {
    let mut a = args(&["log", "-z", LOG_FORMAT, "--no-color", "--no-show-signature"]);
    a.extend(extra.iter().cloned());
    a
}

/// [`log`] of a finished run of [`log_args`].
pub fn log_of(repo: &impl Runner, r: &ExecResult) -> Result<Vec<Commit>, ToolError> {
    let (out, _) = repo.full_stdout(r)?;
    parse::log(&out, BODY_MAX).map_err(ToolError::failed)
}

/// One commit by revision.
pub fn commit(repo: &impl Runner, revision: &str) -> Result<Commit, ToolError> {
    let mut commits = log(
        repo,
        &args(&["-1", "--no-walk", "--end-of-options", revision, "--"]),
    )?;
    commits
        .pop()
        .ok_or_else(|| ToolError::not_found(format!("no commit '{revision}' in {}", repo.name())))
}
