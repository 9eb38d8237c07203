//! A guest's path, checked before anything touches the disk: relative to its root, no NUL, no
//! `..` that climbs above the root, not absurdly long. What is left is a plain relative path
//! (`.` for the root itself) that cap-std resolves inside the root's directory handle, so the
//! only way out that remains — a symlink — is refused there.

use std::path::{Component, Path, PathBuf};

/// Longest path accepted, in bytes (Linux's PATH_MAX).
pub const MAX_PATH: usize = 4096;

/// `path` made relative to its root: `.` for the root, else its components without `.` and
/// with each `..` applied. `absolute_ok` (the unsafe root `/` only) accepts a leading `/`.
/// The error names the field `path` and says what to write instead.
pub fn relative(path: &str, root: &str, absolute_ok: bool) -> Result<PathBuf, String> {
    if path.len() > MAX_PATH {
        return Err(format!(
            "path: {} bytes, more than {MAX_PATH}; name a shorter path",
            path.len()
        ));
    }
    if path.contains('\0') {
        return Err("path: contains a NUL byte; name the file without it".into());
    }
    let p = Path::new(path);
    if p.is_absolute() && !absolute_ok {
        return Err(format!(
            "path: '{path}' is absolute; paths are relative to root '{root}' — write it without the leading '/' (e.g. 'src/main.rs'), and call roots() to see where each root is"
        ));
    }
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(format!(
                        "path: '{path}' climbs above root '{root}' with '..'; fs reaches only paths inside its root — name a path under it"
                    ));
                }
            }
        }
    }
    if parts.is_empty() {
        return Ok(PathBuf::from("."));
    }
    Ok(parts.iter().collect())
}

/// Whether `rel` (from [`relative`]) is the root itself.
pub fn is_root(rel: &Path) -> bool {
    rel == Path::new(".")
}

/// `rel` as a listing shows it: relative to the root (with a leading `/` under the unsafe root,
/// where paths are absolute).
pub fn shown(rel: &Path, absolute: bool) -> String {
    let text = if is_root(rel) {
        String::new()
    } else {
        rel.to_string_lossy().into_owned()
    };
    match (absolute, text.is_empty()) {
        (true, _) => format!("/{text}"),
        (false, true) => ".".into(),
        (false, false) => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(path: &str) -> String {
        relative(path, "work", false)
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn plain_paths_are_cleaned_and_inner_dotdot_applied() {
        assert_eq!(ok("a/b.txt"), "a/b.txt");
        assert_eq!(ok("./a//b/./c"), "a/b/c");
        assert_eq!(ok("a/x/../b"), "a/b");
        assert_eq!(ok(""), ".");
        assert_eq!(ok("."), ".");
        assert_eq!(ok("a/.."), ".");
    }

    #[test]
    fn climbing_out_and_absolute_paths_are_refused_naming_the_field() {
        for bad in [
            "..",
            "../etc/passwd",
            "a/../../b",
            "./../x",
            "a/b/../../../c",
        ] {
            let e = relative(bad, "work", false).unwrap_err();
            assert!(
                e.starts_with("path: ") && e.contains("climbs above root 'work'"),
                "{bad}: {e}"
            );
        }
        let e = relative("/etc/passwd", "work", false).unwrap_err();
        assert!(e.starts_with("path: ") && e.contains("absolute"), "{e}");
        let e = relative("a\0b", "work", false).unwrap_err();
        assert!(e.contains("NUL"), "{e}");
        let e = relative(&"a/".repeat(3000), "work", false).unwrap_err();
        assert!(e.contains("more than 4096"), "{e}");
    }

    #[test]
    fn the_unsafe_root_takes_absolute_paths_but_not_above_slash() {
        let rel = relative("/etc/hosts", "/", true).unwrap();
        assert_eq!(rel, PathBuf::from("etc/hosts"));
        assert_eq!(relative("/", "/", true).unwrap(), PathBuf::from("."));
        assert!(relative("/../etc", "/", true).is_err());
    }

    #[test]
    fn listings_show_paths_relative_or_absolute() {
        assert_eq!(shown(Path::new("."), false), ".");
        assert_eq!(shown(Path::new("a/b"), false), "a/b");
        assert_eq!(shown(Path::new("."), true), "/");
        assert_eq!(shown(Path::new("etc"), true), "/etc");
    }
}
