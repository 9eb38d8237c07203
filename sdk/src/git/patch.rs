//! Applying a unified diff: `git apply --check` (and, when asked, `git apply`), with git's
//! messages turned into a per-file, per-hunk report; and the paths a patch names, checked
//! before git sees it.

use super::check::{args, relative};
use super::runner::{Opts, Runner};
use crate::caps::types::ByteSource;
use crate::prelude::*;

/// The check (and application) of a patch.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct PatchCheck {
    /// Every file applies cleanly.
    pub ok: bool,
    /// The files of the patch, in order, with their problems.
    pub files: Vec<PatchFile>,
    /// Problems not tied to one file (a corrupt patch, no patch at all).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// One file of a patch.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct PatchFile {
    /// The path as the patch names it (`old => new` for a rename).
    pub path: String,
    /// It applies (or applied) without a problem.
    pub ok: bool,
    /// Hunks that do not apply.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_hunks: Vec<FailedHunk>,
    /// Problems with the file as a whole (missing, already exists, does not match the index,
    /// applied with conflicts).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// A hunk that does not apply.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FailedHunk {
    /// The line of the original file where the hunk starts.
    pub line: u64,
    /// The lines git searched for and did not find.
    pub expected: String,
}

/// Reads `git apply -v`'s messages.
pub fn parse(stderr: &str) -> PatchCheck {
    let mut c = PatchCheck::default();
    let mut searching: Option<String> = None;
    let file_of = |c: &mut PatchCheck, path: &str| -> usize {
        let path = path.to_string();
        match c.files.iter().position(|f| f.path == path) {
            Some(i) => i,
            None => {
                c.files.push(PatchFile {
                    path,
                    ok: true,
                    ..Default::default()
                });
                c.files.len() - 1
            }
        }
    };
    for line in stderr.lines() {
        if let Some(lines) = searching.as_mut()
            && !line.starts_with("error: ")
        {
            lines.push_str(line);
            lines.push('\n');
            continue;
        }
        if let Some(p) = line
            .strip_prefix("Checking patch ")
            .and_then(|p| p.strip_suffix("..."))
        {
            file_of(&mut c, p);
        } else if line == "error: while searching for:" {
            searching = Some(String::new());
        } else if let Some(rest) = line.strip_prefix("error: patch failed: ") {
            // `path:line`: the path may hold colons, the line number may not.
            let (path, n) = rest.rsplit_once(':').unwrap_or((rest, "0"));
            let i = file_of(&mut c, path);
            let expected = searching.take().unwrap_or_default();
            let f = &mut c.files[i];
            f.ok = false;
            f.failed_hunks.push(FailedHunk {
                line: n.parse().unwrap_or(0),
                expected: super::cut(expected.trim_end(), 2000),
            });
        } else if let Some(rest) = line.strip_prefix("error: ") {
            searching = None;
            match rest.split_once(": ") {
                Some((path, why)) if c.files.iter().any(|f| f.path == path) => {
                    let i = file_of(&mut c, path);
                    let f = &mut c.files[i];
                    f.ok = false;
                    if why != "patch does not apply" || f.failed_hunks.is_empty() {
                        f.errors.push(why.to_string());
                    }
                }
                _ => c.errors.push(rest.to_string()),
            }
        } else if let Some(p) = line
            .strip_prefix("Applied patch to '")
            .and_then(|p| p.strip_suffix("' with conflicts."))
        {
            let i = file_of(&mut c, p);
            c.files[i].ok = false;
            c.files[i].errors.push("applied with conflicts".into());
        }
    }
    c.ok = c.errors.is_empty() && c.files.iter().all(|f| f.ok);
    c
}

/// The patch from exactly one of `patch` and `patch_artifact`.
pub fn source(patch: Option<&str>, artifact: Option<&str>) -> Result<ByteSource, ToolError> {
    match (patch, artifact) {
        (Some(_), Some(_)) => Err(ToolError::invalid(
            "patch_artifact",
            "give only one of `patch` and `patch_artifact`",
        )),
        (Some(p), None) if !p.trim().is_empty() => Ok(ByteSource::Bytes(p.as_bytes().to_vec())),
        (None, Some(a)) if a.starts_with("artifact://") => Ok(ByteSource::Artifact(a.into())),
        (None, Some(a)) => Err(ToolError::invalid(
            "patch_artifact",
            format!("'{a}' is not an artifact:// URI"),
        )),
        _ => Err(ToolError::invalid(
            "patch",
            "missing: give the unified diff as `patch` (text) or `patch_artifact`",
        )),
    }
}

/// What `apply_patch` takes besides the repository.
pub struct PatchArgs<'a> {
    /// The patch text.
    pub patch: Option<&'a str>,
    /// The patch's artifact.
    pub artifact: Option<&'a str>,
    /// Apply to the index too.
    pub index: bool,
    /// Three-way fallback.
    pub three_way: bool,
}

