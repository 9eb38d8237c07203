//! The `local` tool: shell commands and files on the machine infra runs on — the tool infra
//! replaces called it `mcp_local`.
//!
//! It is the one built-in plugin that is unsafe by design, and it is locked twice: its
//! plugin.toml says `unsafe = true`, so the host lists and runs it only while infra runs with
//! INFRA_UNSAFE_LOCAL=1; and it reaches the machine only through the host's `exec` and `fs`
//! capabilities in their unsafe mode (root `/`), which the host grants only to an `unsafe = true`
//! grant while that same flag is on. Every call and every capability use is audited.

mod args;
mod exec;
mod files;
mod out;

use infra_sdk::prelude::*;

use args::{Action, LocalArgs, Step};
use exec::Defaults;
use out::LocalOutput;

const DESCRIPTION: &str = "UNSAFE: shell commands and files on the machine infra runs on, as \
the user infra runs as (only while infra runs with INFRA_UNSAFE_LOCAL=1). Actions: `exec` \
(`command` run with `sh -c`, or the program `command` with `args` and no shell; `cwd`, `env`, \
stdin text/base64/artifact; exit code or signal, stdout/stderr capped with the full stream in an \
artifact; killed on timeout), `batch` (`commands` in order, stops at the first failure unless \
`stop_on_error: false`), `fs_read` (inline up to `max_bytes`, else an artifact), `fs_write` \
(atomic; text/base64/artifact; `mode`, `mkdirs`, `overwrite`), `fs_list` (`recursive`, \
`max_depth`, `max_entries`), `fs_stat`, `fs_mkdir`, `fs_rm` (`recursive`, `force`). Paths and \
`cwd` are absolute. Every call is audited.";

fn run(args: LocalArgs, ctx: &Ctx) -> Result<LocalOutput, ToolError> {
    match args.action {
        Action::Exec {
            command,
            max_output,
        } => {
            let d = Defaults {
                max_output,
                ..Defaults::default()
            };
            Ok(LocalOutput {
                command: Some(exec::run(&command, &d, ctx)?),
                ..LocalOutput::default()
            })
        }
        Action::Batch {
            commands,
            stop_on_error,
            cwd,
            env,
            max_output,
        } => {
            let d = Defaults {
                cwd: cwd.as_deref(),
                env: env.as_ref(),
                max_output,
            };
            let mut o = LocalOutput::default();
            let commands = commands.into_iter().map(Step::into_command).collect();
            exec::batch(commands, stop_on_error.unwrap_or(true), &d, ctx, &mut o)?;
            Ok(o)
        }
        Action::FsRead {
            path,
            max_bytes,
            encoding,
        } => files::read(&path, max_bytes, encoding),
        Action::FsWrite {
            path,
            content,
            content_base64,
            content_artifact,
            mode,
            mkdirs,
            overwrite,
        } => files::write(
            &path,
            args::content(&content, &content_base64, &content_artifact)?,
            infra_sdk::file_mode(&mode)?,
            mkdirs.unwrap_or(false),
            overwrite.unwrap_or(false),
        ),
        Action::FsList {
            path,
            recursive,
            max_depth,
            max_entries,
        } => files::list(&path, recursive.unwrap_or(false), max_depth, max_entries),
        Action::FsStat { path } => files::stat(&path),
        Action::FsMkdir { path } => files::mkdir(&path),
        Action::FsRm {
            path,
            recursive,
            force,
        } => files::rm(&path, recursive.unwrap_or(false), force.unwrap_or(false)),
    }
}

infra_sdk::plugin!(tools: [
    Tool::new("local", "Local machine (unsafe)", DESCRIPTION, run).destructive(),
]);
