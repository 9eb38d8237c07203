//! `infra:host/exec`: confined local programs. (Skeleton: filled in by the exec work of
//! issue 11.)

use super::StoreState;
use super::infra::host::exec::{Command, Host};
use super::infra::host::types::{CapError, ExecResult};

impl Host for StoreState {
    async fn run(&mut self, _cmd: Command) -> Result<ExecResult, CapError> {
        Err(CapError::Failed("exec: not built yet".into()))
    }
}
