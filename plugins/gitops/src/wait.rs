//! Waiting for a remote state (a rollout, an Argo CD sync, a Flux reconcile): poll, report
//! progress to the client through the `log` capability, and stop at a deadline that always
//! leaves the call time to answer.

use std::time::{Duration, Instant};

use infra_sdk::prelude::*;

use crate::caps::log;

/// Seconds waited by default.
pub const DEFAULT_SECS: u64 = 120;
/// Kept back from the call's own deadline so the answer (with the reason) still gets out.
const MARGIN_MS: u64 = 3000;
/// Time between two polls.
const INTERVAL: Duration = Duration::from_millis(500);

/// How long to wait: `timeout_secs` (default 120), never past the call's deadline less a margin.
/// The note says when the call's `timeout_ms` shortened it.
pub fn budget(
    timeout_secs: Option<u64>,
    ctx: &Ctx,
) -> Result<(Duration, Option<String>), ToolError> {
    let asked = timeout_secs.unwrap_or(DEFAULT_SECS);
    if asked == 0 || asked > 3600 {
        return Err(ToolError::invalid(
            "timeout_secs",
            format!("{asked} is out of range: give 1 to 3600 seconds (default {DEFAULT_SECS})"),
        ));
    }
    let call = u64::from(ctx.timeout_ms)
        .saturating_sub(MARGIN_MS)
        .max(1000);
    let ms = (asked * 1000).min(call);
    let note = (ms < asked * 1000).then(|| {
        format!(
            "waited at most {} s, not {asked} s: the call's timeout_ms is {}; pass a larger \
             timeout_ms (e.g. {}) to wait longer",
            ms / 1000,
            ctx.timeout_ms,
            (asked * 1000 + MARGIN_MS)
        )
    });
    Ok((Duration::from_millis(ms), note))
}

/// What one poll found.
pub enum Step<T> {
    /// Done (successfully or for good): stop with this.
    Done(T),
    /// Not yet: the message says what is awaited.
    Waiting(String),
}

/// Polls `check` until it is done or `budget` has passed; `Err(last message)` on timeout.
pub fn until<T>(
    budget: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<Step<T>, ToolError>,
) -> Result<Result<T, String>, ToolError> {
    let start = Instant::now();
    let total = budget.as_secs_f64();
    loop {
        let message = match check()? {
            Step::Done(t) => return Ok(Ok(t)),
            Step::Waiting(m) => m,
        };
        let spent = start.elapsed();
        if spent + INTERVAL > budget {
            return Ok(Err(message));
        }
        log::progress(
            spent.as_secs_f64().min(total),
            Some(total),
            Some(&format!("{what}: {message}")),
        );
        std::thread::sleep(INTERVAL);
    }
}
