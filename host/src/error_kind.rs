//! Why a call failed, as the agent reads it in the envelope's `error.kind`.
//!
//! One enum end to end: the plugin's `tool-error.kind` (a WIT enum), a host-tool failure and a
//! failure the router itself produces all become one of these, so the audit outcome and the
//! agent's advice never depend on matching message text.

use serde::{Deserialize, Serialize};

/// The kind of a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// Bad input: an argument is missing, malformed or out of range.
    Invalid,
    /// Refused by the policy or a flag.
    Denied,
    /// The named thing does not exist.
    NotFound,
    /// The deadline passed.
    Timeout,
    /// The remote system or the operation failed.
    Failed,
    /// Too many calls in flight: retry later.
    Busy,
    /// The client cancelled the call.
    Cancelled,
}

impl ErrorKind {
    /// The name used in envelopes and audit records, e.g. `not-found`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Denied => "denied",
            Self::NotFound => "not-found",
            Self::Timeout => "timeout",
            Self::Failed => "failed",
            Self::Busy => "busy",
            Self::Cancelled => "cancelled",
        }
    }

    /// The kind named `name` (as [`ErrorKind::as_str`] spells it), if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        ALL.iter().copied().find(|k| k.as_str() == name)
    }
}

/// Every kind, in declaration order.
pub const ALL: [ErrorKind; 7] = [
    ErrorKind::Invalid,
    ErrorKind::Denied,
    ErrorKind::NotFound,
    ErrorKind::Timeout,
    ErrorKind::Failed,
    ErrorKind::Busy,
    ErrorKind::Cancelled,
];

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::{ALL, ErrorKind};

    #[test]
    fn serde_display_and_from_name_agree() {
        for k in ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
            assert_eq!(ErrorKind::from_name(k.as_str()), Some(k));
        }
        assert_eq!(ErrorKind::from_name("not_found"), None);
    }
}
