//! The error a tool returns, and how capability errors become one.

use serde::Serialize;

use crate::bindings::exports::infra::plugin::tool::{
    ErrorKind as WitErrorKind, ToolError as WitToolError,
};
use crate::bindings::infra::host::types::CapError;

/// The kind of a failure, as the agent reads it in the envelope's `error.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// Bad input: an argument is missing, malformed or out of range.
    Invalid,
    /// Refused by the policy or a flag.
    Denied,
    /// The named thing does not exist.
    NotFound,
    /// The operation ran past its deadline.
    Timeout,
    /// The remote system or the operation failed.
    Failed,
}

impl ErrorKind {
    /// The name the agent sees, e.g. `not-found`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Denied => "denied",
            Self::NotFound => "not-found",
            Self::Timeout => "timeout",
            Self::Failed => "failed",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<ErrorKind> for WitErrorKind {
    fn from(k: ErrorKind) -> Self {
        match k {
            ErrorKind::Invalid => Self::Invalid,
            ErrorKind::Denied => Self::Denied,
            ErrorKind::NotFound => Self::NotFound,
            ErrorKind::Timeout => Self::Timeout,
            ErrorKind::Failed => Self::Failed,
        }
    }
}

/// Why a tool call failed; the host shows it to the agent as an `isError` result.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolError {
    /// What kind of failure it is.
    pub kind: ErrorKind,
    /// What went wrong, ending in what to do about it.
    pub message: String,
    /// The argument at fault, when there is one.
    pub field: Option<String>,
    /// Extra structured detail for the agent.
    pub detail: Option<serde_json::Value>,
}

impl ToolError {
    /// A failure of `kind`; the named constructors below are the usual way in.
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
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
            ..Self::new(ErrorKind::Invalid, message)
        }
    }

    /// The remote system or the operation failed.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, message)
    }

    /// The named thing does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// Refused by policy or a flag.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Denied, message)
    }

    /// The operation ran past its deadline.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }

    /// Attaches structured detail (e.g. an HTTP status and body preview).
    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }

    pub(crate) fn into_wit(self) -> WitToolError {
        WitToolError {
            kind: self.kind.into(),
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
            CapError::Invalid(m) => Self::new(ErrorKind::Invalid, m),
            CapError::Timeout(m) => Self::timeout(m),
            CapError::Failed(m) => Self::failed(m),
        }
    }
}
