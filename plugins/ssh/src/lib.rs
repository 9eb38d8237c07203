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

use args::{Action, SshArgs};
use out::{CommandOutput, JobInfo, SshOutput};

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
fn env(args: &SshArgs) -> Vec<KeyValue> {
    args.env
        .iter()
        .flatten()
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// Runs one command with the call's options.
pub fn exec(
    args: &SshArgs,
    ctx: &Ctx,
    command: &str,
    stdin: Option<StdinSource>,
) -> Result<CommandOutput, ToolError> {
    let req = ExecRequest {
        target: args.target.clone(),
        command: command.to_string(),
        stdin,
        env: env(args),
        cwd: args.cwd.clone(),
        pty: args.pty.unwrap_or(false),
        timeout_ms: ctx.timeout_ms,
        max_output: args.max_output.unwrap_or(INLINE_MAX),
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

fn run(args: SshArgs, ctx: &Ctx) -> Result<SshOutput, ToolError> {
    let mut o = SshOutput {
        target: args.target.clone(),
        ..Default::default()
    };
    match args.action {
        Action::Exec => {
            let stdin = args.stdin()?;
            o.command = Some(exec(&args, ctx, args.command()?, stdin)?);
        }
        Action::ExecDetached => {
            let command = args.command()?;
            let job = ssh::exec_detached(&DetachedRequest {
                target: args.target.clone(),
                command: command.to_string(),
                env: env(&args),
                cwd: args.cwd.clone(),
            })?;
            o.job = Some(JobInfo {
                next: format!(
                    "jobs with {{\"action\": \"wait\", \"id\": \"{}\"}} (or status, logs, cancel)",
                    job.id
                ),
                id: job.id,
                command: command.to_string(),
                pid: job.pid,
                dir: job.dir,
            });
        }
        Action::Batch => {
            let commands = args
                .commands
                .as_ref()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    ToolError::invalid(
                        "commands",
                        "missing: `batch` needs a non-empty `commands` list",
                    )
                })?;
            let keep_going = args.continue_on_error.unwrap_or(false);
            let mut results = Vec::new();
            let mut failed = 0;
            for c in commands {
                let r = match exec(&args, ctx, c, args.stdin()?) {
                    Ok(r) => r,
                    // A refusal before anything ran is the whole call's answer…
                    Err(e)
                        if results.is_empty()
                            && matches!(
                                e.kind,
                                ErrorKind::Denied | ErrorKind::NotFound | ErrorKind::Invalid
                            ) =>
                    {
                        return Err(e);
                    }
                    // …but a timeout or lost connection mid-batch must not discard the results
                    // of the commands that already ran.
                    Err(e) => CommandOutput::failed(c, &e),
                };
                let ok = r.exit_code == Some(0);
                results.push(r);
                if !ok {
                    failed += 1;
                    if !keep_going {
                        break;
                    }
                }
            }
            o.skipped = Some((commands.len() - results.len()) as u32);
            o.failed = Some(failed);
            o.results = Some(results);
        }
        Action::SystemInfo => o.info = Some(monitor::system_info(&args.target, ctx)?),
        Action::CheckHost => {
            let started = std::time::Instant::now();
            match probe(&args.target, ctx, "true", 1024) {
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
        }
        Action::SftpList
        | Action::SftpStat
        | Action::SftpDownload
        | Action::SftpUpload
        | Action::DeployFile => transfer::run(&args, ctx, &mut o)?,
        Action::Containers
        | Action::ContainerLogs
        | Action::Metrics
        | Action::DiskHealth
        | Action::Logs => o.data = Some(monitor::run(&args, ctx)?),
    }
    Ok(o)
}

infra_sdk::plugin!(tools: [
    Tool::new("ssh", "SSH", DESCRIPTION, run).open_world().destructive(),
]);