/// Checks the patch always; applies it with `apply` when the check passes. Returns the check
/// (or the application's report) and whether it was applied.
pub fn check_and_apply(
    repo: &impl Runner,
    p: &PatchArgs,
    apply: bool,
) -> Result<(PatchCheck, bool), ToolError> {
    let stdin = source(p.patch, p.artifact)?;
    let mut flags = args(&["apply", "-v"]);
    if p.index {
        flags.push("--index".into());
    }
    if p.three_way {
        flags.push("--3way".into());
    }
    let run = |extra: Option<&str>| -> Result<PatchCheck, ToolError> {
        let mut a = flags.clone();
        a.extend(extra.map(String::from));
        let r = repo.exec(
            "git",
            &a,
            Opts {
                stdin: Some(stdin.clone()),
                ..Opts::default()
            },
        )?;
        let mut c = parse(&String::from_utf8_lossy(&r.stderr));
        // A refusal git words in a way not read above still fails the check.
        if r.exit_code != Some(0) && c.ok {
            c.ok = false;
            c.errors.push(format!(
                "git apply exited with {:?}: {}",
                r.exit_code,
                String::from_utf8_lossy(&r.stderr).trim()
            ));
        }
        Ok(c)
    };
    let check = run(Some("--check"))?;
    if !apply || !check.ok {
        return Ok((check, false));
    }
    let done = run(None)?;
    let ok = done.ok;
    Ok((done, ok))
}

/// The paths a unified diff names (`diff --git a/x b/y`, `--- a/x`, `+++ b/y`), without their
/// `a/`/`b/` prefixes; `/dev/null` left out.
pub fn paths(patch: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |p: &str| {
        let p = p.trim_end_matches('\r');
        let p = p.split('\t').next().unwrap_or(p);
        let p = p
            .strip_prefix('"')
            .and_then(|p| p.strip_suffix('"'))
            .unwrap_or(p);
        if p == "/dev/null" {
            return;
        }
        let p = p
            .strip_prefix("a/")
            .or_else(|| p.strip_prefix("b/"))
            .unwrap_or(p);
        if !out.iter().any(|x| x == p) {
            out.push(p.to_string());
        }
    };
    let lines: Vec<&str> = patch.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        // A file header is a `--- ` line right before a `+++ ` line; elsewhere such a line is a
        // removed line of a hunk that happens to start with `-- `.
        let next = lines.get(i + 1).copied().unwrap_or_default();
        let prev = i.checked_sub(1).map_or("", |j| lines[j]);
        if let Some(rest) = line.strip_prefix("diff --git ")
            && let Some((a, b)) = rest.split_once(" b/")
        {
            add(a);
            add(&format!("b/{b}"));
        } else if let Some(p) = line.strip_prefix("--- ")
            && next.starts_with("+++ ")
        {
            add(p);
        } else if let Some(p) = line.strip_prefix("+++ ")
            && prev.starts_with("--- ")
        {
            add(p);
        } else if let Some(p) = line
            .strip_prefix("rename from ")
            .or_else(|| line.strip_prefix("rename to "))
            .or_else(|| line.strip_prefix("copy from "))
            .or_else(|| line.strip_prefix("copy to "))
        {
            add(p);
        }
    }
    out
}

/// Refuses a patch that names a path outside the work tree or inside a `.git` directory
/// (hooks, config: what would run code on the next git command). git refuses these too; the
/// check names the field and the path first.
pub fn check_paths(field: &str, patch: &str) -> Result<(), ToolError> {
    for p in paths(patch) {
        relative(field, &p)?;
        if p.split('/').any(|c| c.eq_ignore_ascii_case(".git")) {
            return Err(ToolError::invalid(
                field,
                format!(
                    "the patch touches '{p}', inside a .git directory: a patch may change only \
                     files of the work tree"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_become_files_and_hunks() {
        let stderr = "Checking patch f.txt...\nerror: while searching for:\nh\ni\n\nerror: patch failed: f.txt:8\n\
error: f.txt: patch does not apply\nChecking patch a:b.txt...\nChecking patch gone.txt...\n\
error: gone.txt: No such file or directory\n";
        let c = parse(stderr);
        assert!(!c.ok);
        assert_eq!(c.files.len(), 3);
        assert_eq!(c.files[0].failed_hunks[0].line, 8);
        assert_eq!(c.files[0].failed_hunks[0].expected, "h\ni");
        assert!(c.files[0].errors.is_empty(), "{:?}", c.files[0].errors);
        assert!(c.files[1].ok);
        assert_eq!(c.files[2].errors, ["No such file or directory"]);
        let c = parse("error: corrupt patch at line 3\n");
        assert!(!c.ok && c.errors == ["corrupt patch at line 3"]);
        assert!(parse("Checking patch x...\nApplied patch x cleanly.\n").ok);
    }

    #[test]
    fn patches_into_git_directories_or_out_of_the_tree_are_refused() {
        let ok = "diff --git a/k/app.yaml b/k/app.yaml\n--- a/k/app.yaml\n+++ b/k/app.yaml\n@@ -1 +1 @@\n-a\n+b\n";
        assert_eq!(paths(ok), ["k/app.yaml"]);
        check_paths("patch", ok).unwrap();
        let new = "--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+x\n";
        assert_eq!(paths(new), ["new.txt"]);
        for bad in [
            "diff --git a/.git/hooks/pre-commit b/.git/hooks/pre-commit\n--- /dev/null\n+++ b/.git/hooks/pre-commit\n",
            "--- a/x\n+++ b/sub/.GIT/config\n",
            "--- a/../outside\n+++ b/../outside\n",
            "--- /dev/null\n+++ /etc/passwd\n",
        ] {
            assert_eq!(
                check_paths("patch", bad).unwrap_err().field.as_deref(),
                Some("patch"),
                "{bad}"
            );
        }
    }
}
