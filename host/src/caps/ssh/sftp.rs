//! SFTP on a pooled connection: list, stat, read into an artifact, write from bytes or an
//! artifact. Each call opens one `sftp` subsystem channel on the target's connection.

use std::time::Duration;

use russh_sftp::client::SftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::super::CallCtx;
use super::super::infra::host::ssh::{FileKind, FileStat, StdinSource};
use super::super::infra::host::types::{ArtifactRef, CapError};
use crate::artifacts::{ArtifactMeta, Measured, ScrubbedSink};

/// Opens an SFTP session on the target's pooled connection (reconnecting once if it is stale).
async fn session(call: &CallCtx, target: &str) -> Result<SftpSession, CapError> {
    let mut conn = call.ssh_conn(target).await?;
    // Each step may hang on a connection that black-holes: all of them together get the
    // call's remaining time, and a connection that did not answer is not kept for the next call.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(call.remaining_ms());
    let timed_out = |step: &str| {
        CapError::Timeout(format!(
            "{step} on target '{target}' did not answer before the deadline; the connection was dropped and the next call reconnects"
        ))
    };
    let channel = match tokio::time::timeout_at(deadline, conn.channel_open_session()).await {
        Ok(Ok(c)) => c,
        Ok(Err(_)) => {
            call.shared.ssh.discard(target, &conn).await;
            conn = call.ssh_conn(target).await?;
            tokio::time::timeout_at(deadline, conn.channel_open_session())
                .await
                .map_err(|_| timed_out("opening a session"))?
                .map_err(|e| {
                    CapError::Failed(format!("cannot open a session on target '{target}': {e}"))
                })?
        }
        Err(_) => {
            call.shared.ssh.discard(target, &conn).await;
            return Err(timed_out("opening a session"));
        }
    };
    let start = async {
        channel.request_subsystem(true, "sftp").await.map_err(|e| {
            CapError::Failed(format!("target '{target}' refused the sftp subsystem: {e}"))
        })?;
        SftpSession::new(channel.into_stream()).await.map_err(|e| {
            CapError::Failed(format!(
                "cannot start SFTP on target '{target}': {e}; is the sftp subsystem enabled in its sshd_config?"
            ))
        })
    };
    let sftp = match tokio::time::timeout_at(deadline, start).await {
        Ok(r) => r?,
        Err(_) => {
            call.shared.ssh.discard(target, &conn).await;
            return Err(timed_out("starting SFTP"));
        }
    };
    sftp.set_timeout((call.remaining_ms() / 1000).max(1));
    Ok(sftp)
}

fn err(target: &str, path: &str, what: &str, e: SftpError) -> CapError {
    match &e {
        SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile => {
            CapError::NotFound(format!("{path} does not exist on target '{target}'"))
        }
        SftpError::Status(s) if s.status_code == StatusCode::PermissionDenied => CapError::Failed(
            format!("{what} {path} on target '{target}': permission denied for the SSH user"),
        ),
        SftpError::Timeout => CapError::Timeout(format!(
            "{what} {path} on target '{target}' timed out; raise timeout_ms"
        )),
        _ => CapError::Failed(format!("{what} {path} on target '{target}': {e}")),
    }
}

fn to_stat(path: String, a: &FileAttributes) -> FileStat {
    let t = a.file_type();
    FileStat {
        path,
        kind: if t.is_dir() {
            FileKind::Directory
        } else if t.is_symlink() {
            FileKind::Symlink
        } else if t.is_file() {
            FileKind::File
        } else {
            FileKind::Other
        },
        size: a.size.unwrap_or(0),
        mode: a.permissions.unwrap_or(0) & 0o7777,
        mtime: u64::from(a.mtime.unwrap_or(0)),
    }
}

/// Lists a remote directory.
pub async fn list(call: &CallCtx, target: &str, path: &str) -> Result<Vec<FileStat>, CapError> {
    call.ssh_use(target, async {
        let sftp = session(call, target).await?;
        let dir = sftp
            .read_dir(path)
            .await
            .map_err(|e| err(target, path, "listing", e))?;
        let mut out: Vec<FileStat> = dir
            .map(|e| {
                let meta = e.metadata();
                to_stat(e.file_name(), &meta)
            })
            .filter(|s| s.path != "." && s.path != "..")
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        let _ = sftp.close().await;
        Ok((out, format!("sftp list {path}")))
    })
    .await
}

/// Stats a remote path (without following a final symlink).
pub async fn stat(call: &CallCtx, target: &str, path: &str) -> Result<FileStat, CapError> {
    call.ssh_use(target, async {
        let sftp = session(call, target).await?;
        let a = sftp
            .symlink_metadata(path)
            .await
            .map_err(|e| err(target, path, "stat", e))?;
        let _ = sftp.close().await;
        Ok((to_stat(path.to_string(), &a), format!("sftp stat {path}")))
    })
    .await
}

