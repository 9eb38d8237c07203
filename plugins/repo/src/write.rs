//! The writing actions: `commit`, `revert`, `branch`, `push`. Each answers what it would do
//! unless the call says `apply: true`.

use crate::caps::git::{self, PushRequest};
use crate::git::Repo;
use crate::out::{PushOutput, RepoOutput};
use infra_sdk::git::{
    Opts, Person, Runner, args, commit as commit_of, cut, identity, mask_url, pathspecs, refspecs,
    remote, rev, status,
};
use infra_sdk::prelude::*;

/// What `commit` takes besides the repository.
pub struct CommitArgs<'a> {
    /// The message.
    pub message: &'a str,
    /// Paths to stage and commit.
    pub paths: &'a [String],
    /// Stage everything.
    pub all: bool,
    /// The author.
    pub author: Option<&'a Person>,
    /// The committer.
    pub committer: Option<&'a Person>,
    /// Allow an empty commit.
    pub allow_empty: bool,
}

/// `commit`: stages `paths` (or everything with `all`) and commits.
pub fn commit(
    repo: &Repo,
    max: usize,
    c: &CommitArgs,
    apply: bool,
    o: &mut RepoOutput,
) -> Result<(), ToolError> {
    if c.message.trim().is_empty() {
        return Err(ToolError::invalid(
            "message",
            "empty: say what the commit does",
        ));
    }
    if c.all && !c.paths.is_empty() {
        return Err(ToolError::invalid("all", "give `all` or `paths`, not both"));
    }
    let env = identity(c.author, c.committer)?;
    let specs = if c.paths.is_empty() {
        vec![]
    } else {
        pathspecs("paths", c.paths)?
    };
    let what = if c.all {
        "every change".to_string()
    } else if !c.paths.is_empty() {
        format!("the changes to {}", c.paths.join(", "))
    } else {
        "the staged changes".to_string()
    };
    if !apply {
        let s = status(repo, max, c.paths)?;
        o.applied = Some(false);
        o.plan = Some(format!(
            "would commit {what} ({} staged, {} unstaged, {} untracked path(s) now) with message {:?}; \
             call again with `apply: true`",
            s.counts.staged, s.counts.unstaged, s.counts.untracked, c.message
        ));
        o.status = Some(s);
        return Ok(());
    }
    if c.all || !c.paths.is_empty() {
        let mut add = args(&["add", "--all"]);
        add.extend(specs.iter().cloned());
        repo.git(&add)?;
    }
    // Hooks and signing are switched off by the host too; asking git directly costs nothing.
    let mut a = args(&[
        "commit",
        "--no-verify",
        "--no-gpg-sign",
        "--quiet",
        "-m",
        c.message,
    ]);
    if c.allow_empty {
        a.push("--allow-empty".into());
    }
    a.extend(specs);
    repo.git_with(
        &a,
        Opts {
            env,
            ..Opts::default()
        },
    )?;
    o.applied = Some(true);
    o.plan = Some(format!("committed {what}"));
    o.commit = Some(commit_of(repo, "HEAD")?);
    Ok(())
}

/// `revert`: a commit undoing `rev`; on a conflict the revert is aborted and the conflicted
/// paths are reported.
pub fn revert(
    repo: &Repo,
    max: usize,
    target: &str,
    mainline: Option<u32>,
    author: Option<&Person>,
    apply: bool,
    o: &mut RepoOutput,
) -> Result<(), ToolError> {
    let target = rev("rev", target)?;
    let c = commit_of(repo, &target)?;
    if c.parents.len() > 1 && mainline.is_none() {
        return Err(ToolError::invalid(
            "mainline",
            format!(
                "{} is a merge of {} parents: say which parent's side to keep (`mainline: 1` for the first)",
                c.sha,
                c.parents.len()
            ),
        ));
    }
    if !apply {
        o.applied = Some(false);
        o.plan = Some(format!(
            "would commit a revert of {} ({:?}); call again with `apply: true`",
            c.sha, c.subject
        ));
        o.commit = Some(c);
        return Ok(());
    }
    let mut a = args(&["revert", "--no-edit", "--no-gpg-sign"]);
    if let Some(m) = mainline {
        a.push(format!("--mainline={m}"));
    }
    a.push(c.sha.clone());
    let env = identity(author, None)?;
    if let Err(e) = repo.git_with(
        &a,
        Opts {
            env,
            ..Opts::default()
        },
    ) {
        let s = status(repo, max, &[])?;
        if s.counts.conflicted > 0 {
            // Leave the repository as it was rather than half-reverted.
            repo.git(&args(&["revert", "--abort"]))?;
            let paths: Vec<&str> = s
                .entries
                .iter()
                .filter(|e| e.kind == "conflicted")
                .map(|e| e.path.as_str())
                .collect();
            return Err(ToolError::failed(format!(
                "reverting {} conflicts in {}; the revert was aborted and the work tree left as \
                 it was: revert by hand or with a patch (`apply_patch`)",
                c.sha,
                paths.join(", ")
            ))
            .with_detail(json!({"conflicted": paths})));
        }
        return Err(e);
    }
    o.applied = Some(true);
    o.plan = Some(format!("reverted {}", c.sha));
    o.commit = Some(commit_of(repo, "HEAD")?);
    Ok(())
}

