//! The `ssh` tool: remote commands, SFTP, deployment and Linux device monitoring.
//!
//! Everything that touches the network happens in the host's `ssh` capability: this plugin names
//! a target of `targets.json`, builds commands and parses what the target's own tools print. It
//! never sees a key, passphrase or password, and it cannot choose to skip the host-key check.

mod args;
mod monitor;
mod out;
mod transfer;

use crate::caps::ssh::{self, DetachedRequest, ExecRequest, StdinSource};
use crate::caps::types::KeyValue;
use infra_sdk::prelude::*;

use args::{Action, Place, Run, SshArgs};
use out::{JobInfo, SshOutput};

const DESCRIPTION: &str = "Commands and files on SSH targets (entries of targets.json; keys and \
host-key pins stay in the host). Actions: `exec` (command, stdin text/base64/artifact, env, cwd, \
pty; exit code or signal, stdout/stderr capped with `truncated` and the full stream in an \
artifact; killed on timeout), `batch` (commands in order, stops at the first failure unless \
`continue_on_error`), `system_info`, `check_host`, `sftp_list`, `sftp_stat`, `sftp_download` (to \
an artifact), `sftp_upload` (text/base64/artifact; `mode`, `mkdirs`, `overwrite`), `deploy_file` \
(upload + sha256 verified on both ends + optional `restart_command`; reports `changed`), \
`exec_detached` (starts `command` in the background, returns a job id for the `jobs` tool), and \
monitoring parsed to JSON: `containers`, `container_logs`, `metrics`, `disk_health`, `logs`. \
Targets are limited by policy.";

/// Default bytes of each stream returned inline.
pub const INLINE_MAX: u64 = 64 * 1024;

/// The call's `env` as key-value pairs.
fn env(place: &Place) -> Vec<KeyValue> {
    place
        .env
        .iter()
        .flatten()
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// Runs one command on `target` with the call's options.
pub fn exec(
    target: &str,
    run: &Run,
    ctx: &Ctx,
    command: &str,
    stdin: Option<StdinSource>,
) -> Result<CommandOutput, ToolError> {
    let req = ExecRequest {
        target: target.to_string(),
        command: command.to_string(),
        stdin,
        env: env(&run.place),
        cwd: run.place.cwd.clone(),
        pty: run.pty.unwrap_or(false),
        timeout_ms: ctx.timeout_ms,
        max_output: run.max_output.unwrap_or(INLINE_MAX),
    };
    Ok(CommandOutput::new(command, ssh::exec(&req)?))
}

/// Runs a helper command (no agent options) and returns it; `max` bytes inline.
pub fn probe(
    target: &str,
    ctx: &Ctx,
    command: &str,
    max: u64,
) -> Result<ssh::ExecResult, ToolError> {
    Ok(ssh::exec(&ExecRequest {
        target: target.to_string(),
        command: command.to_string(),
        stdin: None,
        env: vec![],
        cwd: None,
        pty: false,
        timeout_ms: ctx.timeout_ms,
        max_output: max,
    })?)
}

/// Starts `command` in the background and says how to follow it.
fn exec_detached(target: &str, command: &str, place: &Place) -> Result<JobInfo, ToolError> {
    let job = ssh::exec_detached(&DetachedRequest {
        target: target.to_string(),
        command: command.to_string(),
        env: env(place),
        cwd: place.cwd.clone(),
    })?;
    Ok(JobInfo {
        next: format!(
            "jobs with {{\"action\": \"wait\", \"id\": \"{}\"}} (or status, logs, cancel)",
            job.id
        ),
        id: job.id,
        command: command.to_string(),
        pid: job.pid,
        dir: job.dir,
    })
}

/// Runs `commands` in order into `o`; stops at the first failure unless `keep_going`.
fn batch(
    target: &str,
    commands: &[String],
    keep_going: bool,
    run: &Run,
    ctx: &Ctx,
    o: &mut SshOutput,
) -> Result<(), ToolError> {
    let b = infra_sdk::batch(
        commands,
        !keep_going,
        |c| c.clone(),
        |c| exec(target, run, ctx, c, run.stdin()?),
        |_, _| {},
    )?;
    o.skipped = Some(b.skipped);
    o.failed = Some(b.failed);
    o.results = Some(b.results);
    Ok(())
}

/// Connects and runs `true` into `o`: unreachable is an answer, a refusal is an error.
fn check_host(target: &str, ctx: &Ctx, o: &mut SshOutput) -> Result<(), ToolError> {
    let started = std::time::Instant::now();
    match probe(target, ctx, "true", 1024) {
        Ok(r) => {
            o.reachable = Some(r.exit_code == Some(0));
            o.latency_ms = Some(started.elapsed().as_millis() as u64);
        }
        Err(e) if e.kind == ErrorKind::Denied && e.message.starts_with("policy:") => {
            return Err(e);
        }
        Err(e) if matches!(e.kind, ErrorKind::NotFound | ErrorKind::Invalid) => {
            return Err(e);
        }
        Err(e) => {
            o.reachable = Some(false);
            o.latency_ms = Some(started.elapsed().as_millis() as u64);
            o.problem = Some(e.message);
        }
    }
    Ok(())
}

fn run(args: SshArgs, ctx: &Ctx) -> Result<SshOutput, ToolError> {
    let t = args.target.as_str();
    let mut o = SshOutput {
        target: args.target.clone(),
        ..Default::default()
    };
    match &args.action {
        Action::Exec { command, run } => {
            o.command = Some(exec(t, run, ctx, command, run.stdin()?)?);
        }
        Action::ExecDetached { command, place } => {
            o.job = Some(exec_detached(t, command, place)?);
        }
        Action::Batch {
            commands,
            continue_on_error,
            run,
        } => batch(
            t,
            commands,
            continue_on_error.unwrap_or(false),
            run,
            ctx,
            &mut o,
        )?,
        Action::SystemInfo => o.info = Some(monitor::system_info(t, ctx)?),
        Action::CheckHost => check_host(t, ctx, &mut o)?,
        Action::SftpList { path } => o.entries = Some(transfer::list(t, path)?),
        Action::SftpStat { path } => o.file = Some(transfer::stat(t, path)?),
        Action::SftpDownload { path, max_bytes } => {
            o.artifact = Some(transfer::download(t, path, *max_bytes)?);
        }
        Action::SftpUpload {
            path,
            upload,
            overwrite,
        } => {
            o.file = Some(transfer::upload(
                t,
                path,
                upload,
                overwrite.unwrap_or(false),
            )?)
        }
        Action::DeployFile {
            path,
            upload,
            restart_command,
        } => transfer::deploy(t, ctx, path, upload, restart_command.as_deref(), &mut o)?,
        Action::Containers { inspect } => {
            o.data = Some(monitor::containers(t, ctx, inspect.unwrap_or(false))?);
        }
        Action::ContainerLogs { container, window } => {
            o.data = Some(monitor::container_logs(t, ctx, container, window)?);
        }
        Action::Metrics => o.data = Some(monitor::metrics(t, ctx)?),
        Action::DiskHealth { device } => {
            o.data = Some(monitor::disk_health(t, ctx, device.as_deref())?);
        }
        Action::Logs {
            unit,
            priority,
            window,
        } => {
            o.data = Some(monitor::logs(
                t,
                ctx,
                unit.as_deref(),
                priority.as_deref(),
                window,
            )?)
        }
    }
    Ok(o)
}

infra_sdk::plugin!(tools: [
    Tool::new("ssh", "SSH", DESCRIPTION, run).open_world().destructive(),
]);
