//! `infra:host/ssh` (russh, russh-sftp): remote commands and file transfer on the targets of
//! `targets.json`, checked against `[plugin.<name>.ssh] targets`.
//!
//! Keys, passphrases and passwords are resolved here and never reach the plugin; their values are
//! registered with the redactor before use, so they are scrubbed from everything that leaves.
//! Connections are pooled per target ([`Pool`]) and reused across calls; the server's host key is
//! pinned or trusted on first use, and a changed one is refused with both fingerprints.

mod detached;
mod exec;
mod pool;
mod sftp;

pub use detached::{Probe, Stopped, cancel, probe, tail};
pub use exec::sh_quote;
pub use pool::{Conn, Pool};

use super::infra::host::ssh::{
    DetachedRequest, ExecRequest, ExecResult, FileStat, Host, JobStarted, StdinSource,
};
use super::infra::host::types::{ArtifactRef, CapError};
use super::{CallCtx, StoreState};

impl CallCtx {
    /// Checks the plugin's grant for `target`; records a denial.
    fn ssh_grant(&self, target: &str) -> Result<(), CapError> {
        self.require("ssh", target).map_err(CapError::Denied)?;
        self.decide(
            "ssh",
            target,
            self.shared.policy.check_ssh_target(&self.plugin, target),
        )
        .map_err(CapError::Denied)
    }

    /// The pooled connection to `target` (whose grant [`CallCtx::ssh_use`] checked).
    async fn ssh_conn(&self, target: &str) -> Result<Conn, CapError> {
        self.shared.ssh.get(target, &self.shared.redactor).await
    }

    /// Runs one ssh use on `target` under its grant, recorded as one capability event: `work`'s
    /// success detail, or its error.
    async fn ssh_use<T>(
        &self,
        target: &str,
        work: impl Future<Output = Result<(T, String), CapError>>,
    ) -> Result<T, CapError> {
        self.ssh_grant(target)?;
        let ev = self.event("ssh", target);
        match work.await {
            Ok((v, detail)) => {
                ev.ok(detail);
                Ok(v)
            }
            Err(e) => {
                ev.fail(e.message());
                Err(e)
            }
        }
    }
}

impl CallCtx {
    /// Runs `req` on the target's pooled connection, reconnecting once when the connection
    /// turns out to be dead before anything ran.
    pub async fn ssh_exec(&self, req: &ExecRequest) -> Result<ExecResult, CapError> {
        self.ssh_use(&req.target, self.ssh_exec_once_or_twice(req))
            .await
    }

    async fn ssh_exec_once_or_twice(
        &self,
        req: &ExecRequest,
    ) -> Result<(ExecResult, String), CapError> {
        let mut conn = self.ssh_conn(&req.target).await?;
        // A pooled connection can be dead without knowing it yet (the server went away while
        // idle): when not even a channel opens, nothing ran, so reconnect once and retry.
        for attempt in 0..2 {
            let stdin = match req.stdin.clone() {
                Some(s) => Some(self.byte_source("stdin", s).await?),
                None => None,
            };
            match exec::run(self, &conn, req, stdin).await {
                Ok(r) => return Ok(r),
                Err(exec::ExecError::Open(e)) if attempt == 0 => {
                    tracing::debug!(
                        "ssh {}: channel open failed ({e}); reconnecting",
                        req.target
                    );
                    self.shared.ssh.discard(&req.target, &conn).await;
                    conn = self.ssh_conn(&req.target).await?;
                }
                Err(exec::ExecError::Open(e)) => {
                    self.shared.ssh.discard(&req.target, &conn).await;
                    return Err(CapError::Failed(format!(
                        "cannot open a session on target '{}': {e}",
                        req.target
                    )));
                }
                Err(exec::ExecError::Cap(e)) => {
                    if conn.is_closed() {
                        self.shared.ssh.discard(&req.target, &conn).await;
                    }
                    return Err(e);
                }
            }
        }
        unreachable!("the loop returns on its second attempt")
    }
}

impl Host for StoreState {
    async fn exec(&mut self, req: ExecRequest) -> Result<ExecResult, CapError> {
        self.call.ssh_exec(&req).await
    }

    async fn exec_detached(&mut self, req: DetachedRequest) -> Result<JobStarted, CapError> {
        detached::start(&self.call, req).await
    }

    async fn sftp_list(&mut self, target: String, path: String) -> Result<Vec<FileStat>, CapError> {
        sftp::list(&self.call, &target, &path).await
    }

    async fn sftp_stat(&mut self, target: String, path: String) -> Result<FileStat, CapError> {
        sftp::stat(&self.call, &target, &path).await
    }

    async fn sftp_read(
        &mut self,
        target: String,
        path: String,
        max_bytes: u64,
    ) -> Result<ArtifactRef, CapError> {
        sftp::read(&self.call, &target, &path, max_bytes).await
    }

    async fn sftp_write(
        &mut self,
        target: String,
        path: String,
        content: StdinSource,
        mode: Option<u32>,
        mkdirs: bool,
        overwrite: bool,
    ) -> Result<FileStat, CapError> {
        sftp::write(&self.call, &target, &path, content, mode, mkdirs, overwrite).await
    }
}
