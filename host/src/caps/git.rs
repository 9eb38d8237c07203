//! `infra:host/git`: pushes done by the host to granted remotes. (Skeleton: filled in by the
//! exec work of issue 11.)

use super::StoreState;
use super::infra::host::git::{Host, PushRequest, PushResult};
use super::infra::host::types::CapError;

impl Host for StoreState {
    async fn push(&mut self, _req: PushRequest) -> Result<PushResult, CapError> {
        Err(CapError::Failed("git: not built yet".into()))
    }
}
