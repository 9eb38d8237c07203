//! The arguments of the `local` tool: per `action` its own fields. Every path is absolute: the
//! plugin works on the root `/`, the whole filesystem of the machine infra runs on.

use std::collections::BTreeMap;

use crate::caps::types::ByteSource;
use infra_sdk::prelude::*;

/// Arguments of the `local` tool: the action, with the fields only that action takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
pub struct LocalArgs {
    /// What to do, with the fields only that action takes.
    #[serde(flatten)]
    pub action: Action,
}

/// What to do.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Runs `command` with `sh -c` (or, with `args`, the program `command` itself, no shell);
    /// returns exit code (or signal), stdout and stderr.
    Exec {
        /// What to run.
        #[serde(flatten)]
        command: Command,
        /// Bytes of stdout and of stderr returned inline (default 64 KiB); the full streams go
        /// to artifacts when longer.
        max_output: Option<u64>,
    },
    /// Runs `commands` one after the other; stops at the first that fails unless
    /// `stop_on_error` is false.
    Batch {
        /// The commands, in order: a command line (run with `sh -c`) or an object with
        /// `command` and optionally `args`, `cwd`, `env`, `stdin`.
        #[schemars(length(min = 1))]
        commands: Vec<Step>,
        /// Stop at the first command that does not exit 0 (default true).
        stop_on_error: Option<bool>,
        /// Working directory of every command that names none (absolute; default `/`).
        cwd: Option<String>,
        /// Variables added for every command (a command's own `env` wins).
        env: Option<BTreeMap<String, String>>,
        /// Bytes of stdout and of stderr returned inline per command (default 64 KiB).
        max_output: Option<u64>,
    },
    /// Reads the file `path`: inline up to `max_bytes`, else the whole file in an artifact.
    FsRead {
        /// Absolute path of the file.
        path: String,
        /// Bytes returned inline (default 64 KiB); a longer file goes to an artifact.
        max_bytes: Option<u64>,
        /// `utf8` (default; invalid bytes replaced) or `base64`.
        encoding: Option<Encoding>,
    },
    /// Writes `content`/`content_base64`/`content_artifact` to `path` atomically.
    FsWrite {
        /// Absolute path of the file.
        path: String,
        /// Content as text.
        content: Option<String>,
        /// Content as base64.
        content_base64: Option<String>,
        /// Content from an `artifact://` URI (streamed by the host).
        content_artifact: Option<String>,
        /// Permission bits of a new file, as an octal string ("644") or a number (default 644).
        mode: Option<Value>,
        /// Create missing parent directories (default false).
        mkdirs: Option<bool>,
        /// Replace an existing file (default false: an existing file is refused).
        overwrite: Option<bool>,
    },
    /// Lists the directory `path`, `max_depth` levels deep when `recursive`.
    FsList {
        /// Absolute path of the directory.
        path: String,
        /// Descend into subdirectories (default false); symlinks are listed, never followed.
        recursive: Option<bool>,
        /// Levels below `path` with `recursive` (default 8).
        max_depth: Option<u32>,
        /// Most entries returned (default 1000; the host clamps it).
        max_entries: Option<u32>,
    },
    /// Metadata of `path`; a symlink is reported as one, not followed.
    FsStat {
        /// Absolute path.
        path: String,
    },
    /// Creates the directory `path` and its missing parents.
    FsMkdir {
        /// Absolute path of the directory.
        path: String,
    },
    /// Removes a file, a symlink or an empty directory (a non-empty one with `recursive`).
    FsRm {
        /// Absolute path.
        path: String,
        /// Remove a directory with everything in it (default false).
        recursive: Option<bool>,
        /// A path that does not exist is not an error (default false).
        force: Option<bool>,
    },
}

/// How `fs_read` returns the bytes inline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// Text; invalid UTF-8 is replaced.
    #[default]
    Utf8,
    /// Base64 of the raw bytes.
    Base64,
}

