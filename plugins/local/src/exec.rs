//! `exec` and `batch`: commands run by the host's `exec` capability in its unsafe mode (any
//! program on the host's PATH, the root `/`, an absolute working directory).

use std::collections::BTreeMap;

use crate::caps::exec::{self, Command as ExecCommand};
use crate::caps::log;
use crate::caps::types::KeyValue;
use infra_sdk::prelude::*;

use crate::args::{Command, absolute};
use crate::out::LocalOutput;

/// The root every command runs in: the whole filesystem.
pub const ROOT: &str = "/";

/// Default bytes of each stream returned inline.
const INLINE_MAX: u64 = 64 * 1024;

/// The shell a command line runs with.
const SHELL: &str = "sh";

/// What `defaults` fills in for a command that names none of its own.
#[derive(Default)]
pub struct Defaults<'a> {
    /// Working directory.
    pub cwd: Option<&'a str>,
    /// Variables, under the command's own.
    pub env: Option<&'a BTreeMap<String, String>>,
    /// Bytes of each stream inline.
    pub max_output: Option<u64>,
}

/// The command line as shown in results: the shell line, or the program and its arguments.
fn shown(c: &Command) -> String {
    match &c.args {
        None => c.command.clone(),
        Some(args) => std::iter::once(c.command.as_str())
            .chain(args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Runs one command: `sh -c <command>`, or with `args` the program `command` itself.
pub fn run(c: &Command, d: &Defaults<'_>, ctx: &Ctx) -> Result<CommandOutput, ToolError> {
    if c.command.trim().is_empty() {
        return Err(ToolError::invalid(
            "command",
            "empty: give a command line, or a program with `args`",
        ));
    }
    let cwd = match c.cwd.as_deref().or(d.cwd) {
        Some(p) => absolute("cwd", p)?.to_string(),
        None => ROOT.to_string(),
    };
    let mut env: BTreeMap<&String, &String> = d.env.into_iter().flatten().collect();
    env.extend(c.env.iter().flatten());
    let (program, args) = match &c.args {
        None => (SHELL.to_string(), vec!["-c".to_string(), c.command.clone()]),
        Some(args) => (c.command.clone(), args.clone()),
    };
    let cmd = ExecCommand {
        program,
        args,
        root: ROOT.to_string(),
        cwd: Some(cwd),
        env: env
            .into_iter()
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
        stdin: c.stdin()?,
        profile: None,
        timeout_ms: ctx.timeout_ms,
        max_output: d.max_output.unwrap_or(INLINE_MAX),
    };
    Ok(CommandOutput::new(&shown(c), exec::run(&cmd)?))
}

/// Runs `commands` in order into `o`; stops at the first failure when `stop_on_error`.
pub fn batch(
    commands: Vec<Command>,
    stop_on_error: bool,
    d: &Defaults<'_>,
    ctx: &Ctx,
    o: &mut LocalOutput,
) -> Result<(), ToolError> {
    let b = infra_sdk::batch(
        &commands,
        stop_on_error,
        shown,
        |c| run(c, d, ctx),
        |n, total| {
            log::progress(
                n as f64,
                Some(total as f64),
                Some(&format!("command {n} of {total} done")),
            )
        },
    )?;
    o.skipped = Some(b.skipped);
    o.failed = Some(b.failed);
    o.results = Some(b.results);
    Ok(())
}
