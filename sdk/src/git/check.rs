//! Argument hygiene every git action shares: paths that stay inside their root and are taken
//! literally, revisions, branch names, remotes and refspecs that cannot pass for options.

use crate::prelude::*;

/// Refuses an absolute `value` or one whose `..` climbs out of where it starts.
pub use crate::relative_path as relative;

/// A revision from the call, refused when git could read it as an option.
pub fn rev(field: &str, value: &str) -> Result<String, ToolError> {
    if value.is_empty() || value.starts_with('-') || value.contains('\0') {
        return Err(ToolError::invalid(
            field,
            format!("'{value}' is not a revision: give a branch, tag, commit or range (`a..b`)"),
        ));
    }
    Ok(value.to_string())
}

/// Paths from the call as literal pathspecs (no globbing, no magic), after `--`.
pub fn pathspecs(field: &str, paths: &[String]) -> Result<Vec<String>, ToolError> {
    let mut out = vec!["--".to_string()];
    for p in paths {
        relative(field, p)?;
        if p.is_empty() || p.contains('\0') {
            return Err(ToolError::invalid(
                field,
                "an empty path: name a file or directory",
            ));
        }
        out.push(format!(":(literal){p}"));
    }
    Ok(out)
}

/// A branch name git would accept, checked before git sees it (git's own
/// `check-ref-format --branch` runs too where a repository is at hand): no option look-alike,
/// no `..`, no component starting with `.` or ending with `.lock`, none of `~^:?*[\` or control
/// characters, no `@{`, no leading, trailing or doubled `/`.
pub fn branch_name(field: &str, name: &str) -> Result<(), ToolError> {
    let bad = name.is_empty()
        || name.len() > 200
        || name.starts_with('-')
        || name == "@"
        || name.contains("..")
        || name.contains("@{")
        || name.contains("//")
        || name.starts_with('/')
        || name.ends_with('/')
        || name.ends_with('.')
        || name
            .chars()
            .any(|c| c.is_control() || c == ' ' || "~^:?*[\\".contains(c))
        || name
            .split('/')
            .any(|part| part.starts_with('.') || part.ends_with(".lock"));
    if bad {
        return Err(ToolError::invalid(
            field,
            format!(
                "'{name}' is not a valid branch name: use letters, digits, '-', '_', '.' and '/' \
                 (e.g. `infra/bump-web`; see `git check-ref-format`)"
            ),
        ));
    }
    Ok(())
}

/// A remote name (`origin`), not a URL or an option.
pub fn remote(field: &str, name: &str) -> Result<(), ToolError> {
    if name.is_empty() || name.starts_with('-') || name.contains(['/', ':', '\0']) {
        return Err(ToolError::invalid(
            field,
            format!("'{name}' is not a remote name: give one of `git remote` (e.g. origin)"),
        ));
    }
    Ok(())
}

/// Refspecs that cannot pass for options.
pub fn refspecs(field: &str, specs: &[String]) -> Result<(), ToolError> {
    for r in specs {
        if r.is_empty() || r.starts_with('-') || r.contains('\0') {
            return Err(ToolError::invalid(field, format!("'{r}' is not a refspec")));
        }
    }
    Ok(())
}

/// `args` as owned strings.
pub fn args(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_revisions_that_escape_or_pass_for_options_are_refused() {
        assert!(relative("path", "a/../b").is_ok());
        assert_eq!(
            relative("path", "a/../../b").unwrap_err().field.as_deref(),
            Some("path")
        );
        assert!(
            relative("path", "/etc")
                .unwrap_err()
                .message
                .contains("absolute")
        );
        assert!(rev("rev", "--output=/tmp/x").is_err());
        assert_eq!(rev("rev", "main~2..HEAD").unwrap(), "main~2..HEAD");
        assert_eq!(
            pathspecs("paths", &["*.rs".into()]).unwrap(),
            ["--", ":(literal)*.rs"]
        );
        assert!(pathspecs("paths", &["../x".into()]).is_err());
    }

    #[test]
    fn branch_names_that_git_would_refuse_or_read_as_options_are_refused() {
        for bad in [
            "--force", "-b", "../x", "a..b", ".hidden", "a/.x", "x.lock", "a b", "a~1", "a:b",
            "a^", "a?", "a*", "a[", "a\\b", "/a", "a/", "a//b", "@", "a@{1}", "", "x.",
        ] {
            assert_eq!(
                branch_name("branch", bad).unwrap_err().field.as_deref(),
                Some("branch"),
                "{bad:?}"
            );
        }
        for good in ["main", "infra/bump-web", "release-1.2", "feature_x"] {
            branch_name("branch", good).unwrap();
        }
        assert!(remote("remote", "origin").is_ok());
        assert!(remote("remote", "--upload-pack=x").is_err());
        assert!(remote("remote", "file:///x").is_err());
        assert!(refspecs("refspecs", &["-f".into()]).is_err());
    }
}
