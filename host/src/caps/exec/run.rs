//! One confined program run from start to end: stdin fed (bytes, or an artifact streamed),
//! stdout and stderr captured through [`OutputCapture`] (scrubbed, inline up to the cap, spilled
//! whole to an artifact), a deadline that kills the whole process group, and the exit code or
//! signal. `exec` and `git push` both end here.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::super::CallCtx;
use super::super::infra::host::types::{ByteSource, CapError, ExecResult};
use super::super::output::{OutputCapture, ended};
use crate::confine::spawn::{self, Spec};

/// Time kept back from the call's deadline to stop a program that ran out of time.
const KILL_MARGIN_MS: u64 = 1000;
/// How long a timed-out program gets between TERM and KILL.
const TERM_GRACE: Duration = Duration::from_millis(300);

/// What to run and how to hand back its output.
pub struct RunOpts {
    /// Standard input.
    pub stdin: Option<ByteSource>,
    /// The caller's deadline for the program.
    pub timeout_ms: u32,
    /// Bytes kept inline per stream (clamped to `limits.capture_bytes`).
    pub max_output: u64,
    /// What the program is, for artifact descriptions and messages (e.g. `git`).
    pub what: String,
}

/// Runs `spec` to its end or its deadline; with the result, the outcome for the audit event.
pub async fn run(
    call: &CallCtx,
    spec: &Spec,
    opts: RunOpts,
) -> Result<(ExecResult, String), CapError> {
    let stdin = match opts.stdin {
        Some(s) => Some(call.byte_source("stdin", s).await?),
        None => None,
    };
    let (timeout_ms, cut_note) = call.command_timeout(opts.timeout_ms, KILL_MARGIN_MS);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    let limits = call.shared.policy.limits();
    let max = opts
        .max_output
        .min(limits.capture_bytes)
        .min(usize::MAX as u64) as usize;

    let started = Instant::now();
    let mut proc = spawn::spawn(spec, stdin.is_some()).map_err(super::cap_error)?;
    let feeder = match (stdin, proc.stdin.take()) {
        (Some(mut input), Some(mut pipe)) => Some(tokio::spawn(async move {
            // A program that stops reading early closes the pipe: not an error of the run.
            let _ = tokio::io::copy(&mut input, &mut pipe).await;
            let _ = pipe.shutdown().await;
        })),
        _ => None,
    };
    let mut out = OutputCapture::new(call, format!("full stdout of {}", opts.what), max);
    let mut err = OutputCapture::new(call, format!("full stderr of {}", opts.what), max);
    let (mut obuf, mut ebuf) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    let (mut o_open, mut e_open) = (true, true);
    let mut status = None;
    let mut timed_out = false;
    // Until the program exits and both pipes are drained: a grandchild holding a pipe open is
    // killed with the group when the program exits, so the drain ends.
    while o_open || e_open || status.is_none() {
        tokio::select! {
            n = proc.stdout.read(&mut obuf), if o_open => match n {
                Ok(0) | Err(_) => o_open = false,
                Ok(n) => out.write(call, &obuf[..n]).await?,
            },
            n = proc.stderr.read(&mut ebuf), if e_open => match n {
                Ok(0) | Err(_) => e_open = false,
                Ok(n) => err.write(call, &ebuf[..n]).await?,
            },
            s = proc.child.wait(), if status.is_none() => {
                status = Some(s.map_err(|e| CapError::Failed(format!("waiting for {}: {e}", opts.what)))?);
                // The program is done: whatever it left running goes with it.
                proc.group.reaped();
                proc.group.signal(libc::SIGKILL);
            }
            _ = tokio::time::sleep_until(deadline), if !timed_out => {
                timed_out = true;
                status = spawn::stop(&mut proc.child, &mut proc.group, TERM_GRACE).await;
                if status.is_none() {
                    break;
                }
            }
        }
    }
    if let Some(f) = feeder {
        f.abort();
    }
    let stdout = out.finish(call).await?;
    let stderr = err.finish(call).await?;
    if timed_out {
        return Err(CapError::Timeout(format!(
            "{} was still running after {timeout_ms} ms{} and was killed with its whole process group (TERM, then KILL); raise timeout_ms if it needs longer",
            opts.what, cut_note,
        )));
    }
    let (exit_code, signal) = status.map(spawn::outcome).unwrap_or((None, None));
    Ok(ended(
        exit_code,
        signal,
        stdout,
        stderr,
        started.elapsed().as_millis() as u64,
        limits.artifact_bytes,
    ))
}
