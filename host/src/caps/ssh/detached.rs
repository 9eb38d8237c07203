//! Background commands on a target: started detached from the connection, followed and stopped
//! later by the `jobs` host tool.
//!
//! A job runs as `setsid sh -c …` in its own session, so its pid is also its process group and
//! session id, and it survives the SSH connection (and infra) going away. Its stdout, stderr and
//! exit status land in files under `~/.infra/jobs/<id>/` on the target (mode 700): the host reads
//! them with short control commands over the pooled connection, and `cancel` signals the whole
//! process group, as the `exec` timeout does.

use super::super::CallCtx;
use super::super::infra::host::ssh::{DetachedRequest, ExecRequest, ExecResult, JobStarted};
use super::super::infra::host::types::CapError;
use super::exec::sh_quote;
use crate::jobs::{Job, JobState};

/// Longest a control command (start, probe, tail, cancel) may take.
const CONTROL_TIMEOUT_MS: u64 = 15_000;

/// The job's live state as read from the target.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Running, exited, or lost (cancelled is the registry's word, not the target's).
    pub state: JobState,
    /// Exit code, once exited.
    pub exit_code: Option<i32>,
    /// Bytes written to stdout so far.
    pub stdout_bytes: u64,
    /// Bytes written to stderr so far.
    pub stderr_bytes: u64,
}

/// Runs a short control command for a job and returns its result; a non-zero exit is an error
/// carrying the command's stderr.
async fn control(
    call: &CallCtx,
    target: &str,
    script: String,
    max_output: u64,
) -> Result<ExecResult, CapError> {
    let req = ExecRequest {
        target: target.to_string(),
        command: script,
        stdin: None,
        env: Vec::new(),
        cwd: None,
        pty: false,
        timeout_ms: call.remaining_ms().min(CONTROL_TIMEOUT_MS) as u32,
        max_output,
    };
    let r = call.ssh_exec(&req).await?;
    if r.exit_code != Some(0) {
        let why = String::from_utf8_lossy(&r.stderr).trim().to_string();
        return Err(CapError::Failed(format!(
            "target '{target}': {}",
            if why.is_empty() {
                format!("a job control command failed (exit {:?})", r.exit_code)
            } else {
                why
            }
        )));
    }
    Ok(r)
}

/// The shell function `alive`: true while any process of the job's group is left. `kill -0
/// -PGID` without `--`, which dash (Debian's `/bin/sh`) refuses.
fn alive_fn(pid: u32) -> String {
    format!("alive() {{ kill -0 -{pid} 2>/dev/null; }}\n")
}

/// Starts `req` in the background and records it as a job.
pub async fn start(call: &CallCtx, req: DetachedRequest) -> Result<JobStarted, CapError> {
    if req.command.trim().is_empty() {
        return Err(CapError::Invalid(
            "command: empty; give the command line to run in the background".into(),
        ));
    }
    let id = crate::jobs::Jobs::new_id();
    // `$1` is the job directory and `$2` the command, passed as arguments so no quoting of
    // them happens inside the inner script.
    let inner = r#"echo $$ > "$1/pid.tmp" && mv "$1/pid.tmp" "$1/pid"; sh -c "$2" </dev/null >"$1/stdout" 2>"$1/stderr"; echo $? > "$1/exit.tmp"; mv "$1/exit.tmp" "$1/exit""#;
    let script = format!(
        r#"umask 077
command -v setsid >/dev/null 2>&1 || {{ echo "setsid is not installed on this target (package util-linux); exec_detached needs it" >&2; exit 127; }}
d="${{HOME:-/tmp}}/.infra/jobs/{id}"
mkdir -p "$d" || {{ echo "cannot create the job directory $d" >&2; exit 125; }}
printf '%s\n' {cmd} > "$d/command"
setsid sh -c {inner} infra-job "$d" {cmd} </dev/null >/dev/null 2>&1 &
i=0
while [ ! -s "$d/pid" ] && [ "$i" -lt 100 ]; do sleep 0.05; i=$((i+1)); done
[ -s "$d/pid" ] || {{ echo "the job did not report its pid within 5 s" >&2; exit 124; }}
printf '%s %s\n' "$(cat "$d/pid")" "$d"
"#,
        cmd = sh_quote(&req.command),
        inner = sh_quote(inner),
    );
    let exec = ExecRequest {
        target: req.target.clone(),
        command: script,
        stdin: None,
        env: req.env,
        cwd: req.cwd,
        pty: false,
        timeout_ms: call.remaining_ms().min(CONTROL_TIMEOUT_MS) as u32,
        max_output: 4096,
    };
    let r = call.ssh_exec(&exec).await?;
    let out = String::from_utf8_lossy(&r.stdout);
    let line = out.lines().last().unwrap_or_default();
    let parsed = line
        .split_once(' ')
        .and_then(|(pid, dir)| Some((pid.parse::<u32>().ok()?, dir.to_string())));
    let Some((pid, dir)) = parsed.filter(|_| r.exit_code == Some(0)) else {
        let why = String::from_utf8_lossy(&r.stderr).trim().to_string();
        return Err(CapError::Failed(format!(
            "target '{}' did not start the job: {}",
            req.target,
            if why.is_empty() {
                format!("exit {:?}, output {line:?}", r.exit_code)
            } else {
                why
            }
        )));
    };
    let job = Job {
        id: id.clone(),
        target: req.target,
        plugin: call.plugin.clone(),
        command: call.shared.redactor.scrub_str(&req.command).into_owned(),
        pid,
        dir: dir.clone(),
        trace_id: call.trace_id.clone(),
        started_at: crate::jobs::now(),
        state: JobState::Running,
        exit_code: None,
        ended_at: None,
    };
    call.shared.jobs.add(job).map_err(|e| {
        CapError::Failed(format!(
            "the job started on the target (pid {pid}) but could not be recorded: {e:#}"
        ))
    })?;
    Ok(JobStarted { id, pid, dir })
}

