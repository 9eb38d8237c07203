//! `infra:host/types`: shared records only; there is nothing to call. Also what every
//! capability needs to fill them: an artifact's reference, an error's message and cause chain.

use super::StoreState;
use super::infra::host::types::{ArtifactRef, CapError, Host};
use crate::artifacts::{ArtifactInfo, SinkError};

impl Host for StoreState {}

impl From<ArtifactInfo> for ArtifactRef {
    fn from(info: ArtifactInfo) -> Self {
        ArtifactRef {
            uri: info.uri,
            size: info.size,
            sha256: info.sha256,
        }
    }
}

impl CapError {
    /// The message, whatever the kind.
    pub fn message(&self) -> &str {
        match self {
            CapError::Denied(m)
            | CapError::NotFound(m)
            | CapError::Invalid(m)
            | CapError::Timeout(m)
            | CapError::Failed(m) => m,
        }
    }

    /// A failed artifact stream as the plugin sees it: `too_large` says which cap was passed
    /// and what to do; a store failure says why.
    pub fn from_sink(e: SinkError, too_large: impl FnOnce() -> String) -> CapError {
        match e {
            SinkError::TooLarge => CapError::Failed(too_large()),
            SinkError::Store(e) => CapError::Failed(format!("{e:#}")),
        }
    }
}

/// An error and its sources, `outer: inner: …`: client libraries (reqwest, tokio-postgres) put
/// the useful part — refused, reset, certificate — in a source, not in the top message. A
/// source whose text the message already quotes is not repeated.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}
