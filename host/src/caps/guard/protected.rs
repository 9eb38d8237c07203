//! Whether the operator marked a target `protected` (a write to it then needs the user's
//! approval). The one place the guard reads it.

use crate::caps::Shared;

/// Whether `target` is protected: a profile (kubernetes and every other type) or an SSH target
/// of that name whose entry says `"protected": true`. Either counts, whatever the kind: when
/// one name means both, asking the user once too often is the safe mistake.
pub fn is_protected(shared: &Shared, target: &str) -> bool {
    shared.profiles.get(target).is_some_and(|p| p.protected())
        || shared
            .ssh
            .targets()
            .get(target)
            .is_some_and(|t| t.protected())
}
