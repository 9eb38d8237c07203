//! The error a tool returns, and how capability errors become one.

use crate::bindings::exports::infra::plugin::tool::ToolError as WitToolError;
use crate::bindings::infra::host::types::CapError;

/// Why a tool call failed; the host shows it to the agent as an `isError` result.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolError {
    /// `invalid`, `denied`, `not-found`, `timeout` or `failed`.
    pub kind: &'static str,
    /// What went wrong, ending in what to do about it.
    pub message: String,
    /// The argument at fault, when there is one.
    pub field: Option<String>,
    /// Extra structured detail for the agent.
    pub detail: Option<serde_json::Value>,
}

impl ToolError {
    fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            field: None,
            detail: None,
        }
    }

    /// Bad input: names the field and says how to fix it.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new("invalid", message)
        }
    }

    /// The remote system or the operation failed.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new("failed", message)
    }

    /// The named thing does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new("not-found", message)
    }

    /// Refused by policy or a flag.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new("denied", message)
    }

    /// The operation ran past its deadline.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new("timeout", message)
    }

    /// Attaches structured detail (e.g. an HTTP status and body preview).
    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }

    pub(crate) fn into_wit(self) -> WitToolError {
        WitToolError {
            kind: self.kind.to_string(),
            message: self.message,
            field: self.field,
            detail_json: self.detail.map(|d| d.to_string()).unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for ToolError {}

/// Lets a tool use `?` on any capability call: the host's reason passes through unchanged.
impl From<CapError> for ToolError {
    fn from(e: CapError) -> Self {
        match e {
            CapError::Denied(m) => Self::denied(m),
            CapError::NotFound(m) => Self::not_found(m),
            CapError::Invalid(m) => Self::new("invalid", m),
            CapError::Timeout(m) => Self::timeout(m),
            CapError::Failed(m) => Self::failed(m),
        }
    }
}
