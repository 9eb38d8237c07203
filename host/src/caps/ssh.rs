//! `infra:host/ssh` — being built (issue 3). Not in [`super::IMPLEMENTED`]: a plugin importing
//! `ssh` is refused at load, so nothing below is reachable until the capability lands.

use super::StoreState;
use super::infra::host::ssh::{ExecRequest, ExecResult, FileStat, Host, StdinSource};
use super::infra::host::types::{ArtifactRef, CapError};

/// SSH connections, pooled per target.
#[derive(Default)]
pub struct Pool;

fn unbuilt() -> CapError {
    CapError::Failed("the ssh capability is not built yet".into())
}

impl Host for StoreState {
    async fn exec(&mut self, _req: ExecRequest) -> Result<ExecResult, CapError> {
        Err(unbuilt())
    }
    async fn sftp_list(
        &mut self,
        _target: String,
        _path: String,
    ) -> Result<Vec<FileStat>, CapError> {
        Err(unbuilt())
    }
    async fn sftp_stat(&mut self, _target: String, _path: String) -> Result<FileStat, CapError> {
        Err(unbuilt())
    }
    async fn sftp_read(
        &mut self,
        _target: String,
        _path: String,
        _max_bytes: u64,
    ) -> Result<ArtifactRef, CapError> {
        Err(unbuilt())
    }
    async fn sftp_write(
        &mut self,
        _target: String,
        _path: String,
        _content: StdinSource,
        _mode: Option<u32>,
        _mkdirs: bool,
        _overwrite: bool,
    ) -> Result<FileStat, CapError> {
        Err(unbuilt())
    }
}
