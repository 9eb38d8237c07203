//! The per-call state every capability sees, and the one way a capability use is recorded.
//!
//! A denial is recorded where the grant is checked ([`CallCtx::decide`]); an allowed use opens a
//! [`CapUse`] with [`CallCtx::event`] and closes it with its outcome. Whatever path the use
//! takes — success, failure, an early `?`, or the call's future dropped mid-use — it ends in
//! exactly one event with its duration, so the audit record never misses a use that happened.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use tokio::io::AsyncRead;

use super::Shared;
use super::infra::host::types::{ByteSource, CapError};
use crate::policy::Decision;
use crate::tool::ProgressFn;

/// Whether a capability use went ahead, as the audit record spells it (`allow` / `deny`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The grant held; the use happened.
    Allow,
    /// The grant did not hold; nothing was reached.
    Deny,
}

/// One use of a capability, as it goes into the audit record.
#[derive(Debug, Clone, Serialize)]
pub struct CapEvent {
    /// Interface name, e.g. `http`.
    pub cap: String,
    /// What it reached: host:port, profile, artifact URI…
    pub target: String,
    /// Whether it went ahead.
    pub decision: Verdict,
    /// Why it was denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Time spent.
    pub duration_ms: u64,
    /// Short outcome, e.g. `200` or an error message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Events one call keeps; beyond, the oldest after the first [`HEAD_EVENTS`] are dropped.
pub const MAX_EVENTS: usize = 2000;
/// The first events of a call, always kept.
pub const HEAD_EVENTS: usize = 1000;
/// The `cap` of the event that counts the events not kept.
const NOT_KEPT: &str = "audit";

/// Appends `event` to a call's events, keeping them bounded: a plugin looping on a (denied)
/// host function must not grow the server's memory or the audit record without end. Past
/// [`MAX_EVENTS`], the events after the first [`HEAD_EVENTS`] are dropped, except the stages a
/// plugin marked (`log.stage`, themselves capped), and one event in their place counts them; the
/// latest events are always kept, so the record still shows how the call ended.
pub fn push_event(events: &mut Vec<CapEvent>, event: CapEvent) {
    if events.len() >= MAX_EVENTS {
        let counted = events[HEAD_EVENTS].cap == NOT_KEPT;
        let start = HEAD_EVENTS + usize::from(counted);
        let before: u64 = match counted {
            true => events[HEAD_EVENTS]
                .detail
                .as_deref()
                .and_then(|d| d.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            false => 0,
        };
        let (stages, dropped): (Vec<CapEvent>, Vec<CapEvent>) = events
            .drain(start..)
            .partition(|e| e.cap == "log" && e.target.starts_with("stage "));
        let marker = CapEvent {
            cap: NOT_KEPT.into(),
            target: "events".into(),
            decision: Verdict::Allow,
            reason: None,
            duration_ms: 0,
            detail: Some(format!(
                "{} capability events of this call were not kept: more than {MAX_EVENTS}; the \
                 first {HEAD_EVENTS}, the marked stages and the latest follow",
                before + dropped.len() as u64
            )),
        };
        match counted {
            true => events[HEAD_EVENTS] = marker,
            false => events.push(marker),
        }
        events.extend(stages);
    }
    events.push(event);
}

/// The per-call state a plugin's capabilities see.
pub struct CallCtx {
    /// The calling plugin's name (what the policy is keyed by).
    pub plugin: String,
    /// The call's trace id.
    pub trace_id: String,
    /// The call's tool name.
    pub tool: String,
    /// When the call must be over.
    pub deadline: Instant,
    /// Host-wide state.
    pub shared: Arc<Shared>,
    /// Capability events, for the audit record.
    pub events: Arc<Mutex<Vec<CapEvent>>>,
    /// Where progress goes, if the client asked.
    pub progress: Option<ProgressFn>,
    /// What the guard knows of the call (`apply`, how to ask the user) and the approvals and
    /// locks it holds until the call ends.
    pub guard: super::guard::CallGuard,
}

impl CallCtx {
    /// The context of `plugin` running `tool` until `deadline`: no events yet, no progress sink.
    pub fn new(
        plugin: &str,
        tool: &str,
        trace_id: String,
        deadline: Instant,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            plugin: plugin.into(),
            trace_id,
            tool: tool.into(),
            deadline,
            shared,
            events: Default::default(),
            progress: None,
            guard: Default::default(),
        }
    }

    /// Records capability events into `events` (shared with whoever writes the audit record).
    pub fn with_events(mut self, events: Arc<Mutex<Vec<CapEvent>>>) -> Self {
        self.events = events;
        self
    }

    /// Sends progress to `progress`, when the client asked for it.
    pub fn with_progress(mut self, progress: Option<ProgressFn>) -> Self {
        self.progress = progress;
        self
    }

    /// Lets the guard see what the call's arguments and front say: `apply` and how to ask the
    /// user.
    pub fn with_guard(mut self, guard: super::guard::CallGuard) -> Self {
        self.guard = guard;
        self
    }

    /// Milliseconds left before the call's deadline (at least 1).
    pub fn remaining_ms(&self) -> u64 {
        self.deadline
            .saturating_duration_since(Instant::now())
            .as_millis()
            .max(1) as u64
    }

    /// The bytes a `byte-source` named by field `field` holds, as a stream (an artifact needs
    /// the artifacts grant). What `exec` and ssh stdin, ssh uploads and fs writes read from.
    pub async fn byte_source(
        &self,
        field: &str,
        src: ByteSource,
    ) -> Result<Box<dyn AsyncRead + Send + Unpin>, CapError> {
        match src {
            ByteSource::Bytes(b) => Ok(Box::new(std::io::Cursor::new(b))),
            ByteSource::Artifact(uri) => {
                self.require("artifacts", &uri).map_err(CapError::Denied)?;
                let (file, _) =
                    self.shared.artifacts.reader(&uri).await.map_err(|e| {
                        CapError::NotFound(format!("{field}: artifact {uri}: {e:#}"))
                    })?;
                Ok(Box::new(file))
            }
        }
    }

    /// A command's deadline inside the call's: the asked `timeout_ms` (at least 1), at most
    /// what is left of the call less `margin_ms` kept to stop the command; with the words a
    /// timeout message adds when the call's deadline was the shorter one.
    pub fn command_timeout(&self, asked_ms: u32, margin_ms: u64) -> (u64, String) {
        let budget = self.remaining_ms().saturating_sub(margin_ms).max(1);
        let timeout_ms = u64::from(asked_ms.max(1)).min(budget);
        let note = if u64::from(asked_ms) > budget {
            format!(" (the call's timeout less {margin_ms} ms kept to stop it)")
        } else {
            String::new()
        };
        (timeout_ms, note)
    }

    /// Records a capability event (bounded: see [`push_event`]).
    pub fn record(&self, event: CapEvent) {
        push_event(
            &mut self.events.lock().unwrap_or_else(|p| p.into_inner()),
            event,
        );
    }

    /// Checks that the plugin holds a grant for `cap` at all; records a denial.
    pub fn require(&self, cap: &str, target: &str) -> Result<(), String> {
        self.decide(cap, target, self.shared.policy.check_cap(&self.plugin, cap))
    }

    /// Records a denial (and returns its reason) or lets the call go on.
    pub fn decide(&self, cap: &str, target: &str, decision: Decision) -> Result<(), String> {
        match decision {
            Decision::Allow => Ok(()),
            Decision::Deny(reason) => {
                self.record(CapEvent {
                    cap: cap.into(),
                    target: target.into(),
                    decision: Verdict::Deny,
                    reason: Some(reason.clone()),
                    duration_ms: 0,
                    detail: None,
                });
                Err(reason)
            }
        }
    }

    /// Opens the record of one allowed use of `cap` on `target`; the clock starts now.
    pub fn event(&self, cap: &str, target: &str) -> CapUse<'_> {
        CapUse {
            call: self,
            cap: cap.into(),
            target: target.into(),
            started: Instant::now(),
            done: false,
        }
    }
}

