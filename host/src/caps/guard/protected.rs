//! Whether the operator marked a target `protected` (a write to it then needs the user's
//! approval). The one place the guard reads it.

use crate::caps::Shared;

/// Whether a `kind` write to `target` is protected. A Terraform target is `<root>:<dir>`, a
/// working directory under a root of `[roots]`: protected when that root says
/// `protected = true`. Any other target is protected when a profile (kubernetes and every other
/// type) or an SSH target of that name says `"protected": true`; either counts, whatever the
/// kind: when one name means both, asking the user once too often is the safe mistake.
pub fn is_protected(shared: &Shared, kind: &str, target: &str) -> bool {
    if kind == "terraform" {
        let root = target.split_once(':').map_or(target, |(r, _)| r);
        return shared.policy.root(root).is_some_and(|r| r.protected);
    }
    shared.profiles.get(target).is_some_and(|p| p.protected())
        || shared
            .ssh
            .targets()
            .get(target)
            .is_some_and(|t| t.protected())
}
