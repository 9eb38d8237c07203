//! The arguments of the `ssh` tool: one flat object, fields apply per `action` as documented.

use std::collections::BTreeMap;

use crate::caps::ssh::StdinSource;
use infra_sdk::prelude::*;

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Runs `command`; returns exit code (or signal), stdout and stderr.
    Exec,
    /// Starts `command` in the background on the target and returns a job id at once; follow it
    /// with the `jobs` host tool (status, wait, logs, cancel).
    ExecDetached,
    /// Runs `commands` one after the other; stops at the first failure unless `continue_on_error`.
    Batch,
    /// Host name, OS, kernel, uptime, CPUs, memory, load and root disk.
    SystemInfo,
    /// Connects and runs `true`: reachable or not, with the latency.
    CheckHost,
    /// Lists the directory `path`.
    SftpList,
    /// Metadata of `path`.
    SftpStat,
    /// Copies the remote file `path` into an artifact.
    SftpDownload,
    /// Writes `content`/`content_base64`/`content_artifact` to `path`.
    SftpUpload,
    /// Uploads to `path`, verifies sha256 on both ends, optionally runs `restart_command`.
    DeployFile,
    /// `docker ps -a` (and `docker inspect` with `inspect: true`), parsed.
    Containers,
    /// The last `lines` of a container's log (`docker logs`), optionally `since`.
    ContainerLogs,
    /// CPU, load, memory, disks and network from /proc and df.
    Metrics,
    /// S.M.A.R.T. health from `smartctl -j` for `device` or every device found.
    DiskHealth,
    /// journald lines (`journalctl -o json`) by `unit`, `priority`, `lines`, `since`.
    Logs,
}

/// Arguments of the `ssh` tool.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SshArgs {
    /// What to do.
    pub action: Action,
    /// Name of a `targets.json` entry (host, user, key and host-key pin live there, in the host).
    pub target: String,
    /// `exec`/`exec_detached`: the command line, run by the remote user's shell (`sh -c` in its
    /// own session for `exec_detached`).
    pub command: Option<String>,
    /// `batch`: command lines, run in order.
    pub commands: Option<Vec<String>>,
    /// `batch`: run the remaining commands after one fails (default false: stop).
    pub continue_on_error: Option<bool>,
    /// `exec`/`batch`: standard input as text.
    pub stdin: Option<String>,
    /// `exec`/`batch`: standard input as base64.
    pub stdin_base64: Option<String>,
    /// `exec`/`batch`: standard input from an `artifact://` URI (streamed by the host).
    pub stdin_artifact: Option<String>,
    /// `exec`/`batch`/`exec_detached`: environment variables.
    pub env: Option<BTreeMap<String, String>>,
    /// `exec`/`batch`/`exec_detached`: working directory on the target.
    pub cwd: Option<String>,
    /// `exec`/`batch`: allocate a pseudo-terminal (stderr then arrives merged into stdout).
    pub pty: Option<bool>,
    /// Bytes of stdout and of stderr returned inline (default 64 KiB); the full streams go to
    /// artifacts when longer.
    pub max_output: Option<u64>,
    /// `sftp_*`/`deploy_file`: the remote path.
    pub path: Option<String>,
    /// `sftp_upload`/`deploy_file`: content as text.
    pub content: Option<String>,
    /// `sftp_upload`/`deploy_file`: content as base64.
    pub content_base64: Option<String>,
    /// `sftp_upload`/`deploy_file`: content from an `artifact://` URI.
    pub content_artifact: Option<String>,
    /// `sftp_upload`/`deploy_file`: permission bits, as an octal string ("644") or a number.
    pub mode: Option<Value>,
    /// `sftp_upload`/`deploy_file`: create missing parent directories.
    pub mkdirs: Option<bool>,
    /// `sftp_upload`: replace an existing file (default false; `deploy_file` always replaces).
    pub overwrite: Option<bool>,
    /// `deploy_file`: command run after a changed upload (e.g. `systemctl restart app`).
    pub restart_command: Option<String>,
    /// `sftp_download`: refuse files larger than this (default 1 GiB).
    pub max_bytes: Option<u64>,
    /// `containers`: also `docker inspect` them; `container_logs`: the container name or id.
    pub container: Option<String>,
    /// `containers`: include `docker inspect` details.
    pub inspect: Option<bool>,
    /// `container_logs`/`logs`: lines from the end (default 100, at most 10000).
    pub lines: Option<u32>,
    /// `container_logs`/`logs`: only lines since this time (`10m`, `2024-01-01T00:00:00`…).
    pub since: Option<String>,
    /// `logs`: the systemd unit.
    pub unit: Option<String>,
    /// `logs`: the highest priority kept (`err`, `warning`, `0`–`7`…).
    pub priority: Option<String>,
    /// `disk_health`: the device (`/dev/sda`); default every device `smartctl --scan` finds.
    pub device: Option<String>,
}