/// One program run: the command, where, with which variables and input.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct Command {
    /// The command line, run with `sh -c`; with `args`, the program to run (a name on the
    /// host's PATH or an absolute path) with those arguments and no shell.
    pub command: String,
    /// Arguments of the program `command`, passed as-is (no shell).
    pub args: Option<Vec<String>>,
    /// Working directory (absolute; default `/`).
    pub cwd: Option<String>,
    /// Variables added to the host's environment (`PATH`, `HOME`, `LANG`, `USER`).
    pub env: Option<BTreeMap<String, String>>,
    /// Standard input as text.
    pub stdin: Option<String>,
    /// Standard input as base64.
    pub stdin_base64: Option<String>,
    /// Standard input from an `artifact://` URI (streamed by the host).
    pub stdin_artifact: Option<String>,
}

/// A `batch` step: a command line, or a command with its own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Step {
    /// A command line, run with `sh -c`.
    Line(String),
    /// A command with its own `args`, `cwd`, `env`, `stdin`.
    Full(Command),
}

impl Step {
    /// The step as a command.
    pub fn into_command(self) -> Command {
        match self {
            Step::Line(command) => Command {
                command,
                ..Command::default()
            },
            Step::Full(c) => c,
        }
    }
}

impl Command {
    /// The stdin source, if any (at most one of the three fields).
    pub fn stdin(&self) -> Result<Option<ByteSource>, ToolError> {
        infra_sdk::byte_source([
            ("stdin", &self.stdin),
            ("stdin_base64", &self.stdin_base64),
            ("stdin_artifact", &self.stdin_artifact),
        ])
    }
}

/// The content of an `fs_write` (exactly one of the three fields).
pub fn content(
    text: &Option<String>,
    base64: &Option<String>,
    artifact: &Option<String>,
) -> Result<ByteSource, ToolError> {
    infra_sdk::byte_source([
        ("content", text),
        ("content_base64", base64),
        ("content_artifact", artifact),
    ])?
    .ok_or_else(|| {
        ToolError::invalid(
            "content",
            "missing: give `content` (text), `content_base64` or `content_artifact`",
        )
    })
}

/// `path` checked absolute: the plugin works on the whole filesystem, and a relative path would
/// silently mean "relative to `/`", which no caller intends.
pub fn absolute<'a>(field: &str, path: &'a str) -> Result<&'a str, ToolError> {
    if path.starts_with('/') {
        Ok(path)
    } else {
        Err(ToolError::invalid(
            field,
            format!(
                "'{path}' is not an absolute path; `local` takes absolute paths only, e.g. \"/tmp/{path}\""
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Action {
        serde_json::from_value::<LocalArgs>(v)
            .expect("valid arguments")
            .action
    }

    #[test]
    fn each_action_reads_only_its_own_fields() {
        let Action::Exec { command, .. } = parse(json!({"action": "exec", "command": "git",
            "args": ["status"], "cwd": "/srv", "env": {"A": "1"}, "stdin": "x"}))
        else {
            panic!("exec expected");
        };
        assert_eq!(command.args.as_deref(), Some(&["status".to_string()][..]));
        assert!(matches!(command.stdin(), Ok(Some(ByteSource::Bytes(b))) if b == b"x"));
        let Action::Batch { commands, .. } = parse(json!({"action": "batch",
            "commands": ["ls", {"command": "pwd", "cwd": "/tmp"}]}))
        else {
            panic!("batch expected");
        };
        let cmds: Vec<Command> = commands.into_iter().map(Step::into_command).collect();
        assert_eq!(cmds[0].command, "ls");
        assert_eq!(cmds[1].cwd.as_deref(), Some("/tmp"));
        assert!(matches!(
            parse(json!({"action": "fs_rm", "path": "/x", "recursive": true})),
            Action::FsRm {
                recursive: Some(true),
                ..
            }
        ));
    }

    #[test]
    fn stdin_and_content_are_one_of_three_fields() {
        let two = Command {
            stdin: Some("a".into()),
            stdin_base64: Some("YQ==".into()),
            ..Command::default()
        };
        assert!(two.stdin().unwrap_err().message.contains("only one of"));
        let missing = content(&None, &None, &None).unwrap_err();
        assert_eq!(missing.field.as_deref(), Some("content"));
        let bad = content(&None, &None, &Some("/etc/passwd".into())).unwrap_err();
        assert!(bad.message.contains("artifact://"), "{}", bad.message);
    }

    #[test]
    fn paths_must_be_absolute() {
        assert_eq!(absolute("path", "/etc").unwrap(), "/etc");
        let e = absolute("path", "etc/x").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("path"));
    }
}
