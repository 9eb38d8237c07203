//! A failed call as the agent sees it: host tools, the router and the runtime's errors all end
//! as one of these, and the envelope turns it into `error` {`kind`, `message`, `field`?,
//! `detail`?}.

use serde_json::Value;

use crate::error_kind::ErrorKind;

/// A failed call, as the agent sees it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Why it failed; the audit outcome follows from it.
    pub kind: ErrorKind,
    /// What went wrong and what to do.
    pub message: String,
    /// The argument at fault.
    pub field: Option<String>,
    /// Extra detail.
    pub detail: Option<Value>,
}

impl Failure {
    /// A failure of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            field: None,
            detail: None,
        }
    }

    /// Bad input in `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(ErrorKind::Invalid, message)
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::new(ErrorKind::Failed, format!("{e:#}"))
    }
}