fn field<'a, T>(v: &'a Option<T>, name: &str, action: &str) -> Result<&'a T, ToolError> {
    v.as_ref()
        .ok_or_else(|| ToolError::invalid(name, format!("missing: `{action}` needs `{name}`")))
}

impl SshArgs {
    /// `command`, required.
    pub fn command(&self) -> Result<&str, ToolError> {
        let action = match self.action {
            Action::ExecDetached => "exec_detached",
            _ => "exec",
        };
        field(&self.command, "command", action).map(String::as_str)
    }

    /// `path`, required.
    pub fn path(&self, action: &str) -> Result<&str, ToolError> {
        field(&self.path, "path", action).map(String::as_str)
    }

    /// The stdin source, if any (at most one of the three fields).
    pub fn stdin(&self) -> Result<Option<StdinSource>, ToolError> {
        source(
            [
                ("stdin", &self.stdin),
                ("stdin_base64", &self.stdin_base64),
                ("stdin_artifact", &self.stdin_artifact),
            ],
            "stdin",
        )
    }

    /// The upload content, required (exactly one of the three fields).
    pub fn content(&self) -> Result<StdinSource, ToolError> {
        source(
            [
                ("content", &self.content),
                ("content_base64", &self.content_base64),
                ("content_artifact", &self.content_artifact),
            ],
            "content",
        )?
        .ok_or_else(|| {
            ToolError::invalid(
                "content",
                "missing: give `content` (text), `content_base64` or `content_artifact`",
            )
        })
    }

    /// `mode` as permission bits.
    pub fn mode(&self) -> Result<Option<u32>, ToolError> {
        let bad = |m: &Value| {
            ToolError::invalid(
                "mode",
                format!("{m} is not a mode; write it as an octal string like \"644\" or \"0755\""),
            )
        };
        match &self.mode {
            None => Ok(None),
            Some(Value::String(s)) => u32::from_str_radix(s.trim_start_matches("0o"), 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .map(Some)
                .ok_or_else(|| bad(&json!(s))),
            Some(Value::Number(n)) => n
                .as_u64()
                .filter(|m| *m <= 0o7777)
                .map(|m| Some(m as u32))
                .ok_or_else(|| bad(&json!(n))),
            Some(other) => Err(bad(other)),
        }
    }
}

fn source<const N: usize>(
    fields: [(&str, &Option<String>); N],
    what: &str,
) -> Result<Option<StdinSource>, ToolError> {
    let set: Vec<_> = fields.iter().filter(|(_, v)| v.is_some()).collect();
    if set.len() > 1 {
        let names: Vec<String> = fields.iter().map(|(n, _)| format!("`{n}`")).collect();
        return Err(ToolError::invalid(
            set[1].0,
            format!("give only one of {} for {what}", names.join(", ")),
        ));
    }
    let Some((name, Some(value))) = set.first().map(|(n, v)| (*n, *v)) else {
        return Ok(None);
    };
    Ok(Some(if name.ends_with("_base64") {
        StdinSource::Bytes(infra_sdk::decode_base64(name, value)?)
    } else if name.ends_with("_artifact") {
        if !value.starts_with("artifact://") {
            return Err(ToolError::invalid(
                name,
                format!("'{value}' is not an artifact:// URI"),
            ));
        }
        StdinSource::Artifact(value.clone())
    } else {
        StdinSource::Bytes(value.clone().into_bytes())
    }))
}

/// Quotes `s` for a POSIX shell.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
