//! The `repo` tool: git repositories under the roots the policy grants.
//!
//! git and kubectl run in the host's `exec` capability, confined to the granted roots with the
//! repository's own hooks, pagers, drivers and config-borne commands switched off by the host;
//! pushes go through the host's `git` capability, which checks the remote's URL and injects the
//! credentials. The plugin reads git's machine formats (`status --porcelain=v2 -z`,
//! `diff --numstat -z`, `log -z`) rather than libgit2 or gitoxide: the git the operator
//! installed is the one that wrote the repository, and its output formats are stable.

mod args;
mod git;
mod out;
mod patch;
mod read;
mod write;

use infra_sdk::git::{patch::PatchArgs, render};
use infra_sdk::prelude::*;

use args::{Action, RepoArgs, one_of};
use out::RepoOutput;

const DESCRIPTION: &str = "Git repositories under the roots the policy grants (`root`, default \
`workspace`; `path` under it, default `.`). Read-only: `snapshot` (branch, upstream, \
ahead/behind, status, diffstat, last commits), `status`, `diff` (work tree, `staged` or \
`from`/`to`; `format` stat or patch, large patches in an artifact), `log`, `show`, \
`assert_clean`. Writes, which only say what they would do unless `apply: true`: `apply_patch` \
(checked per file and hunk), `commit` (`author`/`committer`), `revert`, `branch` \
(create/switch), `push` (to remotes the policy grants; credentials from a profile, held by the \
host). `render`: `kubectl kustomize` (or `helm template` where granted) → manifests artifact + \
objects (kind, name, namespace, images). The repository's hooks, pagers, filters and \
config-borne commands never run.";

fn run(a: RepoArgs, ctx: &Ctx) -> Result<RepoOutput, ToolError> {
    let repo = git::Repo::new(&a.at, ctx)?;
    let mut o = RepoOutput {
        root: repo.root.clone(),
        path: repo.path.clone(),
        ..Default::default()
    };
    let at = &a.at;
    let apply = at.apply();
    let max = at.max_entries();
    let list = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
    match &a.action {
        Action::Snapshot { commits } => read::snapshot(&repo, at, *commits, &mut o)?,
        Action::Status => o.status = Some(infra_sdk::git::status(&repo, max, &[])?),
        Action::Diff(d) => read::diff(&repo, at, d, &mut o)?,
        Action::Log {
            rev,
            paths,
            max_count,
            skip,
        } => read::log(
            &repo,
            rev.as_deref(),
            &list(paths),
            *max_count,
            *skip,
            &mut o,
        )?,
        Action::Show { rev, sha, format } => {
            let rev = one_of(&[("rev", rev), ("sha", sha)])?;
            read::show(&repo, at, rev.map(String::as_str), *format, &mut o)?
        }
        Action::AssertClean { allow_untracked } => {
            read::assert_clean(&repo, at, allow_untracked.unwrap_or(false), &mut o)?
        }
        Action::ApplyPatch {
            patch,
            patch_artifact,
            index,
            three_way,
        } => patch::apply_patch(
            &repo,
            &PatchArgs {
                patch: patch.as_deref(),
                artifact: patch_artifact.as_deref(),
                index: index.unwrap_or(false),
                three_way: three_way.unwrap_or(false),
            },
            apply,
            &mut o,
        )?,
        Action::Commit {
            message,
            paths,
            all,
            author,
            committer,
            allow_empty,
        } => write::commit(
            &repo,
            max,
            &write::CommitArgs {
                message,
                paths: &list(paths),
                all: all.unwrap_or(false),
                author: author.as_ref(),
                committer: committer.as_ref(),
                allow_empty: allow_empty.unwrap_or(false),
            },
            apply,
            &mut o,
        )?,
        Action::Revert {
            rev,
            sha,
            mainline,
            author,
        } => {
            let rev = one_of(&[("rev", rev), ("sha", sha)])?.ok_or_else(|| {
                ToolError::invalid("rev", "missing: name the commit to undo (`rev`)")
            })?;
            write::revert(&repo, max, rev, *mainline, author.as_ref(), apply, &mut o)?
        }
        Action::Branch {
            name,
            branch,
            create,
            start,
            switch,
        } => write::branch(
            &repo,
            one_of(&[("name", name), ("branch", branch)])?
                .ok_or_else(|| ToolError::invalid("name", "missing: name the branch (`name`)"))?,
            create.unwrap_or(false),
            start.as_deref(),
            switch.unwrap_or(true),
            apply,
            &mut o,
        )?,
        Action::Push {
            remote,
            refspecs,
            force,
            profile,
        } => write::push(
            &repo,
            &write::PushArgs {
                remote: remote.as_deref().unwrap_or("origin"),
                refspecs: &list(refspecs),
                force: force.unwrap_or(false),
                profile: profile.as_deref(),
            },
            apply,
            &mut o,
        )?,
        Action::Render {
            dir,
            overlay,
            chart,
            renderer,
            render_type,
            values,
            release,
            namespace,
        } => {
            o.render = Some(render::render(
                &repo,
                &render::RenderArgs {
                    dir: one_of(&[("dir", dir), ("overlay", overlay), ("chart", chart)])?
                        .map_or(".", String::as_str),
                    renderer: one_of(&[("renderer", renderer), ("render_type", render_type)])?
                        .copied()
                        .unwrap_or_default(),
                    values: &list(values),
                    release: release.as_deref().unwrap_or("release"),
                    namespace: namespace.as_deref(),
                },
                max,
            )?)
        }
    }
    Ok(o)
}

infra_sdk::plugin!(tools: [
    Tool::new("repo", "Repository", DESCRIPTION, run).destructive(),
]);