/// `branch`: creates and/or switches.
pub fn branch(
    repo: &Repo,
    name: &str,
    create: bool,
    start: Option<&str>,
    switch: bool,
    apply: bool,
    o: &mut RepoOutput,
) -> Result<(), ToolError> {
    let check = repo.exec(
        "git",
        &args(&["check-ref-format", "--branch", name]),
        Opts::default(),
    )?;
    if name.starts_with('-') || check.exit_code != Some(0) {
        return Err(ToolError::invalid(
            "name",
            format!("'{name}' is not a valid branch name (see `git check-ref-format`)"),
        ));
    }
    let start = start.map(|s| rev("start", s)).transpose()?;
    if !create && !switch {
        return Err(ToolError::invalid(
            "switch",
            "nothing to do: set `create: true`, or leave `switch` true",
        ));
    }
    let mut a = match (create, switch) {
        (true, true) => args(&["switch", "--no-guess", "-c", name]),
        (true, false) => args(&["branch", "--no-track", name]),
        _ => args(&["switch", "--no-guess", name]),
    };
    if create {
        a.extend(start.clone());
    } else if start.is_some() {
        return Err(ToolError::invalid(
            "start",
            "only a new branch (`create: true`) takes a start",
        ));
    }
    let plan = format!(
        "{}{}{}",
        if create {
            format!("create branch '{name}'")
        } else {
            String::new()
        },
        start.map(|s| format!(" at {s}")).unwrap_or_default(),
        if switch {
            format!("{}switch to '{name}'", if create { " and " } else { "" })
        } else {
            String::new()
        }
    );
    if !apply {
        o.applied = Some(false);
        o.plan = Some(format!("would {plan}; call again with `apply: true`"));
        return Ok(());
    }
    repo.git(&a)?;
    let head = repo.git(&args(&["branch", "--show-current"]))?;
    o.applied = Some(true);
    o.plan = Some(format!("did {plan}"));
    o.branch = Some(String::from_utf8_lossy(&head.stdout).trim().to_string());
    Ok(())
}

/// What `push` takes besides the repository.
pub struct PushArgs<'a> {
    /// The remote name.
    pub remote: &'a str,
    /// Refspecs.
    pub refspecs: &'a [String],
    /// Force with lease.
    pub force: bool,
    /// Credentials profile.
    pub profile: Option<&'a str>,
}

/// `push`: through the host's git capability, which checks the URL, force and credentials.
pub fn push(repo: &Repo, p: &PushArgs, apply: bool, o: &mut RepoOutput) -> Result<(), ToolError> {
    remote("remote", p.remote)?;
    refspecs("refspecs", p.refspecs)?;
    let mut out = PushOutput {
        remote: p.remote.to_string(),
        url: String::new(),
        refspecs: p.refspecs.to_vec(),
        force: p.force,
        exit_code: None,
        output: None,
    };
    if !apply {
        let url = repo.git(&args(&[
            "remote",
            "get-url",
            "--push",
            "--end-of-options",
            p.remote,
        ]));
        let url = url.map_err(|e| ToolError {
            field: Some("remote".into()),
            ..e
        })?;
        out.url = mask_url(String::from_utf8_lossy(&url.stdout).trim());
        o.applied = Some(false);
        o.plan = Some(format!(
            "would push {} to {} ({}){}; the host checks the URL against the policy's \
             [plugin.repo.git] remotes; call again with `apply: true`",
            if p.refspecs.is_empty() {
                "the current branch".to_string()
            } else {
                p.refspecs.join(" ")
            },
            p.remote,
            out.url,
            if p.force {
                " with force-with-lease"
            } else {
                ""
            }
        ));
        o.push = Some(out);
        return Ok(());
    }
    let r = git::push(&PushRequest {
        root: repo.root.clone(),
        path: repo.path.clone(),
        remote: p.remote.to_string(),
        refspecs: p.refspecs.to_vec(),
        force: p.force,
        profile: p.profile.map(String::from),
        timeout_ms: repo.timeout_ms(),
    })?;
    out.url = mask_url(&r.url);
    out.exit_code = r.output.exit_code;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&r.output.stdout),
        String::from_utf8_lossy(&r.output.stderr)
    );
    if r.output.exit_code != Some(0) {
        return Err(ToolError::failed(format!(
            "git push to {} ({}) failed: {}; fetch and rebase or merge first if the remote moved on",
            p.remote,
            out.url,
            cut(text.trim(), 2000)
        )));
    }
    out.output = Some(cut(text.trim(), 8000));
    o.applied = Some(true);
    o.plan = Some(format!("pushed to {}", p.remote));
    o.push = Some(out);
    Ok(())
}
