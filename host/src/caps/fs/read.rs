//! Reading a file: inline up to `max-inline` (clamped to `limits.capture_bytes`) and scrubbed of
//! known secrets; a longer file is streamed by the host into an artifact (scrubbed, held to
//! `limits.artifact_bytes`, stored only whole — a larger file is refused with nothing stored).

use cap_std::fs::{OpenOptions, OpenOptionsExt};
use tokio::io::AsyncReadExt;

use super::access::{self, Access, Place};
use super::errors::io_error;
use super::meta::file_stat;
use crate::artifacts::{ArtifactMeta, Measured, ScrubbedSink};
use crate::caps::CallCtx;
use crate::caps::infra::host::fs::FileRead;
use crate::caps::infra::host::types::{ArtifactRef, CapError, FileKind};

/// Bytes read from the file per step once it streams to an artifact.
const CHUNK: usize = 64 * 1024;

/// Reads `path` under `root`.
pub async fn read(
    call: &CallCtx,
    root: &str,
    path: &str,
    max_inline: u64,
) -> Result<FileRead, CapError> {
    let limits = call.shared.policy.limits();
    let inline_max = max_inline.min(limits.capture_bytes);
    let artifact_max = limits.artifact_bytes;
    let asked = path.to_string();
    access::run(call, "read", root, path, Access::Read, |p: Place| async move {
        let shown = p.shown.clone();
        let (file, stat) = access::blocking(move || {
            // Non-blocking, so a FIFO planted under the root cannot hang the open; a regular
            // file ignores the flag.
            let file = p
                .dir
                .open_with(
                    &p.rel,
                    OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK),
                )
                .map_err(|e| io_error("reading", &p.shown, e))?;
            let m = file
                .metadata()
                .map_err(|e| io_error("reading", &p.shown, e))?;
            Ok((file.into_std(), file_stat(asked, &m)))
        })
        .await?;
        match stat.kind {
            FileKind::File => {}
            FileKind::Directory => {
                return Err(CapError::Invalid(format!(
                    "path: {shown} is a directory; list it with list-dir"
                )));
            }
            _ => {
                return Err(CapError::Invalid(format!(
                    "path: {shown} is not a regular file (a FIFO, socket or device); fs reads regular files only"
                )));
            }
        }
        let too_large = |size: &str| {
            format!(
                "{shown} is {size}, more than limits.artifact_bytes ({artifact_max}); nothing was stored — read a smaller file, or the operator raises [limits] artifact_bytes in the policy"
            )
        };
        if stat.size > artifact_max {
            return Err(CapError::Failed(too_large(&format!("{} bytes", stat.size))));
        }
        let mut file = tokio::fs::File::from_std(file);
        let mut head = Vec::new();
        if stat.size <= inline_max {
            // One byte past the inline cap: the file may have grown since its stat.
            (&mut file)
                .take(inline_max.saturating_add(1))
                .read_to_end(&mut head)
                .await
                .map_err(|e| io_error("reading", &shown, e))?;
            if head.len() as u64 <= inline_max {
                let n = head.len();
                let data = call.shared.redactor.scrub_bytes(&head).into_owned();
                let read = FileRead {
                    stat,
                    data: Some(data),
                    artifact: None,
                };
                return Ok((read, format!("{n} bytes inline")));
            }
        }
        call.require("artifacts", &shown).map_err(|reason| {
            CapError::Denied(format!(
                "{reason}; {shown} is longer than max_inline ({inline_max} bytes) and goes to an artifact — grant artifacts, or read a smaller file"
            ))
        })?;
        let meta = ArtifactMeta {
            media_type: String::new(),
            tool: call.tool.clone(),
            trace_id: call.trace_id.clone(),
            description: format!("fs read {shown}"),
        };
        let mut sink = ScrubbedSink::open(
            &call.shared.artifacts,
            &call.shared.redactor,
            meta,
            artifact_max,
            Measured::Received,
        )
        .await
        .map_err(|e| CapError::Failed(format!("{e:#}")))?;
        // The file grew past the cap while it was read.
        let grown = || too_large("larger");
        sink.write(&head)
            .await
            .map_err(|e| CapError::from_sink(e, grown))?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| io_error("reading", &shown, e))?;
            if n == 0 {
                break;
            }
            sink.write(&buf[..n])
                .await
                .map_err(|e| CapError::from_sink(e, grown))?;
        }
        let total = sink.received();
        let info = sink
            .finish()
            .await
            .map_err(|e| CapError::from_sink(e, grown))?;
        let detail = format!("{total} bytes to {}", info.uri);
        let read = FileRead {
            stat,
            data: None,
            artifact: Some(ArtifactRef::from(info)),
        };
        Ok((read, detail))
    })
    .await
}
