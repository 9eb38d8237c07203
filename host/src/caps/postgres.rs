//! `infra:host/postgres` — being built (issue 3). Not in [`super::IMPLEMENTED`]: a plugin
//! importing `postgres` is refused at load, so nothing below is reachable until it lands.

use super::StoreState;
use super::infra::host::postgres::{CopyFormat, Host, PgError, Rows, Statement};
use super::infra::host::types::{ArtifactRef, CapError};

/// Postgres connection pools, one per profile.
#[derive(Default)]
pub struct Pools;

fn unbuilt() -> PgError {
    PgError::Cap(CapError::Failed(
        "the postgres capability is not built yet".into(),
    ))
}

impl Host for StoreState {
    async fn query(&mut self, _stmt: Statement) -> Result<Rows, PgError> {
        Err(unbuilt())
    }
    async fn transaction(&mut self, _stmts: Vec<Statement>) -> Result<Vec<Rows>, PgError> {
        Err(unbuilt())
    }
    async fn copy_out(
        &mut self,
        _stmt: Statement,
        _format: CopyFormat,
    ) -> Result<ArtifactRef, PgError> {
        Err(unbuilt())
    }
}