/// An allowed capability use under way. [`CapUse::ok`] or [`CapUse::fail`] records it; dropped
/// without either (an early return, or the call abandoned), it records itself as cut short.
pub struct CapUse<'a> {
    call: &'a CallCtx,
    cap: String,
    target: String,
    started: Instant,
    done: bool,
}

impl CapUse<'_> {
    /// The use succeeded; `detail` says how (a status, an exit code, a row count…).
    pub fn ok(mut self, detail: impl AsRef<str>) {
        self.close(detail.as_ref());
    }

    /// The use went ahead and failed; `detail` says why.
    pub fn fail(mut self, detail: impl AsRef<str>) {
        self.close(detail.as_ref());
    }

    /// The use turned out to be refused after all (e.g. a resolved address outside the grant);
    /// records the denial instead, and returns its reason.
    pub fn deny(mut self, reason: String) -> String {
        self.done = true;
        let _ = self
            .call
            .decide(&self.cap, &self.target, Decision::Deny(reason.clone()));
        reason
    }

    fn close(&mut self, detail: &str) {
        self.done = true;
        // Details quote what the far side said (error texts, paths): scrubbed like all output.
        let detail = self.call.shared.redactor.scrub_str(detail).into_owned();
        self.call.record(CapEvent {
            cap: std::mem::take(&mut self.cap),
            target: std::mem::take(&mut self.target),
            decision: Verdict::Allow,
            reason: None,
            duration_ms: self.started.elapsed().as_millis() as u64,
            detail: Some(detail),
        });
    }
}

impl Drop for CapUse<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.close("ended before an outcome (the call failed or was cancelled mid-use)");
        }
    }
}
