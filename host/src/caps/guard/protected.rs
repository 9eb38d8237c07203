//! Whether the operator marked a target `protected` (a write to it then needs the user's
//! approval). The one place the guard reads it, so the source can change without the guard.

use crate::caps::Shared;

/// Whether `target` of `kind` is protected: a profile (kubernetes and other profile kinds) or
/// an SSH target whose entry says `"protected": true`.
pub fn is_protected(shared: &Shared, kind: &str, target: &str) -> bool {
    // Until profiles and targets carry `protected` (the kubernetes-profile branch adds it),
    // nothing is: this stub is the single place to wire it.
    let _ = (shared, kind, target);
    false
}
