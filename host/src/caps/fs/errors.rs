//! File-system errors as the plugin sees them: a path that leads out of its root is a denial
//! (cap-std refused it), a missing path is not-found, a symlink loop or a file where a
//! directory should be is the request's fault; the rest says what failed and what to check.

use std::io;

use crate::caps::infra::host::types::CapError;

/// The text cap-std gives a path that resolves outside its directory handle.
const ESCAPE: &str = "a path led outside of the filesystem";

/// Whether cap-std refused `e` because the path led outside the root.
pub fn is_escape(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::PermissionDenied && e.to_string().contains(ESCAPE)
}

/// `e`, met while `what` (e.g. `reading`) `shown` (`<root>:<path>`), as a capability error.
pub fn io_error(what: &str, shown: &str, e: io::Error) -> CapError {
    if is_escape(&e) {
        return CapError::Denied(format!(
            "{shown} leads outside its root (through a symlink or '..'); fs reaches only files inside the root — name the file itself, inside it"
        ));
    }
    match (e.kind(), e.raw_os_error()) {
        (io::ErrorKind::NotFound, _) => CapError::NotFound(format!(
            "{shown} does not exist; list its directory with list-dir"
        )),
        (_, Some(libc::ELOOP)) => CapError::Invalid(format!(
            "path: {shown} loops through symbolic links (or is a symlink where a file was expected); name the file without the loop"
        )),
        (_, Some(libc::ENOTDIR)) | (io::ErrorKind::NotADirectory, _) => CapError::Invalid(format!(
            "path: a part of {shown} is not a directory; check the path with stat"
        )),
        (io::ErrorKind::IsADirectory, _) => CapError::Invalid(format!(
            "path: {shown} is a directory; list it with list-dir or name a file"
        )),
        (io::ErrorKind::DirectoryNotEmpty, _) => CapError::Invalid(format!(
            "recursive: {shown} is a directory that is not empty; pass recursive: true to remove it with everything under it"
        )),
        (io::ErrorKind::PermissionDenied, _) => CapError::Failed(format!(
            "{what} {shown}: permission denied for the user infra runs as; the operator fixes the file's permissions"
        )),
        (io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded, _) => CapError::Failed(
            format!("{what} {shown}: no space left; free space on that file system"),
        ),
        _ => CapError::Failed(format!("{what} {shown}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_capability_errors_naming_the_field() {
        let escape = io::Error::new(io::ErrorKind::PermissionDenied, ESCAPE);
        assert!(
            matches!(io_error("reading", "w:a", escape), CapError::Denied(m) if m.contains("outside its root"))
        );
        let plain = io::Error::from(io::ErrorKind::PermissionDenied);
        assert!(
            matches!(io_error("reading", "w:a", plain), CapError::Failed(m) if m.contains("permission denied"))
        );
        let missing = io::Error::from(io::ErrorKind::NotFound);
        assert!(matches!(
            io_error("reading", "w:a", missing),
            CapError::NotFound(_)
        ));
        let l = io::Error::from_raw_os_error(libc::ELOOP);
        assert!(
            matches!(io_error("reading", "w:a", l), CapError::Invalid(m) if m.starts_with("path: "))
        );
        let ne = io::Error::from_raw_os_error(libc::ENOTEMPTY);
        assert!(
            matches!(io_error("removing", "w:a", ne), CapError::Invalid(m) if m.starts_with("recursive: "))
        );
    }
}
