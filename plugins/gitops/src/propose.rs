//! `propose`: a change as a pull request. In a repository under a granted root: a branch from
//! `base`, a patch applied or files written, one commit, a push to a remote the policy grants
//! (through the host's `git` capability, credentials from a profile the host holds), and a pull
//! request opened through the forge's API (an `http` profile; the host injects the token).
//!
//! The user's checkout is left as it was found: the work must start clean, and the call returns
//! to the branch it was on, also after a failure. The same branch again is idempotent: the
//! change already committed is not committed twice, a head the forge already has is not pushed
//! again, and the open pull request is returned instead of a second one.

use infra_sdk::git::parse::{Commit, DiffStat};
use infra_sdk::git::patch::{self, PatchArgs};
use infra_sdk::git::{
    Opts, Person, Runner, args, branch_name, commit, identity, mask_url, numstat, relative, remote,
    rev, status,
};
use infra_sdk::prelude::*;

use crate::apply::{ApprovalInfo, approve};
use crate::caps::git::{self, PushRequest};
use crate::caps::types::ByteSource;
use crate::checkout::Checkout;
use crate::forge::{Forge, Kind, PullRequest, check_repository_of};

/// Most files one call writes.
const MAX_FILES: usize = 200;

/// Arguments of `propose`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ProposeArgs {
    /// A root the policy grants (`[plugin.gitops.exec] roots`, writable; default `workspace`).
    pub root: Option<String>,
    /// The repository's directory relative to the root (default `.`).
    pub path: Option<String>,
    /// The branch to create (or reuse) and push, e.g. `infra/bump-web`.
    pub branch: String,
    /// The branch the pull request goes into and the new branch starts from (default: the
    /// branch the repository is on).
    pub base: Option<String>,
    /// The change as a unified diff (as `git diff` prints it); or give `files`.
    pub patch: Option<String>,
    /// The change as whole files: each `path` (relative to the repository) with its new
    /// `content`.
    pub files: Option<Vec<EditedFile>>,
    /// The commit message; its first line is the default pull request title.
    pub message: String,
    /// The commit's author (and committer).
    pub author: Option<Person>,
    /// The remote to push to (default `origin`); the host checks its URL against
    /// `[plugin.gitops.git] remotes`.
    pub remote: Option<String>,
    /// A profile whose credentials the host injects for the push (granted under
    /// `[plugin.gitops.git] profiles`).
    pub git_profile: Option<String>,
    /// The `http` profile of the forge's API (base_url + token).
    pub forge_profile: Option<String>,
    /// The forge's API: `github` (default), `gitlab` (merge requests; `repository` may name
    /// subgroups) or `gitea` (also Forgejo).
    pub forge: Option<Kind>,
    /// The repository on the forge, `owner/name`.
    pub repository: String,
    /// The pull request's title (default: the message's first line).
    pub title: Option<String>,
    /// The pull request's description (default: the rest of the message).
    pub body: Option<String>,
    /// Where a new branch starts (default: `base`); only `release` sets it, for a revert.
    #[serde(skip)]
    #[schemars(skip)]
    pub start: Option<String>,
}

/// A file with its whole new content.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EditedFile {
    /// Relative to the repository; never inside `.git`.
    pub path: String,
    /// The whole new content (UTF-8).
    pub content: String,
}

/// What `propose` did, or would do.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct Proposal {
    /// Whether it was carried out (`apply: true`) or only planned.
    pub applied: bool,
    /// What it did, or would do.
    pub plan: String,
    /// The branch pushed.
    pub branch: String,
    /// The branch the pull request goes into.
    pub base: String,
    /// The remote pushed to.
    pub remote: String,
    /// Its URL (a password in it masked), as the host checks it.
    pub url: String,
    /// The pull request's title.
    pub title: String,
    /// The change: per-file counts and totals (of the patch, or of the branch against base).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diffstat: Option<DiffStat>,
    /// The commit at the branch's head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<Commit>,
    /// The branch was pushed by this call (false: the forge already had this commit).
    pub pushed: bool,
    /// The pull request (opened by this call, or the open one already there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequest>,
    /// The host guard's approval of the push.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalInfo>,
}

