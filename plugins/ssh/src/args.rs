//! The arguments of the `ssh` tool: the target every action names, and per `action` its own
//! fields.

use std::collections::BTreeMap;

use crate::caps::ssh::StdinSource;
use infra_sdk::prelude::*;

/// Arguments of the `ssh` tool: the target, and the action with its own fields.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
pub struct SshArgs {
    /// Name of a `targets.json` entry (host, user, key and host-key pin live there, in the host).
    pub target: String,
    /// What to do, with the fields only that action takes.
    #[serde(flatten)]
    pub action: Action,
}

/// What to do.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Runs `command`; returns exit code (or signal), stdout and stderr.
    Exec {
        /// The command line, run by the remote user's shell.
        command: String,
        /// How it runs.
        #[serde(flatten)]
        run: Run,
    },
    /// Starts `command` in the background on the target and returns a job id at once; follow it
    /// with the `jobs` host tool (status, wait, logs, cancel).
    ExecDetached {
        /// The command line, run by `sh -c` in its own session.
        command: String,
        /// Where it runs.
        #[serde(flatten)]
        place: Place,
    },
    /// Runs `commands` one after the other; stops at the first failure unless `continue_on_error`.
    Batch {
        /// Command lines, run in order.
        #[schemars(length(min = 1))]
        commands: Vec<String>,
        /// Run the remaining commands after one fails (default false: stop).
        continue_on_error: Option<bool>,
        /// How each runs.
        #[serde(flatten)]
        run: Run,
    },
    /// Host name, OS, kernel, uptime, CPUs, memory, load and root disk.
    SystemInfo,
    /// Connects and runs `true`: reachable or not, with the latency.
    CheckHost,
    /// Lists the directory `path`.
    SftpList {
        /// The remote path.
        path: String,
    },
    /// Metadata of `path`.
    SftpStat {
        /// The remote path.
        path: String,
    },
    /// Copies the remote file `path` into an artifact.
    SftpDownload {
        /// The remote path.
        path: String,
        /// Refuse files larger than this (default 1 GiB).
        max_bytes: Option<u64>,
    },
    /// Writes `content`/`content_base64`/`content_artifact` to `path`.
    SftpUpload {
        /// The remote path.
        path: String,
        /// What to write, and how.
        #[serde(flatten)]
        upload: Upload,
        /// Replace an existing file (default false; `deploy_file` always replaces).
        overwrite: Option<bool>,
    },
    /// Uploads to `path`, verifies sha256 on both ends, optionally runs `restart_command`.
    DeployFile {
        /// The remote path.
        path: String,
        /// What to write, and how.
        #[serde(flatten)]
        upload: Upload,
        /// Command run after a changed upload (e.g. `systemctl restart app`).
        restart_command: Option<String>,
    },
    /// `docker ps -a` (and `docker inspect` with `inspect: true`), parsed.
    Containers {
        /// Include `docker inspect` details.
        inspect: Option<bool>,
    },
    /// The last `lines` of a container's log (`docker logs`), optionally `since`.
    ContainerLogs {
        /// The container name or id.
        container: String,
        /// Which lines.
        #[serde(flatten)]
        window: Window,
    },
    /// CPU, load, memory, disks and network from /proc and df.
    Metrics,
    /// S.M.A.R.T. health from `smartctl -j` for `device` or every device found.
    DiskHealth {
        /// The device (`/dev/sda`); default every device `smartctl --scan` finds.
        device: Option<String>,
    },
    /// journald lines (`journalctl -o json`) by `unit`, `priority`, `lines`, `since`.
    Logs {
        /// The systemd unit.
        unit: Option<String>,
        /// The highest priority kept (`err`, `warning`, `0`–`7`…).
        priority: Option<String>,
        /// Which lines.
        #[serde(flatten)]
        window: Window,
    },
}

/// Where a command runs: its environment and working directory.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct Place {
    /// Environment variables.
    pub env: Option<BTreeMap<String, String>>,
    /// Working directory on the target.
    pub cwd: Option<String>,
}

/// How a command runs in the foreground: where, its input, its terminal and its output cap.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct Run {
    /// Where it runs.
    #[serde(flatten)]
    pub place: Place,
    /// Standard input as text.
    pub stdin: Option<String>,
    /// Standard input as base64.
    pub stdin_base64: Option<String>,
    /// Standard input from an `artifact://` URI (streamed by the host).
    pub stdin_artifact: Option<String>,
    /// Allocate a pseudo-terminal (stderr then arrives merged into stdout).
    pub pty: Option<bool>,
    /// Bytes of stdout and of stderr returned inline (default 64 KiB); the full streams go to
    /// artifacts when longer.
    pub max_output: Option<u64>,
}

