//! Reads every git action builds on: status, a diffstat, commits — each one git run in its
//! machine format, parsed by [`super::parse`].

use super::check::{args, pathspecs};
use super::parse::{self, Commit, DiffStat, LOG_FORMAT, Status};
use super::runner::Runner;
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
    let r = repo.git(&a)?;
    let (out, partial) = repo.full_stdout(&r)?;
    let mut s = parse::status(&out, max).map_err(ToolError::failed)?;
    if partial {
        // Only the first PARSE_MAX bytes were read: the counts cover those.
        s.entries_omitted += 1;
    }
    Ok(s)
}

/// `git diff --numstat -z` with `extra` (revisions, `--cached`), parsed.
pub fn numstat(repo: &impl Runner, extra: &[String], max: usize) -> Result<DiffStat, ToolError> {
    let mut a = args(&["diff", "--numstat", "-z"]);
    a.extend(args(DIFF_FLAGS));
    a.extend(extra.iter().cloned());
    let r = repo.git(&a)?;
    let (out, _) = repo.full_stdout(&r)?;
    parse::numstat(&out, max).map_err(ToolError::failed)
}

/// `git log -z` with `extra` (count, revisions, paths), parsed.
pub fn log(repo: &impl Runner, extra: &[String]) -> Result<Vec<Commit>, ToolError> {
    let mut a = args(&["log", "-z", LOG_FORMAT, "--no-color", "--no-show-signature"]);
    a.extend(extra.iter().cloned());
    let r = repo.git(&a)?;
    let (out, _) = repo.full_stdout(&r)?;
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
