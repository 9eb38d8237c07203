//! The read-only actions: `snapshot`, `status`, `diff`, `log`, `show`, `assert_clean`.

use crate::args::{At, DiffArgs, Format};
use crate::git::Repo;
use crate::out::{RepoOutput, Text};
use infra_sdk::git::parse;
use infra_sdk::git::{
    DIFF_FLAGS, INLINE_MAX, Opts, Runner, args, commit, log as git_log, log_args, log_of, numstat,
    numstat_args, numstat_of, pathspecs, rev, status, status_args, status_of,
};
use infra_sdk::prelude::*;

/// `snapshot`: the seed's `repo.snapshot` facts in one answer, from three git runs (as many as
/// `git status && git diff --stat && git log` takes) made at once: status, the numstat against
/// HEAD and the log are independent reads. The top-level directory is not asked for: it would
/// cost a run, and it is a host path; `root` and `path` name the repository.
pub fn snapshot(
    repo: &Repo,
    at: &At,
    commits: Option<u32>,
    o: &mut RepoOutput,
) -> Result<(), ToolError> {
    let n = commits.unwrap_or(5).clamp(1, 100).to_string();
    let max = at.max_entries();
    // HEAD is assumed born; the status says whether it is, and only then do the other two count.
    let [s, diff, log] = repo
        .git_all(&[
            status_args(&[])?,
            numstat_args(&args(&["HEAD", "--"])),
            log_args(&args(&["-n", &n, "HEAD", "--"])),
        ])
        .try_into()
        .map_err(|_| {
            ToolError::failed(
                "the host answered three git runs with another number of results; retry the call",
            )
        })?;
    let s = status_of(repo, &s?, max)?;
    if s.branch.head.is_some() {
        o.diffstat = Some(numstat_of(repo, &diff?, max)?);
        o.commits = Some(log_of(repo, &log?)?);
    } else {
        // No commits, no HEAD to compare with: what is staged is all there is.
        o.diffstat = Some(numstat(repo, &args(&["--cached", "--"]), max)?);
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
    o.commits = Some(git_log(repo, &a)?);
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
        let (bytes, _) = repo.full_stdout(&out)?;
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