/// Copies a remote file into an artifact, scrubbed of known secrets.
pub async fn read(
    call: &CallCtx,
    target: &str,
    path: &str,
    max_bytes: u64,
) -> Result<ArtifactRef, CapError> {
    call.require("artifacts", &format!("sftp read {path}"))
        .map_err(CapError::Denied)?;
    // The artifact store takes no file larger than the policy allows, whatever was asked.
    let limit = call.shared.policy.limits().artifact_bytes;
    let (max_bytes, cap, advice) = if max_bytes > limit {
        (
            limit,
            "limits.artifact_bytes",
            "the policy caps every artifact at that size; an operator may raise it in policy.toml",
        )
    } else {
        (max_bytes, "max_bytes", "raise max_bytes")
    };
    call.ssh_use(target, async {
    let sftp = session(call, target).await?;
    let meta = sftp
        .metadata(path)
        .await
        .map_err(|e| err(target, path, "reading", e))?;
    if meta.file_type().is_dir() {
        return Err(CapError::Invalid(format!(
            "{path} on target '{target}' is a directory; list it with sftp_list"
        )));
    }
    if let Some(size) = meta.size
        && size > max_bytes
    {
        return Err(CapError::Failed(format!(
            "{path} on target '{target}' is {size} bytes, more than {cap} ({max_bytes}); nothing was stored — {advice}"
        )));
    }
    let mut file = sftp
        .open(path)
        .await
        .map_err(|e| err(target, path, "reading", e))?;
    let meta = ArtifactMeta {
        media_type: "application/octet-stream".into(),
        tool: call.tool.clone(),
        trace_id: call.trace_id.clone(),
        description: format!("{path} from ssh target {target}"),
    };
    let mut sink = ScrubbedSink::open(
        &call.shared.artifacts,
        &call.shared.redactor,
        meta,
        max_bytes,
        Measured::Received,
    )
    .await
    .map_err(|e| CapError::Failed(format!("{e:#}")))?;
    let too_large = || {
        format!(
            "{path} on target '{target}' is larger than {cap} ({max_bytes}); nothing was stored — {advice}"
        )
    };
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_millis(call.remaining_ms());
    loop {
        let n = tokio::time::timeout_at(deadline, file.read(&mut buf))
            .await
            .map_err(|_| {
                CapError::Timeout(format!(
                    "reading {path} on target '{target}' ran past the deadline; raise timeout_ms"
                ))
            })?
            .map_err(|e| CapError::Failed(format!("reading {path} on target '{target}': {e}")))?;
        if n == 0 {
            break;
        }
        sink.write(&buf[..n])
            .await
            .map_err(|e| CapError::from_sink(e, too_large))?;
    }
    let total = sink.received();
    let info = sink
        .finish()
        .await
        .map_err(|e| CapError::from_sink(e, too_large))?;
    let _ = file.shutdown().await;
    let _ = sftp.close().await;
    Ok((ArtifactRef::from(info), format!("sftp read {path} ({total} bytes)")))
    }).await
}

/// The parent directories of `path`, outermost first.
fn ancestors(path: &str) -> Vec<String> {
    let trimmed = path.trim_end_matches('/');
    let mut out = Vec::new();
    let mut idx = 0;
    while let Some(pos) = trimmed[idx..].find('/') {
        let end = idx + pos;
        if end > 0 {
            out.push(trimmed[..end].to_string());
        }
        idx = end + 1;
    }
    out
}

/// Writes bytes or an artifact to a remote path.
pub async fn write(
    call: &CallCtx,
    target: &str,
    path: &str,
    content: StdinSource,
    mode: Option<u32>,
    mkdirs: bool,
    overwrite: bool,
) -> Result<FileStat, CapError> {
    let mut source = call.byte_source("content", content).await?;
    call.ssh_use(target, async {
    let sftp = session(call, target).await?;
    if mkdirs {
        for dir in ancestors(path) {
            if !sftp.try_exists(dir.as_str()).await.unwrap_or(false) {
                sftp.create_dir(dir.as_str())
                    .await
                    .map_err(|e| err(target, &dir, "creating directory", e))?;
            }
        }
    }
    let mut flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
    if !overwrite {
        flags |= OpenFlags::EXCLUDE;
        if sftp.try_exists(path).await.unwrap_or(false) {
            return Err(CapError::Failed(format!(
                "{path} already exists on target '{target}'; set overwrite: true to replace it"
            )));
        }
    }
    let mut attrs = FileAttributes::empty();
    attrs.permissions = mode;
    let mut file = sftp
        .open_with_flags_and_attributes(path, flags, attrs)
        .await
        .map_err(|e| match e {
            SftpError::Status(ref s) if !overwrite && s.status_code == StatusCode::Failure => {
                CapError::Failed(format!(
                    "{path} already exists on target '{target}'; set overwrite: true to replace it"
                ))
            }
            SftpError::Status(ref s) if !mkdirs && s.status_code == StatusCode::NoSuchFile => {
                CapError::NotFound(format!(
                    "the directory of {path} does not exist on target '{target}'; set mkdirs: true to create it"
                ))
            }
            e => err(target, path, "writing", e),
        })?;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(call.remaining_ms());
    let copy = tokio::time::timeout_at(deadline, tokio::io::copy(&mut source, &mut file)).await;
    let written = copy
        .map_err(|_| {
            CapError::Timeout(format!(
                "writing {path} on target '{target}' ran past the deadline; raise timeout_ms"
            ))
        })?
        .map_err(|e| CapError::Failed(format!("writing {path} on target '{target}': {e}")))?;
    file.shutdown()
        .await
        .map_err(|e| CapError::Failed(format!("closing {path} on target '{target}': {e}")))?;
    if let Some(m) = mode {
        let mut attrs = FileAttributes::empty();
        attrs.permissions = Some(m);
        sftp.set_metadata(path, attrs)
            .await
            .map_err(|e| err(target, path, "setting the mode of", e))?;
    }
    let a = sftp
        .metadata(path)
        .await
        .map_err(|e| err(target, path, "stat", e))?;
    let _ = sftp.close().await;
    Ok((to_stat(path.to_string(), &a), format!("sftp write {path} ({written} bytes)")))
    }).await
}
