//! The read-only actions: `snapshot`, `status`, `diff`, `log`, `show`, `assert_clean`.

use crate::args::{At, DiffArgs, Format};
use crate::git::{INLINE_MAX, Opts, Repo, args, full_stdout, pathspecs, rev};
use crate::out::{RepoOutput, Text};
use crate::parse::{self, Commit, DiffStat, LOG_FORMAT, Status};
use infra_sdk::prelude::*;

/// Bytes of a commit body kept in lists.
const BODY_MAX: usize = 4096;

/// Options that keep what git runs and prints independent of the repository's config: no
/// external diff, no textconv, no colour, paths from the top, renames found.
const DIFF_FLAGS: &[&str] = &[
    "--no-ext-diff",
    "--no-textconv",
    "--no-color",
    "--no-relative",
    "--find-renames",
];

/// `git status --porcelain=v2 -z --branch`, parsed; `paths` limits it.
pub fn status(repo: &Repo, max: usize, paths: &[String]) -> Result<Status, ToolError> {
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
    let (out, partial) = full_stdout(&r)?;
    let mut s = parse::status(&out, max).map_err(ToolError::failed)?;
    if partial {
        // Only the first PARSE_MAX bytes were read: the counts cover those.
        s.entries_omitted += 1;
    }
    Ok(s)
}

/// `git diff --numstat -z` with `extra` (revisions, `--cached`), parsed.
fn numstat(repo: &Repo, extra: &[String], max: usize) -> Result<DiffStat, ToolError> {
    let mut a = args(&["diff", "--numstat", "-z"]);
    a.extend(args(DIFF_FLAGS));
    a.extend(extra.iter().cloned());
    let r = repo.git(&a)?;
    let (out, _) = full_stdout(&r)?;
    parse::numstat(&out, max).map_err(ToolError::failed)
}

/// `git log -z` with `extra` (count, revisions, paths), parsed.
fn log_of(repo: &Repo, extra: &[String]) -> Result<Vec<Commit>, ToolError> {
    let mut a = args(&["log", "-z", LOG_FORMAT, "--no-color", "--no-show-signature"]);
    a.extend(extra.iter().cloned());
    let r = repo.git(&a)?;
    let (out, _) = full_stdout(&r)?;
    parse::log(&out, BODY_MAX).map_err(ToolError::failed)
}

/// One commit by revision.
pub fn commit(repo: &Repo, revision: &str) -> Result<Commit, ToolError> {
    let mut commits = log_of(
        repo,
        &args(&["-1", "--no-walk", "--end-of-options", revision, "--"]),
    )?;
    commits
        .pop()
        .ok_or_else(|| ToolError::not_found(format!("no commit '{revision}' in {}", repo.name())))
}

/// `snapshot`: the seed's `repo.snapshot` facts in one answer, in three git runs (as many as
/// `git status && git diff --stat && git log` takes). The top-level directory is not asked
/// for: it would cost a run, and it is a host path; `root` and `path` name the repository.
pub fn snapshot(
    repo: &Repo,
    at: &At,
    commits: Option<u32>,
    o: &mut RepoOutput,
) -> Result<(), ToolError> {
    let s = status(repo, at.max_entries(), &[])?;
    let born = s.branch.head.is_some();
    // A repository without commits has no HEAD to compare with: what is staged is all there is.
    let against = if born { "HEAD" } else { "--cached" };
    o.diffstat = Some(numstat(repo, &args(&[against, "--"]), at.max_entries())?);
    if born {
        let n = commits.unwrap_or(5).clamp(1, 100).to_string();
        o.commits = Some(log_of(repo, &args(&["-n", &n, "HEAD", "--"]))?);
    } else {
        o.commits = Some(vec![]);
    }
    o.status = Some(s);
    Ok(())
}

/// The revisions and flags of a `diff` call, checked.
fn diff_args(d: &DiffArgs) -> Result<Vec<String>, ToolError> {
    let mut a = Vec::new();
    if d.staged.unwrap_or(false) {
        if d.to.is_some() {
            return Err(ToolError::invalid(
                "to",
                "`staged` compares the index with one revision (`from`, default HEAD): drop `to` or `staged`",
            ));
        }
        a.push("--cached".to_string());
    }
    match (&d.from, &d.to) {
        (None, Some(_)) => {
            return Err(ToolError::invalid(
                "from",
                "missing: `to` needs `from` (the older revision)",
            ));
        }
        (from, to) => {
            for (field, v) in [("from", from), ("to", to)] {
                if let Some(v) = v {
                    a.push(rev(field, v)?);
                }
            }
        }
    }
    a.extend(pathspecs("paths", d.paths.as_deref().unwrap_or_default())?);
    Ok(a)
}

