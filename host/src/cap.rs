//! The one list of capabilities: every `infra:host` interface a policy can grant.
//!
//! Linking ([`crate::caps::add_to_linker`]), the load-time import check
//! ([`crate::runtime::imports::check`]), the policy's `[plugin.<name>.<cap>]` sections
//! ([`crate::policy::PluginPolicy`]) and the `plugins` output all follow this list, so a new
//! capability is one line in [`with_caps`] plus its three files: `wit/host/<cap>.wit`,
//! `host/src/caps/<cap>.rs` and `host/src/policy/<cap>.rs`.

/// Hands the list of capabilities, in the contract's order, to the macro `$then`: one
/// `Variant name,` per capability, where `name` is the WIT interface, the policy key and the
/// module name in `caps/` and `policy/`.
macro_rules! with_caps {
    ($then:ident) => {
        $then! {
            Http http,
            Ssh ssh,
            Postgres postgres,
            Fs fs,
            Exec exec,
            Git git,
            Secrets secrets,
            Artifacts artifacts,
            Log log,
            Guard guard,
        }
    };
}
pub(crate) use with_caps;

/// The interface of shared records: every plugin may import it, no policy grants it.
pub const TYPES: &str = "types";

macro_rules! define_cap {
    ($($variant:ident $name:ident,)*) => {
        /// A capability of the `infra:host` contract.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Cap {
            $(
                #[doc = concat!("`infra:host/", stringify!($name), "`.")]
                $variant,
            )*
        }

        impl Cap {
            /// Every capability, in the contract's order.
            pub const ALL: &[Cap] = &[$(Cap::$variant,)*];

            /// The interface's short name, as in WIT, `plugin.toml` and the policy.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Cap::$variant => stringify!($name),)*
                }
            }
        }
    };
}
with_caps!(define_cap);

impl Cap {
    /// The capability named `name`, if it is one (`types` is not: it grants nothing).
    pub fn parse(name: &str) -> Option<Cap> {
        Cap::ALL.iter().copied().find(|c| c.name() == name)
    }

    /// Every `infra:host` interface name, [`TYPES`] first, for messages that list them.
    pub fn interfaces() -> impl Iterator<Item = &'static str> {
        std::iter::once(TYPES).chain(Cap::ALL.iter().map(|c| c.name()))
    }

    /// Whether the host provides interface `iface` (a short name such as `http`): every
    /// capability of the list has its host side.
    pub fn provides(iface: &str) -> bool {
        iface == TYPES || Cap::parse(iface).is_some()
    }
}

impl std::fmt::Display for Cap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_types_is_no_capability() {
        for cap in Cap::ALL {
            assert_eq!(Cap::parse(cap.name()), Some(*cap));
        }
        assert_eq!(Cap::parse(TYPES), None);
        assert_eq!(
            Cap::interfaces().collect::<Vec<_>>().join(", "),
            "types, http, ssh, postgres, fs, exec, git, secrets, artifacts, log, guard"
        );
    }

    #[test]
    fn the_host_provides_every_capability_and_nothing_else() {
        assert!(!Cap::provides("nosuch"));
        for name in [
            "types",
            "http",
            "ssh",
            "postgres",
            "exec",
            "git",
            "fs",
            "secrets",
            "artifacts",
            "log",
            "guard",
        ] {
            assert!(Cap::provides(name), "{name}");
        }
    }
}
