//! `infra demo`: the main job on an embedded default, with no external services. It starts its
//! own loopback HTTP server, makes sandboxed calls through the http plugin (one with a profile
//! whose token the host injects), shows calls denied by policy, and verifies the audit chain.

use std::process::ExitCode;

use serde_json::{Value, json};

use crate::fixture_server::FixtureServer;
use crate::flags::Flags;
use crate::router::Router;
use crate::state::StateDir;
use crate::tool::{CallRequest, Dispatch};

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

/// Runs the demo; exits non-zero if any step did not behave as shown.
pub async fn run() -> anyhow::Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("infra-demo-{}", std::process::id()));
    let state = StateDir::at(&dir)?;
    let server = FixtureServer::start().await?;
    let token = format!("demo-{:032x}", rand::random::<u128>());
    std::fs::write(dir.join("demo-token"), &token)?;
    std::fs::write(
        state.profiles(),
        serde_json::to_string_pretty(&json!({
            "demo-api": {"type": "http", "base_url": server.base_url(),
                         "auth": {"type": "bearer", "token": format!("file:{}", dir.join("demo-token").display())}}
        }))?,
    )?;
    println!(
        "infra demo — every tool runs as a sandboxed WebAssembly component; the host does all I/O."
    );
    println!("state directory: {} (temporary)", dir.display());
    println!("loopback HTTP server: {}", server.base_url());
    let router = Router::open(state.clone(), Flags::from_env()).await?;
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

    let base = server.base_url();
    let (err, out) = d
        .call(
            "A plain GET, made by the host on the plugin's behalf",
            "http",
            json!({"action": "request", "url": format!("{base}/hello")}),
        )
        .await;
    println!("   → status {} json {}", out["status"], out["json"]);
    d.expect("GET /hello answered 200", !err && out["status"] == 200);

    let (err, out) = d
        .call(
            "A call with a profile: the host injects the bearer token; the plugin never holds it",
            "http",
            json!({"action": "request", "profile": "demo-api", "url": "/reflect-auth"}),
        )
        .await;
    let reached = server.seen().iter().any(|s| {
        s.headers
            .iter()
            .any(|(k, v)| k == "authorization" && v == &format!("Bearer {token}"))
    });
    println!(
        "   → the server echoed back what it received: {}",
        out["json"]
    );
    d.expect("the token reached the server", !err && reached);
    d.expect(
        "the token does not appear in the tool output (scrubbed by the host)",
        !out.to_string().contains(&token),
    );

    let (err, out) = d
        .call(
            "Pagination by Link header",
            "http",
            json!({"action": "paginate", "url": format!("{base}/items?per_page=10&total=35")}),
        )
        .await;
    println!(
        "   → {} items over {} pages",
        out["items"].as_array().map_or(0, Vec::len),
        out["pages"]
    );
    d.expect(
        "35 items over 4 pages",
        !err && out["items"].as_array().map_or(0, Vec::len) == 35 && out["pages"] == 4,
    );

    let (err, out) = d
        .call(
            "A download streamed by the host into the artifact store",
            "http",
            json!({"action": "download", "url": format!("{base}/bytes?n=1048576")}),
        )
        .await;
    println!(
        "   → {} ({} bytes, sha256 {}…)",
        out["artifact"]["uri"],
        out["artifact"]["size"],
        out["artifact"]["sha256"]
            .as_str()
            .unwrap_or("?")
            .get(..12)
            .unwrap_or("?")
    );
    d.expect(
        "1 MiB stored as an artifact",
        !err && out["artifact"]["size"] == 1_048_576,
    );

    let (err, out) = d
        .call(
            "Denied by policy: the cloud metadata endpoint",
            "http",
            json!({"action": "request", "url": "http://169.254.169.254/latest/meta-data/"}),
        )
        .await;
    println!("   → {}", out["error"]["message"].as_str().unwrap_or("?"));
    d.expect(
        "denied, with the policy line to change",
        err && out["error"]["kind"] == "denied",
    );

    let (err, out) = d.call(
        "Denied mid-flight: a granted server redirects to the metadata endpoint",
        "http",
        json!({"action": "request", "url": format!("{base}/redirect?to=http://169.254.169.254/latest/meta-data/")}),
    )
    .await;
    println!("   → {}", out["error"]["message"].as_str().unwrap_or("?"));
    d.expect(
        "the redirect hop was re-checked and denied",
        err && out["error"]["kind"] == "denied",
    );

    let (_, out) = d
        .call(
            "The audit log: one hash-chained record per call",
            "audit",
            json!({"action": "verify"}),
        )
        .await;
    println!("   → {}", out["report"].as_str().unwrap_or("?"));
    d.expect("the audit chain verifies", out["valid"] == true);

    drop(d.router);
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
