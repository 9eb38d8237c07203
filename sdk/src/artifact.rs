//! How a tool reports an artifact the host stored for it.

use schemars::JsonSchema;
use serde::Serialize;

use crate::bindings::infra::host::types::ArtifactRef;

/// A stored artifact, as a tool result shows it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Artifact {
    /// `artifact://…` URI; read it with the `artifacts` tool.
    pub uri: String,
    /// Size in bytes.
    pub size: u64,
    /// Hex sha256.
    pub sha256: String,
}

impl From<ArtifactRef> for Artifact {
    fn from(a: ArtifactRef) -> Self {
        Self {
            uri: a.uri,
            size: a.size,
            sha256: a.sha256,
        }
    }
}
