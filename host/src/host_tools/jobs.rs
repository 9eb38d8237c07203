//! `jobs`: follow and stop the background commands started with `ssh` `exec_detached`, and the
//! runbook runs of this server (ids `r-…`, from [`crate::runbooks::runs`]).
//!
//! Each action reaches the job's target under the grants of the plugin that started it, so
//! narrowing the policy also narrows what `jobs` can do; the capability events land in this
//! call's audit record like a plugin's would.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{HostCall, HostView};
use crate::caps::CallCtx;
use crate::caps::infra::host::types::CapError;
use crate::caps::ssh::{self, Probe, Stopped};
use crate::error_kind::ErrorKind;
use crate::failure::Failure;
use crate::jobs::{Job, JobState};
use crate::runbooks::runs;

pub const DESCRIPTION: &str = "Background commands started with `ssh` `exec_detached` (ids \
`j-…`) and runbook runs of this server (ids `r-…`, shown with their current step): `list` them \
(newest first), `status` of one (running, exited with its code, succeeded, failed, cancelled, \
timed_out, lost), `wait` until it ends or the call's timeout (progress notifications meanwhile), \
`logs` (a command's last bytes of stdout/stderr; `full: true` also stores the whole stream as an \
artifact), `cancel` (a command: SIGTERM to its whole process group, SIGKILL after `grace_ms`; a \
run: stops at its current step).";

/// Largest `tail_bytes`.
const MAX_TAIL: u64 = 256 * 1024;
/// Time kept back from the call's deadline so `wait` can answer before it.
const WAIT_MARGIN: Duration = Duration::from_millis(2000);

/// Which output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// Both.
    Both,
}

/// Arguments of `jobs`: the action, with the fields only that action takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
#[schemars(extend("additionalProperties" = false))]
pub enum Args {
    /// Jobs, newest first, with their current state.
    List {
        /// Only jobs on this target.
        target: Option<String>,
        /// How many (default 20).
        limit: Option<usize>,
    },
    /// One job's state and output sizes.
    Status {
        /// The id: `j-…` from `exec_detached`, or `r-…` of a runbook run.
        id: String,
    },
    /// Waits for a job to end, at most until the call's timeout.
    Wait {
        /// The id: `j-…` from `exec_detached`, or `r-…` of a runbook run.
        id: String,
    },
    /// The last bytes of a job's output.
    Logs {
        /// The id: `j-…` from `exec_detached`, or `r-…` of a runbook run.
        id: String,
        /// `stdout`, `stderr` or `both` (default).
        stream: Option<Stream>,
        /// Bytes from the end of each stream (default 16384, at most 262144).
        tail_bytes: Option<u64>,
        /// Also store each whole stream as an artifact.
        full: Option<bool>,
    },
    /// Stops a job's whole process group.
    Cancel {
        /// The id: `j-…` from `exec_detached`, or `r-…` of a runbook run.
        id: String,
        /// Milliseconds between SIGTERM and SIGKILL (default 2000, at most 10000).
        grace_ms: Option<u64>,
    },
}

/// What `logs` reads of a job's output.
struct Tail {
    stream: Option<Stream>,
    tail_bytes: Option<u64>,
    full: Option<bool>,
}

pub async fn run(host: &HostView<'_>, args: Args, call: &HostCall) -> Result<Value, Failure> {
    let id = match &args {
        Args::List { target, limit } => return list(host, target.as_deref(), *limit, call).await,
        Args::Status { id }
        | Args::Wait { id }
        | Args::Logs { id, .. }
        | Args::Cancel { id, .. } => id,
    };
    if runs::is_run_id(id) {
        let id = id.clone();
        return runbook_run(host, &id, args, call).await;
    }
    let jobs = &host.shared.jobs;
    let mut job = jobs.get(id)?.ok_or_else(|| {
        Failure::new(
            ErrorKind::NotFound,
            format!("no job '{id}'; `jobs` with action list shows the known ones"),
        )
    })?;
    let ctx = call.ctx(host.shared, &job.plugin);
    match args {
        Args::List { .. } => unreachable!("handled above"),
        Args::Status { .. } => {
            let probe = refresh(&ctx, &mut job).await?;
            Ok(view(&job, Some(&probe)))
        }
        Args::Wait { .. } => wait(&ctx, &mut job, call).await,
        Args::Logs {
            stream,
            tail_bytes,
            full,
            ..
        } => {
            let tail = Tail {
                stream,
                tail_bytes,
                full,
            };
            logs(&ctx, &job, &tail).await
        }
        Args::Cancel { grace_ms, .. } => {
            if job.state.is_final() {
                let mut out = view(&job, None);
                out["already_finished"] = json!(true);
                return Ok(out);
            }
            let grace = grace_ms.unwrap_or(2000).min(10_000);
            let stopped = ssh::cancel(&ctx, &job, grace).await.map_err(cap)?;
            let probe = ssh::probe(&ctx, &job).await.map_err(cap)?;
            // A job that finished on its own just before the signal keeps its exit code.
            let state = if stopped == Stopped::NotRunning || probe.state == JobState::Exited {
                probe.state
            } else {
                JobState::Cancelled
            };
            settle(&ctx, &mut job, state, probe.exit_code)?;
            let mut out = view(&job, Some(&probe));
            out["signal"] = json!(match stopped {
                Stopped::NotRunning => "none (it had already ended)",
                Stopped::Terminated => "SIGTERM",
                Stopped::Killed => "SIGTERM, then SIGKILL",
            });
            Ok(out)
        }
    }
}

