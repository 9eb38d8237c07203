//! The two safety flags, read once from the environment of the server process.
//!
//! Both default to off. They are not policy: the policy says what a plugin may be granted, a
//! flag says whether the operator allows that kind of grant to take effect on this machine at
//! all. `host/src/caps` checks both; an agent cannot change either, because no tool touches the
//! server's environment.

/// Environment variable that lets `exec`/`fs` go beyond their allowlists and lists the `local` tool.
pub const UNSAFE_LOCAL_VAR: &str = "INFRA_UNSAFE_LOCAL";
/// Environment variable that lets granted plugins read secret values.
pub const ALLOW_SECRET_EXPORT_VAR: &str = "INFRA_ALLOW_SECRET_EXPORT";

/// The operator's safety switches for this server process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    /// `INFRA_UNSAFE_LOCAL`: shell and arbitrary paths where the policy says `unsafe = true`.
    pub unsafe_local: bool,
    /// `INFRA_ALLOW_SECRET_EXPORT`: secret values may leave the host for granted plugins.
    pub allow_secret_export: bool,
}

impl Flags {
    /// Both flags off: what a server gets when the operator sets nothing.
    pub const SAFE: Flags = Flags {
        unsafe_local: false,
        allow_secret_export: false,
    };

    /// Reads both flags from the process environment.
    pub fn from_env() -> Flags {
        Flags::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads both flags through `lookup`, so callers and tests need not mutate the environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Flags {
        Flags {
            unsafe_local: lookup(UNSAFE_LOCAL_VAR).is_some_and(|v| is_on(&v)),
            allow_secret_export: lookup(ALLOW_SECRET_EXPORT_VAR).is_some_and(|v| is_on(&v)),
        }
    }
}

/// Whether a flag value turns the flag on.
///
/// Only a short list of explicit yeses counts: a typo such as `ture` or a value such as `0`
/// or `off` must leave a safety flag off rather than guess.
fn is_on(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(pairs: &[(&str, &str)]) -> Flags {
        Flags::from_lookup(|name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn unset_is_safe() {
        assert_eq!(flags(&[]), Flags::SAFE);
        assert_eq!(Flags::default(), Flags::SAFE);
    }

    #[test]
    fn explicit_yeses_turn_flags_on() {
        for v in ["1", "true", "yes", "TRUE", "Yes", " 1 "] {
            let f = flags(&[(UNSAFE_LOCAL_VAR, v), (ALLOW_SECRET_EXPORT_VAR, v)]);
            assert!(f.unsafe_local, "{v:?} should turn INFRA_UNSAFE_LOCAL on");
            assert!(f.allow_secret_export, "{v:?} should turn secret export on");
        }
    }

    #[test]
    fn anything_else_leaves_flags_off() {
        for v in [
            "", "0", "false", "no", "off", "on", "ture", "2", "y", "enabled",
        ] {
            let f = flags(&[(UNSAFE_LOCAL_VAR, v), (ALLOW_SECRET_EXPORT_VAR, v)]);
            assert_eq!(f, Flags::SAFE, "{v:?} must not turn a flag on");
        }
    }

    #[test]
    fn flags_are_independent() {
        let f = flags(&[(ALLOW_SECRET_EXPORT_VAR, "1")]);
        assert!(f.allow_secret_export);
        assert!(!f.unsafe_local);
    }
}