/// Reads the job's state and output sizes from the target.
pub async fn probe(call: &CallCtx, job: &Job) -> Result<Probe, CapError> {
    let d = sh_quote(&job.dir);
    // The exit file is written before the job's shell exits: when the group is gone, a second
    // look at it tells "finished just now" from "killed without an exit status".
    let script = format!(
        r#"d={d}
{alive}size() {{ if [ -f "$1" ]; then wc -c < "$1"; else echo 0; fi; }}
if [ -f "$d/exit" ]; then s="exited $(cat "$d/exit")"
elif alive; then s="running -"
elif [ -f "$d/exit" ]; then s="exited $(cat "$d/exit")"
else s="lost -"; fi
echo $s $(size "$d/stdout") $(size "$d/stderr")
"#,
        alive = alive_fn(job.pid),
    );
    let r = control(call, &job.target, script, 4096).await?;
    let out = String::from_utf8_lossy(&r.stdout);
    let words: Vec<&str> = out.split_whitespace().collect();
    let bad = || {
        CapError::Failed(format!(
            "target '{}' answered the job probe with {out:?}; is the job directory {} intact?",
            job.target, job.dir
        ))
    };
    let [state, code, o, e] = words[..] else {
        return Err(bad());
    };
    let state = match state {
        "exited" => JobState::Exited,
        "running" => JobState::Running,
        "lost" => JobState::Lost,
        _ => return Err(bad()),
    };
    Ok(Probe {
        state,
        exit_code: code.parse().ok(),
        stdout_bytes: o.parse().map_err(|_| bad())?,
        stderr_bytes: e.parse().map_err(|_| bad())?,
    })
}

/// The last `bytes` of one of the job's streams (`stdout` or `stderr`); with `full`, the whole
/// stream also goes to an artifact (`stdout_artifact` of the result).
pub async fn tail(
    call: &CallCtx,
    job: &Job,
    stream: &str,
    bytes: u64,
    full: bool,
) -> Result<ExecResult, CapError> {
    let file = sh_quote(&format!("{}/{stream}", job.dir));
    let mut r = control(
        call,
        &job.target,
        format!("[ ! -f {file} ] || tail -c {bytes} -- {file}"),
        bytes,
    )
    .await?;
    if full {
        // Kept inline: nothing; so the whole stream, whatever its size, lands in the artifact.
        let whole = control(
            call,
            &job.target,
            format!("[ ! -f {file} ] || cat -- {file}"),
            0,
        )
        .await?;
        r.stdout_artifact = whole.stdout_artifact;
    }
    Ok(r)
}

/// What `cancel` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Nothing of the job was running any more.
    NotRunning,
    /// The group ended after SIGTERM.
    Terminated,
    /// SIGKILL was needed.
    Killed,
}

/// Stops the job's whole process group: SIGTERM, up to `grace_ms` to exit, then SIGKILL.
pub async fn cancel(call: &CallCtx, job: &Job, grace_ms: u64) -> Result<Stopped, CapError> {
    let pid = job.pid;
    let ticks = grace_ms.div_ceil(100).max(1);
    let script = format!(
        r#"{alive}alive || {{ echo not-running; exit 0; }}
kill -TERM -{pid} 2>/dev/null
i=0
while alive && [ "$i" -lt {ticks} ]; do sleep 0.1; i=$((i+1)); done
alive || {{ echo terminated; exit 0; }}
kill -KILL -{pid} 2>/dev/null
i=0
while alive && [ "$i" -lt 30 ]; do sleep 0.1; i=$((i+1)); done
alive && {{ echo "process group {pid} survived SIGKILL (a process in uninterruptible sleep?)" >&2; exit 1; }}
echo killed
"#,
        alive = alive_fn(pid),
    );
    let r = control(call, &job.target, script, 4096).await?;
    match String::from_utf8_lossy(&r.stdout).trim() {
        "not-running" => Ok(Stopped::NotRunning),
        "terminated" => Ok(Stopped::Terminated),
        "killed" => Ok(Stopped::Killed),
        other => Err(CapError::Failed(format!(
            "target '{}' answered the cancel with {other:?}",
            job.target
        ))),
    }
}
