//! `apply_patch`: `git apply --check` (and, with `apply: true`, `git apply`), with git's
//! messages turned into a per-file, per-hunk report.

use crate::caps::types::ByteSource;
use crate::git::{Opts, Repo, args};
use crate::out::RepoOutput;
use infra_sdk::prelude::*;

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
                expected: crate::parse::cut(expected.trim_end(), 2000),
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
fn source(patch: Option<&str>, artifact: Option<&str>) -> Result<ByteSource, ToolError> {
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

/// `apply_patch`: checks always; applies with `apply` when the check passes.
pub fn apply_patch(
    repo: &Repo,
    p: &PatchArgs,
    apply: bool,
    o: &mut RepoOutput,
) -> Result<(), ToolError> {
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
    let files = check.files.len();
    if !apply || !check.ok {
        o.applied = Some(false);
        o.plan = Some(if check.ok {
            format!(
                "the patch applies cleanly to {files} file(s); call again with `apply: true` to apply it"
            )
        } else {
            "the patch does not apply: see `patch_check` for the files and hunks".into()
        });
        o.patch_check = Some(check);
        return Ok(());
    }
    let done = run(None)?;
    o.applied = Some(done.ok);
    o.plan = Some(format!("applied the patch to {files} file(s)"));
    o.patch_check = Some(done);
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
}