/// The change, checked.
#[derive(Clone, Copy)]
enum Change<'a> {
    Patch(&'a str),
    Files(&'a [EditedFile]),
}

fn change(a: &ProposeArgs) -> Result<Change<'_>, ToolError> {
    match (&a.patch, &a.files) {
        (Some(_), Some(_)) => Err(ToolError::invalid(
            "files",
            "give the change as `patch` or as `files`, not both",
        )),
        (Some(p), None) if !p.trim().is_empty() => {
            patch::check_paths("patch", p)?;
            Ok(Change::Patch(p))
        }
        (None, Some(f)) if !f.is_empty() && f.len() <= MAX_FILES => {
            for e in f {
                relative("files.path", &e.path)?;
                let bad = e.path.is_empty()
                    || e.path.ends_with('/')
                    || e.path.starts_with('-')
                    || e.path.contains(['\0', '\n'])
                    || e.path
                        .split('/')
                        .any(|c| c.eq_ignore_ascii_case(".git") || c == "..");
                if bad {
                    return Err(ToolError::invalid(
                        "files.path",
                        format!(
                            "'{}' is not a file of the work tree: give a path relative to the \
                             repository, without '..' and outside .git",
                            e.path
                        ),
                    ));
                }
            }
            Ok(Change::Files(f))
        }
        (None, Some(f)) if f.len() > MAX_FILES => Err(ToolError::invalid(
            "files",
            format!(
                "{} files: at most {MAX_FILES} per call; send a `patch`",
                f.len()
            ),
        )),
        _ => Err(ToolError::invalid(
            "patch",
            "missing: give the change as `patch` (a unified diff) or `files` ([{path, content}])",
        )),
    }
}

/// The one line of `s` (title) and the rest (body) of a commit message.
fn split_message(m: &str) -> (&str, &str) {
    let m = m.trim();
    let (t, b) = m.split_once('\n').unwrap_or((m, ""));
    (t.trim(), b.trim())
}

fn out_str(r: &crate::caps::types::ExecResult) -> String {
    String::from_utf8_lossy(&r.stdout).trim().to_string()
}

/// The commit `name` resolves to, if it does.
fn resolve(repo: &Checkout, name: &str) -> Result<Option<String>, ToolError> {
    let r = repo.exec(
        "git",
        &args(&["rev-parse", "--verify", "--quiet", "--end-of-options", name]),
        Opts::default(),
    )?;
    Ok((r.exit_code == Some(0)).then(|| out_str(&r)))
}

