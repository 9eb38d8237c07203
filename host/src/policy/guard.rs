//! `[plugin.<name>.guard]`: the plugin may ask for write approvals (`guard.approve`), inside
//! these change windows, and how long a target's lock lasts when its holder vanishes.

use serde::Deserialize;
use serde_json::{Value, json};

use super::Policy;
use super::error::PolicyError;
use super::plugin::CapGrant;
use super::section::Section;
use crate::caps::guard::window::Window;

/// A lock's lifetime when nothing says otherwise: long enough for an apply, short enough that a
/// crashed holder on another machine does not block a target for the day.
pub const DEFAULT_LOCK_TTL_SECS: u64 = 900;
/// The longest lock lifetime the policy may set (a day).
const MAX_LOCK_TTL_SECS: u64 = 86_400;

/// `[plugin.<name>.guard]`: when the plugin may write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Change windows; empty means always.
    pub windows: Vec<Window>,
    /// Seconds after which a target's lock counts as abandoned.
    pub lock_ttl_secs: u64,
}

/// The section as serde reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    #[serde(default)]
    windows: Vec<String>,
    lock_ttl_secs: Option<u64>,
}

impl CapGrant for Grant {
    type Raw = Raw;

    fn load(raw: Raw, at: &Section<'_, '_>) -> Result<Self, PolicyError> {
        let windows = raw
            .windows
            .iter()
            .enumerate()
            .map(|(i, w)| Window::parse(w).map_err(|e| at.invalid("windows", Some(i), e)))
            .collect::<Result<Vec<_>, _>>()?;
        let lock_ttl_secs = raw.lock_ttl_secs.unwrap_or(DEFAULT_LOCK_TTL_SECS);
        if lock_ttl_secs == 0 || lock_ttl_secs > MAX_LOCK_TTL_SECS {
            return Err(at.invalid(
                "lock_ttl_secs",
                None,
                format!("{lock_ttl_secs} is outside 1..={MAX_LOCK_TTL_SECS} seconds; pick a value in that range (default {DEFAULT_LOCK_TTL_SECS})"),
            ));
        }
        Ok(Grant {
            windows,
            lock_ttl_secs,
        })
    }

    fn summary(&self) -> Value {
        let windows: Vec<&str> = self.windows.iter().map(Window::as_str).collect();
        json!({"windows": windows, "lock_ttl_secs": self.lock_ttl_secs})
    }
}

impl Policy {
    /// The plugin's guard grant, when it has one.
    pub fn guard(&self, plugin: &str) -> Option<&Grant> {
        self.plugin(plugin).and_then(|p| p.guard.as_ref())
    }
}
