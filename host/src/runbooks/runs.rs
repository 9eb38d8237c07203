//! Runbook runs as jobs: each run is registered here while it runs and for a while after, so
//! `jobs` lists it with its current step, `wait`s for it and `cancel`s it from another call.
//!
//! The registry is in memory: a run is a task of this server, and a restarted server has none
//! running (each step it made is in the audit log under the run's trace id).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::watch;

/// Ended runs kept for `jobs`; the oldest go first.
const KEEP_ENDED: usize = 100;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Still running.
    Running,
    /// Every step ran; none failed the run.
    Succeeded,
    /// A step failed and stopped the run, or the run was refused at its start.
    Failed,
    /// Stopped by `jobs cancel` or by the client cancelling the call.
    Cancelled,
    /// Stopped by the call's timeout.
    TimedOut,
}

/// What changes while a run goes on.
#[derive(Debug, Clone, Serialize)]
struct Progress {
    state: RunState,
    /// The step running now (or the last one that ran).
    step: Option<String>,
    /// Steps finished so far (ok, failed, skipped).
    steps_done: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<String>,
}

/// One run.
pub struct Run {
    /// `r-` and 16 hex digits.
    pub id: String,
    /// The runbook's name.
    pub runbook: String,
    /// The run's trace id: every step's audit record carries it.
    pub trace_id: String,
    started_at: String,
    steps: usize,
    progress: Mutex<Progress>,
    /// Set to true by `cancel`; the run watches it.
    cancel: watch::Sender<bool>,
    /// Set to true when the run has ended; `wait` watches it.
    ended: watch::Sender<bool>,
}

impl Run {
    /// The step `id` starts.
    pub fn step_started(&self, id: &str) {
        self.lock().step = Some(id.to_string());
    }

    /// A step finished (whatever its outcome).
    pub fn step_done(&self) {
        self.lock().steps_done += 1;
    }

    /// The run ended in `state`; `failed_step` stopped it.
    pub fn end(&self, state: RunState, failed_step: Option<String>) {
        {
            let mut p = self.lock();
            if p.state != RunState::Running {
                return;
            }
            p.state = state;
            p.failed_step = failed_step;
            p.ended_at = Some(crate::jobs::now());
        }
        self.ended.send_replace(true);
    }

    /// Where the run stands now.
    pub fn state(&self) -> RunState {
        self.lock().state
    }

    /// Asks the run to stop; false when it had already ended.
    pub fn cancel(&self) -> bool {
        if self.state() != RunState::Running {
            return false;
        }
        self.cancel.send_replace(true);
        true
    }

    /// Resolves when someone asks the run to stop.
    pub async fn cancelled(&self) {
        let mut rx = self.cancel.subscribe();
        // The sender lives as long as `self`, so this only returns once the flag is set.
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Resolves when the run has ended.
    pub async fn ended(&self) {
        let mut rx = self.ended.subscribe();
        let _ = rx.wait_for(|e| *e).await;
    }

    /// The run as `jobs` shows it.
    pub fn view(&self) -> Value {
        let p = self.lock().clone();
        let mut v = json!({
            "id": self.id,
            "kind": "runbook",
            "runbook": self.runbook,
            "trace_id": self.trace_id,
            "started_at": self.started_at,
            "steps": self.steps,
        });
        if let (Value::Object(o), Value::Object(more)) = (&mut v, json!(p)) {
            o.extend(more);
        }
        v
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        // A panic while holding this lock leaves plain data behind; keep serving it.
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Ends a run whose future is dropped before it ended: timed out when its deadline has passed,
/// else cancelled (the client cancelled the call).
pub struct EndOnDrop(pub Arc<Run>, pub std::time::Instant);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        let state = match std::time::Instant::now() >= self.1 {
            true => RunState::TimedOut,
            false => RunState::Cancelled,
        };
        let step = self.0.lock().step.clone();
        self.0.end(state, step);
    }
}

/// The runs of this server, newest last.
#[derive(Default)]
pub struct Runs {
    runs: Mutex<VecDeque<Arc<Run>>>,
}

impl Runs {
    /// Registers a run of `runbook` with `steps` steps under `trace_id`.
    pub fn start(&self, runbook: &str, trace_id: &str, steps: usize) -> Arc<Run> {
        let run = Arc::new(Run {
            id: format!("r-{:016x}", rand::random::<u64>()),
            runbook: runbook.to_string(),
            trace_id: trace_id.to_string(),
            started_at: crate::jobs::now(),
            steps,
            progress: Mutex::new(Progress {
                state: RunState::Running,
                step: None,
                steps_done: 0,
                failed_step: None,
                ended_at: None,
            }),
            cancel: watch::channel(false).0,
            ended: watch::channel(false).0,
        });
        let mut runs = self.lock();
        runs.push_back(run.clone());
        // Running runs are never dropped: only ended ones beyond the bound.
        while runs
            .iter()
            .filter(|r| r.state() != RunState::Running)
            .count()
            > KEEP_ENDED
        {
            let Some(i) = runs.iter().position(|r| r.state() != RunState::Running) else {
                break;
            };
            runs.remove(i);
        }
        run
    }

    /// The run with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Run>> {
        self.lock().iter().find(|r| r.id == id).cloned()
    }

    /// Runs, newest first.
    pub fn list(&self) -> Vec<Arc<Run>> {
        self.lock().iter().rev().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Run>>> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether `id` names a runbook run rather than a background command.
pub fn is_run_id(id: &str) -> bool {
    id.starts_with("r-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_run_is_listed_cancelled_and_waited_for() {
        let runs = Runs::default();
        let run = runs.start("x", "t-1", 2);
        run.step_started("a");
        assert_eq!(runs.get(&run.id).unwrap().view()["step"], "a");
        assert!(run.cancel());
        // The run sees the request and ends.
        tokio::time::timeout(std::time::Duration::from_secs(1), run.cancelled())
            .await
            .expect("the cancel request is seen");
        let later = std::time::Instant::now() + std::time::Duration::from_secs(60);
        drop(EndOnDrop(run.clone(), later));
        tokio::time::timeout(std::time::Duration::from_secs(1), run.ended())
            .await
            .expect("the end is seen");
        assert_eq!(run.state(), RunState::Cancelled);
        assert!(!run.cancel(), "an ended run cannot be cancelled again");
        // The first end wins: a late success does not overwrite the cancel.
        run.end(RunState::Succeeded, None);
        assert_eq!(run.view()["state"], "cancelled");

        // A run dropped after its deadline timed out, at the step it was in.
        let late = runs.start("y", "t-2", 1);
        late.step_started("slow");
        drop(EndOnDrop(late.clone(), std::time::Instant::now()));
        assert_eq!(late.view()["state"], "timed_out");
        assert_eq!(late.view()["failed_step"], "slow");
    }

    #[test]
    fn ended_runs_are_bounded_and_running_ones_kept() {
        let runs = Runs::default();
        let running = runs.start("long", "t", 1);
        for _ in 0..KEEP_ENDED + 20 {
            runs.start("short", "t", 1).end(RunState::Succeeded, None);
        }
        runs.start("short", "t", 1).end(RunState::Succeeded, None);
        assert!(
            runs.get(&running.id).is_some(),
            "a running run stays listed"
        );
        // Pruned as each run starts: the bound, the running one, and the last to end.
        assert_eq!(runs.list().len(), KEEP_ENDED + 2);
    }
}