/// `diff`: a diffstat, or the patch (inline up to `max_output`, the whole in an artifact).
pub fn diff(repo: &Repo, at: &At, d: &DiffArgs, o: &mut RepoOutput) -> Result<(), ToolError> {
    let revs = diff_args(d)?;
    if d.format.unwrap_or_default() == Format::Stat {
        o.diffstat = Some(numstat(repo, &revs, at.max_entries())?);
        return Ok(());
    }
    let context = d.context.unwrap_or(3).min(1000);
    let mut a = args(&["diff", "--patch", "--src-prefix=a/", "--dst-prefix=b/"]);
    a.push(format!("-U{context}"));
    a.extend(args(DIFF_FLAGS));
    a.extend(revs);
    o.patch = Some(patch(repo, at, &a)?);
    Ok(())
}

/// Runs a command printing a patch, with the call's inline cap.
fn patch(repo: &Repo, at: &At, a: &[String]) -> Result<Text, ToolError> {
    let opts = Opts {
        max_output: Some(at.max_output.unwrap_or(INLINE_MAX)),
        ..Opts::default()
    };
    Ok(Text::stdout(&repo.git_with(a, opts)?))
}

/// `log`: commits of `rev`, optionally touching `paths`.
pub fn log(
    repo: &Repo,
    revision: Option<&str>,
    paths: &[String],
    max_count: Option<u32>,
    skip: Option<u32>,
    o: &mut RepoOutput,
) -> Result<(), ToolError> {
    let n = max_count.unwrap_or(20).clamp(1, 1000).to_string();
    let mut a = args(&["-n", &n]);
    if let Some(s) = skip {
        a.push(format!("--skip={s}"));
    }
    a.push("--end-of-options".into());
    a.push(rev("rev", revision.unwrap_or("HEAD"))?);
    a.extend(pathspecs("paths", paths)?);
    o.commits = Some(log_of(repo, &a)?);
    Ok(())
}

/// `show`: one commit and its changes against its first parent.
pub fn show(
    repo: &Repo,
    at: &At,
    revision: Option<&str>,
    format: Option<Format>,
    o: &mut RepoOutput,
) -> Result<(), ToolError> {
    let r = rev("rev", revision.unwrap_or("HEAD"))?;
    let c = commit(repo, &r)?;
    // The commit by hash from here on: `r` could name a range.
    let mut a = args(&["show", "--format=", "--diff-merges=first-parent"]);
    a.extend(args(DIFF_FLAGS));
    if format.unwrap_or_default() == Format::Stat {
        a.extend(args(&["--numstat", "-z", &c.sha, "--"]));
        let out = repo.git(&a)?;
        let (bytes, _) = full_stdout(&out)?;
        // `--format=` leaves a blank line before the stats.
        let bytes = bytes.strip_prefix(b"\n").unwrap_or(&bytes);
        o.diffstat = Some(parse::numstat(bytes, at.max_entries()).map_err(ToolError::failed)?);
    } else {
        a.extend(args(&[
            "--patch",
            "--src-prefix=a/",
            "--dst-prefix=b/",
            &c.sha,
            "--",
        ]));
        o.patch = Some(patch(repo, at, &a)?);
    }
    o.commit = Some(c);
    Ok(())
}

/// `assert_clean`: an error listing what is not clean, else `clean: true`.
pub fn assert_clean(
    repo: &Repo,
    at: &At,
    allow_untracked: bool,
    o: &mut RepoOutput,
) -> Result<(), ToolError> {
    let s = status(repo, at.max_entries(), &[])?;
    let c = &s.counts;
    if s.tracked_clean() && (allow_untracked || c.untracked == 0) {
        o.clean = Some(true);
        o.status = Some(s);
        return Ok(());
    }
    let listed: Vec<&str> = s.entries.iter().take(20).map(|e| e.path.as_str()).collect();
    Err(ToolError::failed(format!(
        "{} is not clean: {} staged, {} unstaged, {} conflicted, {} untracked ({}); commit, \
         stash or revert them, or pass `allow_untracked: true` when only untracked files may stay",
        repo.name(),
        c.staged,
        c.unstaged,
        c.conflicted,
        c.untracked,
        listed.join(", ")
    ))
    .with_detail(serde_json::to_value(&s).unwrap_or_default()))
}