/// `status`, `wait`, `logs` and `cancel` of a runbook run.
async fn runbook_run(
    host: &HostView<'_>,
    id: &str,
    args: Args,
    call: &HostCall,
) -> Result<Value, Failure> {
    let run = host.shared.runs.get(id).ok_or_else(|| {
        Failure::new(
            ErrorKind::NotFound,
            format!(
                "no runbook run '{id}' on this server (runs are kept while the server runs; \
                 `jobs` with action list shows the known ones)"
            ),
        )
    })?;
    match args {
        Args::List { .. } => unreachable!("handled by the caller"),
        Args::Status { .. } => Ok(run.view()),
        Args::Logs { .. } => Err(Failure::new(
            ErrorKind::Invalid,
            format!(
                "{id} is a runbook run: it has no output streams. `status` shows its steps; the \
                 run's answer has each step's output, and `audit` with trace_id {} each call",
                run.trace_id
            ),
        )),
        Args::Wait { .. } => {
            let started = tokio::time::Instant::now();
            let until = started + call.timeout.saturating_sub(WAIT_MARGIN);
            let mut done = false;
            loop {
                let left = until.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                tokio::select! {
                    () = run.ended() => {
                        done = true;
                        break;
                    }
                    () = tokio::time::sleep(left.min(Duration::from_secs(2))) => {}
                }
                if let Some(progress) = &call.progress {
                    let v = run.view();
                    progress(
                        started.elapsed().as_secs_f64(),
                        None,
                        Some(format!(
                            "run {id} of {}: at step {}, {} of {} steps done",
                            run.runbook,
                            v["step"].as_str().unwrap_or("-"),
                            v["steps_done"],
                            v["steps"]
                        )),
                    );
                }
            }
            let mut out = run.view();
            out["done"] = json!(done);
            out["waited_ms"] = json!(started.elapsed().as_millis() as u64);
            if !done {
                out["hint"] =
                    json!("still running: call wait again, or raise timeout_ms to wait longer");
            }
            Ok(out)
        }
        Args::Cancel { .. } => {
            let asked = run.cancel();
            // The run stops at its next await; the answer shows where it ended.
            let _ = tokio::time::timeout(Duration::from_secs(5), run.ended()).await;
            let mut out = run.view();
            if !asked {
                out["already_finished"] = json!(true);
            }
            Ok(out)
        }
    }
}

async fn list(
    host: &HostView<'_>,
    target: Option<&str>,
    limit: Option<usize>,
    call: &HostCall,
) -> Result<Value, Failure> {
    let limit = limit.unwrap_or(20).max(1);
    let mut items = Vec::new();
    // One unreachable target costs one probe's timeout, not one per job on it.
    let mut unreachable: std::collections::HashMap<(String, String), String> = Default::default();
    for mut job in host
        .shared
        .jobs
        .list()?
        .into_iter()
        .filter(|j| target.is_none_or(|t| j.target == t))
        .take(limit)
    {
        let mut item = if job.state.is_final() {
            view(&job, None)
        } else if let Some(why) = unreachable.get(&(job.plugin.clone(), job.target.clone())) {
            let mut v = view(&job, None);
            v["probe_error"] = json!(why);
            v
        } else {
            // A target that cannot be reached leaves its jobs listed with the last known state.
            let ctx = call.ctx(host.shared, &job.plugin);
            match refresh(&ctx, &mut job).await {
                Ok(p) => view(&job, Some(&p)),
                Err(e) => {
                    unreachable.insert((job.plugin.clone(), job.target.clone()), e.message.clone());
                    let mut v = view(&job, None);
                    v["probe_error"] = json!(e.message);
                    v
                }
            }
        };
        if let Some(o) = item.as_object_mut() {
            o.remove("dir");
        }
        items.push(item);
    }
    // Runs have no target: a list for one target leaves them out.
    if target.is_none() {
        items.extend(host.shared.runs.list().iter().map(|r| r.view()));
        items.sort_by(|a, b| b["started_at"].as_str().cmp(&a["started_at"].as_str()));
        items.truncate(limit);
    }
    Ok(json!({ "items": items }))
}

