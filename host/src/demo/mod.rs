//! `infra demo`: the main job on an embedded default, with no external services. It starts its
//! own loopback HTTP server, makes sandboxed calls through the http plugin (one with a profile
//! whose token the host injects), shows calls denied by policy, and verifies the audit chain.
//!
//! It also makes a small git repository and runs in it, so that the embedded default policy's
//! `workspace` root (the directory infra starts in) is that repository: the repo plugin reads it
//! with `snapshot`, and the `local` tool is shown to be off without `INFRA_UNSAFE_LOCAL=1`.
//!
//! Given `--servers DIR` (a `targets.json` with target `demo-ssh`, a `profiles.json` with
//! profile `demo-pg`; `scripts/demo.sh` makes them when sshd and PostgreSQL are installed) it
//! also shows the ssh and psql tools against those servers.

mod http;
mod psql;
mod repo;
mod server;
mod ssh;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};

use self::server::DemoServer;
use crate::flags::Flags;
use crate::router::Router;
use crate::state::StateDir;
use crate::tool::{CallRequest, Dispatch};

/// The target of `--servers` the ssh steps use.
const SSH_TARGET: &str = "demo-ssh";
/// The profile of `--servers` the psql steps use.
const PG_PROFILE: &str = "demo-pg";

struct Demo {
    router: Router,
    step: usize,
    failures: Vec<String>,
}

impl Demo {
    async fn call(&mut self, title: &str, tool: &str, args: Value) -> (bool, Value) {
        self.step += 1;
        println!("\n── {}. {title}", self.step);
        println!("   call  {tool} {args}");
        let r = self
            .router
            .call(CallRequest {
                tool: tool.into(),
                args,
                progress: None,
                ask: None,
            })
            .await;
        (r.is_error, r.output)
    }

    fn expect(&mut self, what: &str, ok: bool) {
        println!("   {} {what}", if ok { "✓" } else { "✗" });
        if !ok {
            self.failures.push(what.to_string());
        }
    }
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.len() > 160 {
        format!(
            "{}…",
            &text[..text.char_indices().nth(160).map_or(text.len(), |(i, _)| i)]
        )
    } else {
        text
    }
}

/// Reads `name` (a JSON object) from the `--servers` directory; empty when absent.
fn servers_file(dir: Option<&Path>, name: &str) -> anyhow::Result<serde_json::Map<String, Value>> {
    let Some(dir) = dir else {
        return Ok(Default::default());
    };
    let path = dir.join(name);
    match crate::state::read_optional(&path)? {
        None => Ok(Default::default()),
        Some(text) => serde_json::from_str(&text)
            .with_context(|| format!("{} is not a JSON object of entries", path.display())),
    }
}

/// Runs the demo; exits non-zero if any step did not behave as shown.
pub async fn run(servers: Option<&Path>) -> anyhow::Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("infra-demo-{}", std::process::id()));
    let state = StateDir::at(&dir)?;
    let server = DemoServer::start().await?;
    let token = format!("demo-{:032x}", rand::random::<u128>());
    std::fs::write(dir.join("demo-token"), &token)?;
    let mut profiles = servers_file(servers, "profiles.json")?;
    profiles.insert(
        "demo-api".into(),
        json!({"type": "http", "base_url": server.base_url(),
               "auth": {"type": "bearer", "token": format!("file:{}", dir.join("demo-token").display())}}),
    );
    std::fs::write(state.profiles(), serde_json::to_string_pretty(&profiles)?)?;
    let targets = servers_file(servers, "targets.json")?;
    std::fs::write(
        state.root().join("targets.json"),
        serde_json::to_string_pretty(&targets)?,
    )?;
    println!(
        "infra demo — every tool runs as a sandboxed WebAssembly component; the host does all I/O."
    );
    println!("state directory: {} (temporary)", dir.display());
    println!("loopback HTTP server: {}", server.base_url());
    // infra runs in the repository it made, as an MCP client starts it in a project: the
    // default policy's `workspace` root is the directory infra starts in.
    let started_in = std::env::current_dir().context("reading the current directory")?;
    let repo = repo::make(&dir)?;
    if let Some(repo) = &repo {
        std::env::set_current_dir(repo).with_context(|| format!("entering {}", repo.display()))?;
        println!("git repository (infra runs in it): {}", repo.display());
    }
    let flags = Flags::from_env();
    let router = Router::open(state.clone(), flags).await?;
    let mut d = Demo {
        router,
        step: 0,
        failures: Vec::new(),
    };

    let (_, out) = d
        .call(
            "What is loaded, and what may it reach?",
            "plugins",
            json!({"action": "list"}),
        )
        .await;
    for p in out["plugins"].as_array().into_iter().flatten() {
        println!(
            "   plugin {} sha256 {}…",
            p["name"].as_str().unwrap_or("?"),
            &p["sha256"].as_str().unwrap_or("?")[..12]
        );
        println!(
            "     imports (read from the binary): {}",
            p["actual_imports"]
        );
        println!(
            "     granted by {}: {}",
            out["policy"].as_str().unwrap_or("?"),
            short(&p["grants"])
        );
    }
    d.expect(
        "the http plugin is loaded",
        out["plugins"]
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p["name"] == "http")),
    );

    http::steps(&mut d, &server, &token).await;
    if repo.is_some() {
        repo::steps(&mut d, flags).await;
    }
    if targets.contains_key(SSH_TARGET) {
        ssh::steps(&mut d, SSH_TARGET).await;
    }
    if profiles.contains_key(PG_PROFILE) {
        psql::steps(&mut d, PG_PROFILE).await;
    }
    if servers.is_none() {
        println!(
            "\n   (sshd and PostgreSQL: `scripts/demo.sh` adds the ssh and psql tools when they are installed)"
        );
    }

    let (_, out) = d
        .call(
            "The audit log: hash-chained begin and end records around every call",
            "audit",
            json!({"action": "verify"}),
        )
        .await;
    println!("   → {}", out["report"].as_str().unwrap_or("?"));
    d.expect("the audit chain verifies", out["valid"] == true);

    drop(d.router);
    // Back out of the repository before removing it.
    let _ = std::env::set_current_dir(&started_in);
    let _ = std::fs::remove_dir_all(&dir);
    println!();
    if d.failures.is_empty() {
        println!(
            "demo finished: every step behaved as shown. Next: add infra to your MCP client (README.md)."
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "demo finished with {} unexpected result(s): {}",
            d.failures.len(),
            d.failures.join("; ")
        );
        Ok(ExitCode::FAILURE)
    }
}