/// Runs `propose`.
pub fn propose(a: &ProposeArgs, apply: bool, ctx: &Ctx) -> Result<Proposal, ToolError> {
    branch_name("branch", &a.branch)?;
    let remote_name = a.remote.as_deref().unwrap_or("origin");
    remote("remote", remote_name)?;
    check_repository_of(a.forge.unwrap_or_default(), "repository", &a.repository)?;
    if a.message.trim().is_empty() {
        return Err(ToolError::invalid(
            "message",
            "empty: say what the change does",
        ));
    }
    let env = identity(a.author.as_ref(), None)?;
    let change = change(a)?;
    let forge = Forge::new(
        a.forge.unwrap_or_default(),
        a.forge_profile.as_deref(),
        &a.repository,
        ctx,
    )?;
    let repo = Checkout::new(a.root.as_deref(), a.path.as_deref(), ctx)?;

    let current = out_str(&repo.git(&args(&["branch", "--show-current"]))?);
    let base = match &a.base {
        Some(b) => {
            branch_name("base", b)?;
            b.clone()
        }
        None if !current.is_empty() => current.clone(),
        None => {
            return Err(ToolError::invalid(
                "base",
                "the repository is on no branch (detached HEAD): name the pull request's base \
                 branch (`base`)",
            ));
        }
    };
    if base == a.branch {
        return Err(ToolError::invalid(
            "branch",
            format!(
                "'{}' is the base itself: name a new branch for the change",
                a.branch
            ),
        ));
    }
    let base_ref = format!("refs/heads/{base}");
    if resolve(&repo, &base_ref)?.is_none() {
        return Err(ToolError::invalid(
            "base",
            format!(
                "no branch '{base}' in {}: name a local branch to start from",
                repo.name()
            ),
        ));
    }
    let url = out_str(
        &repo
            .git(&args(&[
                "remote",
                "get-url",
                "--push",
                "--end-of-options",
                remote_name,
            ]))
            .map_err(|e| ToolError {
                field: Some("remote".into()),
                ..e
            })?,
    );
    let (t, b) = split_message(&a.message);
    let title = a.title.clone().unwrap_or_else(|| t.to_string());
    let body = a.body.clone().unwrap_or_else(|| b.to_string());
    let mut o = Proposal {
        branch: a.branch.clone(),
        base: base.clone(),
        remote: remote_name.into(),
        url: mask_url(&url),
        title: title.clone(),
        ..Default::default()
    };
    let branch_ref = format!("refs/heads/{}", a.branch);
    let existing_branch = resolve(&repo, &branch_ref)?;
    let open = forge.open_pull(&a.branch)?;

    if !apply {
        o.diffstat = match change {
            Change::Patch(p) => {
                let r = repo.git_with(
                    &args(&["apply", "--numstat", "-z"]),
                    Opts {
                        stdin: Some(ByteSource::Bytes(p.as_bytes().to_vec())),
                        ..Opts::default()
                    },
                )?;
                Some(infra_sdk::git::parse::numstat(&r.stdout, 200).map_err(ToolError::failed)?)
            }
            Change::Files(_) => None,
        };
        let what = match change {
            Change::Patch(_) => "apply the patch".to_string(),
            Change::Files(f) => format!(
                "write {}",
                f.iter()
                    .map(|e| e.path.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        o.plan = format!(
            "would {} branch '{}' from '{base}', {what}, commit {:?}, push it to {remote_name} \
             ({}) and {}; call again with `apply: true`",
            if existing_branch.is_some() {
                "reuse"
            } else {
                "create"
            },
            a.branch,
            t,
            o.url,
            match &open {
                Some(p) => format!("keep the open pull request #{} ({})", p.number, p.url),
                None => format!(
                    "open a pull request {title:?} into '{base}' on {}",
                    a.repository
                ),
            }
        );
        o.pull_request = open;
        return Ok(o);
    }

    // The work starts from a clean checkout, so nothing of the user's is committed or lost.
    let s = status(&repo, 20, &[])?;
    if !s.tracked_clean() {
        let paths: Vec<&str> = s.entries.iter().map(|e| e.path.as_str()).collect();
        return Err(ToolError::failed(format!(
            "{} has uncommitted changes ({}); commit or stash them first: propose works on a \
             clean checkout and leaves it as it was",
            repo.name(),
            paths.join(", ")
        )));
    }
    let back = if current.is_empty() {
        args(&[
            "switch",
            "--quiet",
            "--detach",
            &out_str(&repo.git(&args(&["rev-parse", "HEAD"]))?),
        ])
    } else {
        args(&["switch", "--quiet", "--no-guess", &current])
    };
    let made = commit_change(&repo, a, change, &env, existing_branch.is_some(), &base_ref);
    // Back to where the user was, whatever happened; a branch this call created and left
    // without a commit is removed so that a retry starts the same way.
    let restored = repo
        .git(&args(&["reset", "--quiet", "--hard"]))
        .and_then(|_| repo.git(&back));
    let committed = match made {
        Ok(c) => c,
        Err(e) => {
            if existing_branch.is_none() {
                let _ = repo.git(&args(&[
                    "branch",
                    "--quiet",
                    "-D",
                    "--end-of-options",
                    &a.branch,
                ]));
            }
            return Err(e);
        }
    };
    restored?;
    let tip = resolve(&repo, &branch_ref)?.ok_or_else(|| {
        ToolError::failed(format!(
            "branch '{}' is gone after the commit; retry",
            a.branch
        ))
    })?;
    o.commit = Some(commit(&repo, &tip)?);
    o.diffstat = Some(numstat(&repo, &args(&[&base_ref, &branch_ref, "--"]), 200)?);
    let stat = o.diffstat.as_ref().map_or(String::new(), |d| {
        format!(
            "{} file(s), +{} -{}",
            d.files_changed, d.insertions, d.deletions
        )
    });

    let pushed_already = open.as_ref().and_then(|p| p.head_sha.as_deref()) == Some(tip.as_str());
    if !pushed_already {
        let plan = format!(
            "push branch {} ({tip}, {stat}) of {} to {remote_name} ({}) and open a pull request \
             {title:?} into {base} on {}",
            a.branch,
            repo.name(),
            o.url,
            a.repository
        );
        o.approval = Some(approve("git", &o.url, Vec::new(), &plan)?);
        let r = git::push(&PushRequest {
            root: repo.root.clone(),
            path: repo.path.clone(),
            remote: remote_name.into(),
            refspecs: vec![format!("{branch_ref}:{branch_ref}")],
            force: false,
            profile: a.git_profile.clone(),
            timeout_ms: repo.timeout_ms,
        })?;
        if r.output.exit_code != Some(0) {
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&r.output.stdout),
                String::from_utf8_lossy(&r.output.stderr)
            );
            return Err(ToolError::failed(format!(
                "git push of {} to {remote_name} ({}) failed: {}; if the remote branch moved \
                 on, pick another `branch` or bring it up to date first",
                a.branch,
                mask_url(&r.url),
                infra_sdk::git::cut(said.trim(), 2000)
            )));
        }
        o.pushed = true;
    }
    o.pull_request = Some(match open {
        Some(p) => p,
        None => forge.create_pull(&title, &a.branch, &base, &body)?,
    });
    let pr = o.pull_request.as_ref().map(|p| (p.number, p.url.clone()));
    let (n, u) = pr.unwrap_or_default();
    o.applied = true;
    o.plan = format!(
        "{} {} ({stat}){}; pull request #{n} {} ({u})",
        if committed { "committed to" } else { "kept" },
        a.branch,
        if o.pushed {
            format!(", pushed to {remote_name}")
        } else {
            ", already on the forge".into()
        },
        if o.pull_request.as_ref().is_some_and(|p| p.existing) {
            "already open"
        } else {
            "opened"
        },
    );
    Ok(o)
}

/// On the branch (made from `base_ref`, or the existing one): the change, and a commit when it
/// changes anything. Returns whether it committed. The caller switches back.
/// Proposes undoing what branch `a.branch` changed: a branch `<branch>-revert` starting at its
/// tip, with the inverse of its diff since it left `base`, as a pull request into `base`.
/// Merged, it takes the change out of `base` whatever else was merged since — and it needs no
/// fetch of the forge's merge commit, which the checkout does not have.
pub fn revert(a: &ProposeArgs, base: &str, why: &str, ctx: &Ctx) -> Result<Proposal, ToolError> {
    let repo = Checkout::new(a.root.as_deref(), a.path.as_deref(), ctx)?;
    let tip_ref = format!("refs/heads/{}", a.branch);
    let tip = resolve(&repo, &tip_ref)?.ok_or_else(|| {
        ToolError::failed(format!(
            "branch '{}' is gone from {}, so its change cannot be reverted here; revert the merge \
             on the forge",
            a.branch,
            repo.name()
        ))
    })?;
    let fork = out_str(&repo.git(&args(&[
        "merge-base",
        "--end-of-options",
        &format!("refs/heads/{base}"),
        &tip,
    ]))?);
    let mut d = args(&["diff", "--binary"]);
    d.extend(args(infra_sdk::git::DIFF_FLAGS));
    d.extend(args(&[&tip, &fork, "--"]));
    let (bytes, _) = repo.full_stdout(&repo.git(&d)?)?;
    if bytes.is_empty() {
        return Err(ToolError::failed(format!(
            "branch '{}' changes nothing against '{base}': there is nothing to revert",
            a.branch
        )));
    }
    let title = split_message(&a.message).0;
    let r = ProposeArgs {
        root: a.root.clone(),
        path: a.path.clone(),
        branch: format!("{}-revert", a.branch),
        base: Some(base.to_string()),
        patch: Some(String::from_utf8_lossy(&bytes).into_owned()),
        files: None,
        message: format!("Revert \"{title}\"\n\n{why}"),
        author: a.author.clone(),
        remote: a.remote.clone(),
        git_profile: a.git_profile.clone(),
        forge_profile: a.forge_profile.clone(),
        forge: a.forge,
        repository: a.repository.clone(),
        title: None,
        body: None,
        start: Some(tip_ref),
    };
    propose(&r, true, ctx)
}

fn commit_change(
    repo: &Checkout,
    a: &ProposeArgs,
    change: Change,
    env: &[crate::caps::types::KeyValue],
    exists: bool,
    base_ref: &str,
) -> Result<bool, ToolError> {
    if exists {
        repo.git(&args(&["switch", "--quiet", "--no-guess", &a.branch]))?;
    } else {
        let start = rev("base", a.start.as_deref().unwrap_or(base_ref))?;
        repo.git(&args(&[
            "switch",
            "--quiet",
            "--no-guess",
            "-c",
            &a.branch,
            &start,
        ]))?;
    }
    match change {
        Change::Patch(p) => {
            let (check, applied) = patch::check_and_apply(
                repo,
                &PatchArgs {
                    patch: Some(p),
                    artifact: None,
                    index: true,
                    three_way: false,
                },
                true,
            )?;
            if !applied {
                // Already applied (a retry of the same change on the same branch) is no error.
                let reverse = repo.exec(
                    "git",
                    &args(&["apply", "--check", "--reverse", "--index"]),
                    Opts {
                        stdin: Some(ByteSource::Bytes(p.as_bytes().to_vec())),
                        ..Opts::default()
                    },
                )?;
                if reverse.exit_code != Some(0) {
                    return Err(ToolError::invalid(
                        "patch",
                        format!(
                            "the patch does not apply to '{}': {}",
                            a.branch,
                            serde_json::to_string(&check).unwrap_or_default()
                        ),
                    )
                    .with_detail(json!(check)));
                }
            }
        }
        Change::Files(files) => {
            for f in files.iter() {
                let blob = repo.git_with(
                    &args(&["hash-object", "-w", "--stdin"]),
                    Opts {
                        stdin: Some(ByteSource::Bytes(f.content.as_bytes().to_vec())),
                        ..Opts::default()
                    },
                )?;
                let mode = repo.git(&args(&[
                    "ls-files",
                    "--stage",
                    "--",
                    &format!(":(literal){}", f.path),
                ]))?;
                let mode = out_str(&mode)
                    .split(' ')
                    .next()
                    .filter(|m| *m == "100755")
                    .unwrap_or("100644")
                    .to_string();
                repo.git(&args(&[
                    "update-index",
                    "--add",
                    "--cacheinfo",
                    &format!("{mode},{},{}", out_str(&blob), f.path),
                ]))?;
            }
        }
    }
    let staged = repo.exec(
        "git",
        &args(&["diff", "--cached", "--quiet", "--no-ext-diff"]),
        Opts::default(),
    )?;
    if staged.exit_code == Some(0) {
        if !exists {
            let field = match change {
                Change::Patch(_) => "patch",
                Change::Files(_) => "files",
            };
            return Err(ToolError::invalid(
                field,
                format!(
                    "the change is already in '{}': nothing to propose",
                    base_ref.trim_start_matches("refs/heads/")
                ),
            ));
        }
        return Ok(false);
    }
    repo.git_with(
        &args(&[
            "commit",
            "--no-verify",
            "--no-gpg-sign",
            "--quiet",
            "-m",
            a.message.trim(),
        ]),
        Opts {
            env: env.to_vec(),
            ..Opts::default()
        },
    )?;
    Ok(true)
}