/// Reads the live state from the target and records a final one in the registry.
async fn refresh(call: &CallCtx, job: &mut Job) -> Result<Probe, Failure> {
    let probe = ssh::probe(call, job).await.map_err(cap)?;
    if !job.state.is_final() && probe.state.is_final() {
        settle(call, job, probe.state, probe.exit_code)?;
    }
    Ok(probe)
}

fn settle(
    call: &CallCtx,
    job: &mut Job,
    state: JobState,
    exit_code: Option<i32>,
) -> Result<(), Failure> {
    job.state = state;
    job.exit_code = exit_code;
    job.ended_at = Some(crate::jobs::now());
    call.shared.jobs.update(job)?;
    Ok(())
}

async fn wait(ctx: &CallCtx, job: &mut Job, call: &HostCall) -> Result<Value, Failure> {
    let started = tokio::time::Instant::now();
    let until = started + call.timeout.saturating_sub(WAIT_MARGIN);
    let mut pause = Duration::from_millis(200);
    loop {
        let probe = if job.state.is_final() {
            None
        } else {
            Some(refresh(ctx, job).await?)
        };
        let waited = started.elapsed();
        if job.state.is_final() || tokio::time::Instant::now() + pause >= until {
            let mut out = view(job, probe.as_ref());
            out["done"] = json!(job.state.is_final());
            out["waited_ms"] = json!(waited.as_millis() as u64);
            if !job.state.is_final() {
                out["hint"] =
                    json!("still running: call wait again, or raise timeout_ms to wait longer");
            }
            return Ok(out);
        }
        if let (Some(p), Some(progress)) = (&probe, &call.progress) {
            progress(
                waited.as_secs_f64(),
                None,
                Some(format!(
                    "job {} running for {} s; stdout {} bytes, stderr {} bytes",
                    job.id,
                    waited.as_secs(),
                    p.stdout_bytes,
                    p.stderr_bytes
                )),
            );
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

async fn logs(call: &CallCtx, job: &Job, tail: &Tail) -> Result<Value, Failure> {
    let bytes = tail.tail_bytes.unwrap_or(16 * 1024).clamp(1, MAX_TAIL);
    let full = tail.full.unwrap_or(false);
    let streams: &[&str] = match tail.stream.unwrap_or(Stream::Both) {
        Stream::Stdout => &["stdout"],
        Stream::Stderr => &["stderr"],
        Stream::Both => &["stdout", "stderr"],
    };
    let probe = ssh::probe(call, job).await.map_err(cap)?;
    let mut out = view(job, Some(&probe));
    for stream in streams {
        let r = ssh::tail(call, job, stream, bytes, full)
            .await
            .map_err(cap)?;
        let size = if *stream == "stdout" {
            probe.stdout_bytes
        } else {
            probe.stderr_bytes
        };
        out[*stream] = json!(String::from_utf8_lossy(&r.stdout));
        out[format!("{stream}_truncated")] = json!(size > bytes);
        if let Some(a) = r.stdout_artifact {
            out[format!("{stream}_artifact")] = json!(a.uri);
        }
    }
    Ok(out)
}

/// A job as the agent sees it.
fn view(job: &Job, probe: Option<&Probe>) -> Value {
    let mut v = json!({
        "id": job.id,
        "kind": "command",
        "target": job.target,
        "command": job.command,
        "pid": job.pid,
        "dir": job.dir,
        "started_at": job.started_at,
        "state": job.state,
    });
    if let Some(c) = job.exit_code {
        v["exit_code"] = json!(c);
    }
    if let Some(t) = &job.ended_at {
        v["ended_at"] = json!(t);
    }
    if let Some(p) = probe {
        v["stdout_bytes"] = json!(p.stdout_bytes);
        v["stderr_bytes"] = json!(p.stderr_bytes);
    }
    if job.state == JobState::Lost {
        v["hint"] = json!(
            "the process is gone without an exit status: it was killed outside infra, or the target rebooted; its output so far is in `logs`"
        );
    }
    v
}

/// A capability error as a tool failure of the same kind.
fn cap(e: CapError) -> Failure {
    let (kind, m) = match e {
        CapError::Denied(m) => (ErrorKind::Denied, m),
        CapError::NotFound(m) => (ErrorKind::NotFound, m),
        CapError::Invalid(m) => (ErrorKind::Invalid, m),
        CapError::Timeout(m) => (ErrorKind::Timeout, m),
        CapError::Failed(m) => (ErrorKind::Failed, m),
    };
    Failure::new(kind, m)
}