/// A file to write: its content (exactly one of three fields), mode and parent directories.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct Upload {
    /// Content as text.
    pub content: Option<String>,
    /// Content as base64.
    pub content_base64: Option<String>,
    /// Content from an `artifact://` URI.
    pub content_artifact: Option<String>,
    /// Permission bits, as an octal string ("644") or a number.
    pub mode: Option<Value>,
    /// Create missing parent directories.
    pub mkdirs: Option<bool>,
}

/// Which log lines: how many from the end, and since when.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct Window {
    /// Lines from the end (default 100, at most 10000).
    pub lines: Option<u32>,
    /// Only lines since this time (`10m`, `2024-01-01T00:00:00`…).
    pub since: Option<String>,
}

impl Window {
    /// `lines`, defaulted and clamped.
    pub fn lines(&self) -> u32 {
        self.lines.unwrap_or(100).clamp(1, 10_000)
    }
}

impl Run {
    /// The stdin source, if any (at most one of the three fields).
    pub fn stdin(&self) -> Result<Option<StdinSource>, ToolError> {
        infra_sdk::byte_source([
            ("stdin", &self.stdin),
            ("stdin_base64", &self.stdin_base64),
            ("stdin_artifact", &self.stdin_artifact),
        ])
    }
}

impl Upload {
    /// The content, required (exactly one of the three fields).
    pub fn content(&self) -> Result<StdinSource, ToolError> {
        infra_sdk::byte_source([
            ("content", &self.content),
            ("content_base64", &self.content_base64),
            ("content_artifact", &self.content_artifact),
        ])?
        .ok_or_else(|| {
            ToolError::invalid(
                "content",
                "missing: give `content` (text), `content_base64` or `content_artifact`",
            )
        })
    }

    /// `mode` as permission bits.
    pub fn mode(&self) -> Result<Option<u32>, ToolError> {
        infra_sdk::file_mode(&self.mode)
    }
}

/// Quotes `s` for a POSIX shell.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> SshArgs {
        serde_json::from_value(v).expect("valid arguments")
    }

    #[test]
    fn each_action_reads_only_its_own_fields() {
        let args = parse(json!({"action": "exec", "target": "t", "command": "ls",
            "cwd": "/srv", "env": {"A": "1"}, "pty": true, "stdin": "x"}));
        assert_eq!(args.target, "t");
        let Action::Exec { command, run } = args.action else {
            panic!("exec expected");
        };
        assert_eq!(command, "ls");
        assert_eq!(run.place.cwd.as_deref(), Some("/srv"));
        assert_eq!(run.pty, Some(true));
        assert!(matches!(run.stdin(), Ok(Some(StdinSource::Bytes(b))) if b == b"x"));

        let args = parse(json!({"action": "logs", "target": "t", "unit": "sshd", "lines": 0}));
        let Action::Logs { unit, window, .. } = args.action else {
            panic!("logs expected");
        };
        assert_eq!(unit.as_deref(), Some("sshd"));
        assert_eq!(window.lines(), 1, "clamped to at least one line");
        assert!(matches!(
            parse(json!({"action": "metrics", "target": "t"})).action,
            Action::Metrics
        ));
    }

    #[test]
    fn a_missing_required_field_is_refused() {
        let e =
            serde_json::from_value::<SshArgs>(json!({"action": "container_logs", "target": "t"}))
                .expect_err("container is required");
        assert!(e.to_string().contains("container"), "{e}");
    }

    #[test]
    fn mode_reads_octal_text_or_a_number_and_refuses_the_rest() {
        let mode = |m: Value| {
            Upload {
                mode: Some(m),
                ..Default::default()
            }
            .mode()
        };
        assert_eq!(mode(json!("644")).unwrap(), Some(0o644));
        assert_eq!(mode(json!("0o755")).unwrap(), Some(0o755));
        assert_eq!(mode(json!(420)).unwrap(), Some(420));
        let e = mode(json!("999")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("mode"));
        assert!(e.message.contains("octal"), "{}", e.message);
    }

    #[test]
    fn content_is_exactly_one_of_three_fields() {
        let missing = Upload::default().content().unwrap_err();
        assert_eq!(missing.field.as_deref(), Some("content"));
        let two = Upload {
            content: Some("a".into()),
            content_artifact: Some("artifact://x".into()),
            ..Default::default()
        };
        assert!(
            two.content()
                .unwrap_err()
                .message
                .contains("give only one of")
        );
        let bad = Upload {
            content_artifact: Some("/etc/passwd".into()),
            ..Default::default()
        };
        assert!(bad.content().unwrap_err().message.contains("artifact://"));
    }
}
