//! The arguments of the `repo` tool: the repository every action names (a granted root and a
//! path under it), and per `action` its own fields.

use infra_sdk::prelude::*;

pub use infra_sdk::git::Person;
pub use infra_sdk::git::render::Renderer;

/// Arguments of the `repo` tool: where the repository is, and the action with its own fields.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
pub struct RepoArgs {
    /// Where the repository is, and the limits every action runs under.
    #[serde(flatten)]
    pub at: At,
    /// What to do, with the fields only that action takes.
    #[serde(flatten)]
    pub action: Action,
}

/// Where the repository is, and the limits every action runs under.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct At {
    /// A root the policy grants (`[roots]` in the policy; default `workspace`, the directory
    /// infra started in).
    pub root: Option<String>,
    /// The repository's directory relative to the root (default `.`); never absolute.
    pub path: Option<String>,
    /// Carry out a write (`apply_patch`, `commit`, `revert`, `branch`, `push`); without it
    /// they only say what they would do.
    pub apply: Option<bool>,
    /// Bytes of diffs, patches and rendered manifests returned inline (default 64 KiB); the
    /// whole output goes to an artifact when longer.
    pub max_output: Option<u64>,
    /// Entries listed at most (status paths, diffstat files, objects; default 200, at most
    /// 10000); counts cover all of them.
    pub max_entries: Option<u32>,
}

/// What to do.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Read-only overview: top-level directory, branch, upstream, ahead/behind, status,
    /// diffstat of the work tree against HEAD, and the last commits.
    Snapshot {
        /// How many recent commits (default 5, at most 100).
        commits: Option<u32>,
    },
    /// Branch facts and changed, untracked and conflicted paths.
    Status,
    /// Changes as a diffstat or a patch: the work tree against the index (default), the index
    /// against HEAD (`staged`), or between revisions (`from`, `to`).
    Diff(DiffArgs),
    /// Commits reachable from `rev` (default HEAD), newest first.
    Log {
        /// A revision or range (`main`, `v1..HEAD`).
        rev: Option<String>,
        /// Only commits touching these paths.
        paths: Option<Vec<String>>,
        /// Commits at most (default 20, at most 1000).
        max_count: Option<u32>,
        /// Commits to skip first.
        skip: Option<u32>,
    },
    /// One commit: its metadata and its diffstat (or patch with `format: "patch"`).
    Show {
        /// The commit (default HEAD).
        rev: Option<String>,
        /// Another name for `rev`.
        sha: Option<String>,
        /// `stat` (default) or `patch`.
        format: Option<Format>,
    },
    /// Fails unless there is no staged, unstaged or conflicted change (and, unless
    /// `allow_untracked`, no untracked file).
    AssertClean {
        /// Untracked files do not count (default false).
        allow_untracked: Option<bool>,
    },
    /// Checks a unified diff against the work tree (`git apply --check`); applies it with
    /// `apply: true`. Conflicts are reported per file and hunk.
    ApplyPatch {
        /// The patch text.
        patch: Option<String>,
        /// The patch from an `artifact://` URI.
        patch_artifact: Option<String>,
        /// Apply to the index too (`git apply --index`).
        index: Option<bool>,
        /// Fall back to a three-way merge (`git apply --3way`; implies the index).
        three_way: Option<bool>,
    },
    /// Commits staged changes, or `paths`, or everything with `all`.
    Commit {
        /// The commit message.
        message: String,
        /// Stage these paths (added, changed or removed) and commit only them.
        paths: Option<Vec<String>>,
        /// Stage every change, untracked files included, first.
        all: Option<bool>,
        /// The author (default the repository's configured user).
        author: Option<Person>,
        /// The committer (default the author).
        committer: Option<Person>,
        /// Allow a commit without changes.
        allow_empty: Option<bool>,
    },
    /// Makes a commit undoing `rev`.
    Revert {
        /// The commit to undo.
        rev: Option<String>,
        /// Another name for `rev`.
        sha: Option<String>,
        /// For a merge commit: the parent (1-based) whose side is kept.
        mainline: Option<u32>,
        /// The committer of the revert (default the repository's configured user).
        author: Option<Person>,
    },
    /// Creates and/or switches to a branch.
    Branch {
        /// The branch name.
        name: Option<String>,
        /// Another name for `name`.
        branch: Option<String>,
        /// Create it (default false: it must exist).
        create: Option<bool>,
        /// Where a new branch starts (default HEAD).
        start: Option<String>,
        /// Check it out (default true).
        switch: Option<bool>,
    },
    /// Pushes to a remote the policy grants; the host checks the remote's URL and injects the
    /// credentials of `profile`.
    Push {
        /// The remote name (default `origin`).
        remote: Option<String>,
        /// Refspecs (default: the current branch to its upstream).
        refspecs: Option<Vec<String>>,
        /// Force with lease (needs `force = true` in the policy's git grant).
        force: Option<bool>,
        /// A profiles.json entry (`ssh-key`, `bearer`, `basic`) granted for pushes.
        profile: Option<String>,
    },
    /// Renders manifests: `kubectl kustomize DIR` (default) or `helm template` where the
    /// policy grants a `helm` program; the manifests go to an artifact, with a summary of each
    /// object (kind, name, namespace, images).
    Render {
        /// The overlay or chart directory, relative to the repository (default `.`).
        dir: Option<String>,
        /// Another name for `dir` (a kustomize overlay).
        overlay: Option<String>,
        /// Another name for `dir` (a helm chart).
        chart: Option<String>,
        /// `kustomize` (default) or `helm`.
        renderer: Option<Renderer>,
        /// Another name for `renderer`.
        render_type: Option<Renderer>,
        /// helm: values files relative to the repository.
        values: Option<Vec<String>>,
        /// helm: the release name (default `release`).
        release: Option<String>,
        /// helm: the namespace.
        namespace: Option<String>,
    },
}

