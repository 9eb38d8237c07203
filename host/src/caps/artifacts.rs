//! `infra:host/artifacts`: plugins store and read artifacts through the host's store.

use super::StoreState;
use super::infra::host::artifacts::Host;
use super::infra::host::types::{ArtifactRef, CapError};
use crate::artifacts::{ArtifactError, ArtifactMeta};

/// Largest single read a plugin may ask for; bigger reads page with `offset`.
const MAX_READ: u64 = 16 * 1024 * 1024;

/// The store's error as the plugin sees it; a missing artifact is told apart by its type.
fn failed(e: anyhow::Error) -> CapError {
    let text = format!("{e:#}");
    match e.downcast_ref::<ArtifactError>() {
        Some(ArtifactError::NotFound { .. }) => CapError::NotFound(text),
        _ => CapError::Failed(text),
    }
}

impl Host for StoreState {
    async fn put(
        &mut self,
        data: Vec<u8>,
        media_type: String,
        description: String,
    ) -> Result<ArtifactRef, CapError> {
        let call = &self.call;
        call.require("artifacts", "put").map_err(CapError::Denied)?;
        let data = call.shared.redactor.scrub_bytes(&data);
        let meta = ArtifactMeta {
            media_type,
            tool: call.tool.clone(),
            trace_id: call.trace_id.clone(),
            description,
        };
        let info = call
            .shared
            .artifacts
            .put(&data, meta)
            .await
            .map_err(failed)?;
        Ok(info.into())
    }

    async fn read(&mut self, uri: String, offset: u64, len: u64) -> Result<Vec<u8>, CapError> {
        let call = &self.call;
        call.require("artifacts", &uri).map_err(CapError::Denied)?;
        call.shared
            .artifacts
            .read_range(&uri, offset, len.min(MAX_READ))
            .await
            .map_err(failed)
    }

    async fn stat(&mut self, uri: String) -> Result<ArtifactRef, CapError> {
        let call = &self.call;
        call.require("artifacts", &uri).map_err(CapError::Denied)?;
        let info = call.shared.artifacts.info(&uri).await.map_err(failed)?;
        Ok(info.into())
    }
}
