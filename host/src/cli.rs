//! The command line: `serve` (default), `call`, `plugins`, `audit verify`, `demo`, `docs tools`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::flags::Flags;
use crate::router::Router;
use crate::state::StateDir;
use crate::tool::{CallRequest, Dispatch};

/// infra: an MCP server for infrastructure work in which every tool is a sandboxed WASI component.
#[derive(Debug, Parser)]
#[command(name = "infra", version, about)]
pub struct Cli {
    /// What to do (default: serve MCP over stdio).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP over stdin/stdout (what an MCP client runs).
    Serve,
    /// Run one tool call and print its result as JSON; exits non-zero when the call fails.
    Call {
        /// Tool name, e.g. `http`.
        tool: String,
        /// Arguments as a JSON object, e.g. '{"action":"request","url":"https://example.com"}'.
        #[arg(default_value = "{}")]
        args: String,
    },
    /// Show the plugins, their imports and grants; `inspect FILE.wasm` checks a binary.
    Plugins {
        /// `inspect FILE.wasm`.
        #[command(subcommand)]
        command: Option<PluginsCommand>,
    },
    /// Audit log commands.
    Audit {
        /// `verify`.
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Show the sandbox at work on an embedded default: no external services needed.
    Demo {
        /// A directory with `targets.json` (target `demo-ssh`) and `profiles.json` (profile
        /// `demo-pg`): the demo then also shows the ssh and psql tools against those servers.
        #[arg(long, value_name = "DIR")]
        servers: Option<std::path::PathBuf>,
    },
    /// Reference documents generated from the live schemas.
    Docs {
        /// `tools`.
        #[command(subcommand)]
        command: DocsCommand,
    },
}

/// `infra docs …`.
#[derive(Debug, Subcommand)]
pub enum DocsCommand {
    /// Print the tool reference (docs/tools.md) as Markdown: every tool this server lists, its
    /// actions and fields. The repository's copy is made with an empty state directory.
    Tools,
}

/// `infra plugins …`.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Read a component's real imports and compare them with its manifest and the policy.
    Inspect {
        /// The `.wasm` component; a `.toml` manifest beside it is compared when present.
        file: std::path::PathBuf,
    },
}

/// `infra audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain; names the first broken record and the calls that began and never
    /// ended (a killed server); exits non-zero only when the chain is broken.
    Verify,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    crate::logging::init(crate::redact::Redactor::process());
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("infra: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("infra: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn open_router() -> anyhow::Result<Router> {
    let state = StateDir::resolve()?;
    Router::open(state, Flags::from_env()).await
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let router = Arc::new(open_router().await?);
            crate::mcp::serve_stdio(router).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Call { tool, args } => {
            let args: serde_json::Value = serde_json::from_str(&args)
                .with_context(|| format!("the arguments are not JSON: {args}; pass one JSON object, e.g. '{{\"action\":\"list\"}}'"))?;
            let router = open_router().await?;
            let result = router
                .call(CallRequest {
                    tool,
                    args,
                    progress: None,
                    ask: None,
                })
                .await;
            println!("{}", serde_json::to_string_pretty(&result.output)?);
            Ok(if result.is_error {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Plugins { command: None } => {
            let router = open_router().await?;
            let result = router
                .call(CallRequest {
                    tool: "plugins".into(),
                    args: serde_json::json!({"action": "list"}),
                    progress: None,
                    ask: None,
                })
                .await;
            println!("{}", serde_json::to_string_pretty(&result.output)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugins {
            command: Some(PluginsCommand::Inspect { file }),
        } => {
            let router = open_router().await?;
            let report = crate::inspect::inspect_file(&router, &file).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(if report["matches_manifest"] == serde_json::json!(false) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let state = StateDir::resolve()?;
            let report = crate::audit::verify(state.audit())?;
            println!("{report}");
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Demo { servers } => crate::demo::run(servers.as_deref()).await,
        Command::Docs {
            command: DocsCommand::Tools,
        } => {
            let router = open_router().await?;
            print!("{}", crate::docs::tools_markdown(&router.tools()));
            Ok(ExitCode::SUCCESS)
        }
    }
}