/// What `diff` compares and how it reports it.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct DiffArgs {
    /// Compare the index with HEAD (or with `from`).
    pub staged: Option<bool>,
    /// The older revision; alone: it against the work tree (or the index with `staged`).
    pub from: Option<String>,
    /// The newer revision (needs `from`).
    pub to: Option<String>,
    /// Only these paths (taken literally, no globbing).
    pub paths: Option<Vec<String>>,
    /// `stat` (default: per-file counts) or `patch`.
    pub format: Option<Format>,
    /// patch: lines of context (default 3).
    pub context: Option<u32>,
}

/// A diff's form.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Per-file added/deleted counts.
    #[default]
    Stat,
    /// The unified diff.
    Patch,
}

/// The value of whichever of several fields naming the same thing is set (the first is the
/// main name, the others the seed's); more than one set is refused.
pub fn one_of<'a, T>(fields: &[(&str, &'a Option<T>)]) -> Result<Option<&'a T>, ToolError> {
    let mut set = fields
        .iter()
        .filter_map(|(n, v)| v.as_ref().map(|v| (*n, v)));
    let first = set.next();
    if let Some((other, _)) = set.next() {
        let names: Vec<String> = fields.iter().map(|(n, _)| format!("`{n}`")).collect();
        return Err(ToolError::invalid(
            other,
            format!(
                "{} name the same thing: give only one of them",
                names.join(", ")
            ),
        ));
    }
    Ok(first.map(|(_, v)| v))
}

impl At {
    /// Whether the call carries out writes.
    pub fn apply(&self) -> bool {
        self.apply.unwrap_or(false)
    }

    /// `max_entries`, defaulted and clamped.
    pub fn max_entries(&self) -> usize {
        self.max_entries.unwrap_or(200).clamp(1, 10_000) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<RepoArgs, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn actions_read_their_fields_and_the_seeds_names() {
        let a =
            parse(json!({"action": "revert", "root": "w", "sha": "abc", "mainline": 1})).unwrap();
        assert_eq!(a.at.root.as_deref(), Some("w"));
        let Action::Revert { rev, sha, .. } = &a.action else {
            panic!("revert expected")
        };
        assert_eq!(
            one_of(&[("rev", rev), ("sha", sha)])
                .unwrap()
                .map(String::as_str),
            Some("abc")
        );
        let both = one_of(&[("rev", &Some(1)), ("sha", &Some(2))]).unwrap_err();
        assert_eq!(both.field.as_deref(), Some("sha"));
        let a =
            parse(json!({"action": "render", "overlay": "k/prod", "render_type": "helm"})).unwrap();
        assert!(matches!(a.action,
            Action::Render { overlay: Some(d), render_type: Some(Renderer::Helm), .. } if d == "k/prod"));
        let a = parse(json!({"action": "diff", "staged": true, "format": "patch"})).unwrap();
        assert!(matches!(
            a.action,
            Action::Diff(DiffArgs {
                format: Some(Format::Patch),
                ..
            })
        ));
        assert_eq!(a.at.max_entries(), 200);
    }

    #[test]
    fn a_missing_field_or_a_bad_person_is_refused() {
        let e = parse(json!({"action": "commit"})).unwrap_err();
        assert!(e.to_string().contains("message"), "{e}");
        let e = parse(json!({"action": "commit", "message": "m", "author": {"name": "a"}}))
            .unwrap_err();
        assert!(e.to_string().contains("email"), "{e}");
    }
}
