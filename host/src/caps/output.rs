//! A command's output stream as a capability hands it back: scrubbed of known secrets, kept
//! inline up to a cap, and — once longer, with an `artifacts` grant — spilled whole to an
//! artifact (itself held to `[limits] artifact_bytes`, past which it is cut and said so).
//!
//! ssh `exec` uses it for stdout and stderr; any capability that runs a command does the same.

use super::CallCtx;
use super::infra::host::types::{ArtifactRef, CapError, ExecResult};
use crate::artifacts::{ArtifactMeta, ArtifactWriter};
use crate::redact::StreamScrubber;

/// One output stream being captured.
pub struct OutputCapture {
    /// What the stream is, e.g. `full stdout of an ssh command`: the artifact's description
    /// and the target of its `artifacts` grant check.
    what: String,
    inline: Vec<u8>,
    max: usize,
    writer: Option<ArtifactWriter>,
    /// Most bytes the artifact may hold (`limits.artifact_bytes`); the rest is dropped.
    artifact_max: u64,
    /// Bytes written to the artifact so far.
    spilled: u64,
    /// Output was dropped at `artifact_max`.
    cut: bool,
    scrubber: StreamScrubber,
    /// Output past `max` was dropped: the plugin has no artifacts grant to spill it to.
    dropped: bool,
}

/// A captured stream.
pub struct Captured {
    /// The scrubbed output, at most the inline cap.
    pub inline: Vec<u8>,
    /// The inline part is not the whole output.
    pub truncated: bool,
    /// The whole output, when it was longer than the inline cap and could be spilled.
    pub artifact: Option<ArtifactRef>,
    /// The artifact was cut at `limits.artifact_bytes`.
    pub cut: bool,
}

impl OutputCapture {
    /// An empty stream described as `what`, kept inline up to `max` bytes.
    pub fn new(call: &CallCtx, what: String, max: usize) -> Self {
        Self {
            what,
            inline: Vec::new(),
            max,
            writer: None,
            artifact_max: call.shared.policy.limits().artifact_bytes,
            spilled: 0,
            cut: false,
            scrubber: StreamScrubber::new(&call.shared.redactor),
            dropped: false,
        }
    }

    /// Takes the next bytes of the stream.
    pub async fn write(&mut self, call: &CallCtx, data: &[u8]) -> Result<(), CapError> {
        let clean = self.scrubber.push(data);
        self.keep(call, &clean).await
    }

    async fn keep(&mut self, call: &CallCtx, clean: &[u8]) -> Result<(), CapError> {
        let room = self.max.saturating_sub(self.inline.len()).min(clean.len());
        if self.writer.is_some() {
            self.inline.extend_from_slice(&clean[..room]);
            return self.spill(clean).await;
        }
        if self.inline.len() + clean.len() <= self.max {
            self.inline.extend_from_slice(clean);
            return Ok(());
        }
        if self.dropped {
            return Ok(());
        }
        if call.require("artifacts", &self.what).is_err() {
            // Without the grant the output is still capped and marked truncated; the denial is
            // recorded in the call's audit events.
            self.inline.extend_from_slice(&clean[..room]);
            self.dropped = true;
            return Ok(());
        }
        let meta = ArtifactMeta {
            media_type: "text/plain".into(),
            tool: call.tool.clone(),
            trace_id: call.trace_id.clone(),
            description: self.what.clone(),
        };
        self.writer = Some(call.shared.artifacts.writer(meta).await.map_err(failed)?);
        let inline = std::mem::take(&mut self.inline);
        self.spill(&inline).await?;
        self.spill(clean).await?;
        self.inline = inline;
        self.inline.extend_from_slice(&clean[..room]);
        Ok(())
    }

    /// Appends to the artifact what fits under `artifact_max`.
    async fn spill(&mut self, clean: &[u8]) -> Result<(), CapError> {
        let fits = self
            .artifact_max
            .saturating_sub(self.spilled)
            .min(clean.len() as u64) as usize;
        if let Some(w) = self.writer.as_mut()
            && fits > 0
        {
            w.write(&clean[..fits]).await.map_err(failed)?;
            self.spilled += fits as u64;
        }
        self.cut |= fits < clean.len();
        Ok(())
    }

    /// Ends the stream: what the scrubber held back is kept, and the artifact published.
    pub async fn finish(mut self, call: &CallCtx) -> Result<Captured, CapError> {
        let rest = self.scrubber.clone().finish();
        self.keep(call, &rest).await?;
        Ok(match self.writer.take() {
            None => Captured {
                inline: self.inline,
                truncated: self.dropped,
                artifact: None,
                cut: false,
            },
            Some(w) => Captured {
                inline: self.inline,
                truncated: true,
                artifact: Some(w.finish().await.map_err(failed)?.into()),
                cut: self.cut,
            },
        })
    }
}

fn failed(e: anyhow::Error) -> CapError {
    CapError::Failed(format!("{e:#}"))
}

/// How a command ended, from its exit status and both captured streams: the result the plugin
/// gets, and the audit detail (`exit 0`, `signal KILL`, and any artifact cut at its limit).
/// ssh `exec` and `exec` end here alike.
pub fn ended(
    exit_code: Option<i32>,
    signal: Option<String>,
    stdout: Captured,
    stderr: Captured,
    duration_ms: u64,
    artifact_bytes: u64,
) -> (ExecResult, String) {
    let end = match (exit_code, &signal) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => "no exit status".into(),
    };
    let cut: Vec<&str> = [("stdout", stdout.cut), ("stderr", stderr.cut)]
        .into_iter()
        .filter_map(|(name, cut)| cut.then_some(name))
        .collect();
    let detail = if cut.is_empty() {
        end
    } else {
        format!(
            "{end}; {} artifact cut at limits.artifact_bytes ({artifact_bytes} bytes)",
            cut.join(" and ")
        )
    };
    let result = ExecResult {
        exit_code,
        signal,
        stdout: stdout.inline,
        stderr: stderr.inline,
        stdout_truncated: stdout.truncated,
        stderr_truncated: stderr.truncated,
        stdout_artifact: stdout.artifact,
        stderr_artifact: stderr.artifact,
        duration_ms,
    };
    (result, detail)
}
