//! The cost of the sandbox: a no-op plugin tool vs a host tool, both through the MCP front.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use infra_tests::{Home, Mcp, test_plugin};
use serde_json::{Value, json};

use crate::harness::{Scale, call, serve};
use crate::table::{Row, m, median};

/// The noop test plugin's manifest, installed beside its `.wasm`.
pub const NOOP_MANIFEST: &str = include_str!("../../tests/plugins/noop/plugin.toml");

/// The host tool the no-op is compared with: `artifacts list` on an empty store reads one
/// directory and nothing else, the least work a host tool does behind the same MCP front.
pub const HOST_TOOL: (&str, &str) = ("artifacts", r#"{"action": "list"}"#);

/// Installs the noop plugin into `home`.
pub fn install_noop(home: &Home) {
    home.install_plugin("noop", &test_plugin("noop"), NOOP_MANIFEST);
}

/// The MCP name of the noop plugin's tool (from `tools/list`).
pub async fn noop_tool(mcp: &Mcp) -> Result<String> {
    let tools = mcp.client.list_all_tools().await?;
    tools
        .iter()
        .map(|t| t.name.to_string())
        .find(|n| n == "noop" || n.ends_with("noop"))
        .with_context(|| {
            let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
            format!("no noop tool in tools/list: {names:?}")
        })
}

/// `n` sequential calls of `tool`, each one's latency in µs (a failed call is an error).
pub async fn latencies(mcp: &Mcp, tool: &str, args: &Value, n: usize) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = call(mcp, tool, args).await?;
        out.push(t.elapsed().as_secs_f64() * 1e6);
        if r["ok"] != json!(true) {
            bail!("{tool}: {r}");
        }
    }
    Ok(out)
}

/// The rows: no-op plugin call vs host tool call (µs per call), and their difference.
pub async fn run(scale: Scale) -> Result<Vec<Row>> {
    let n = scale.n(1000, 20);
    let home = Home::new();
    install_noop(&home);
    let server = serve(&home, &[]).await?;
    let tool = noop_tool(&server.mcp).await?;
    let noop_args = json!({});
    let host_args: Value = serde_json::from_str(HOST_TOOL.1)?;
    latencies(&server.mcp, &tool, &noop_args, 50).await?;
    latencies(&server.mcp, HOST_TOOL.0, &host_args, 50).await?;
    let (mut plugin, mut host) = (Vec::new(), Vec::new());
    for rep in 0..scale.reps {
        eprintln!("[noop] rep {}/{}", rep + 1, scale.reps);
        // Alternating call by call, so a change in machine load hits both sides alike.
        for _ in 0..n {
            plugin.extend(latencies(&server.mcp, &tool, &noop_args, 1).await?);
            host.extend(latencies(&server.mcp, HOST_TOOL.0, &host_args, 1).await?);
        }
    }
    server.mcp.close().await;
    let (p, h) = (median(&plugin), median(&host));
    let note = format!(
        "median of {} single calls each, sequential and alternating, one session",
        plugin.len()
    );
    Ok(vec![
        Row {
            name: format!("no-op plugin tool `{tool}` (MCP round trip)"),
            infra: m(p, "µs/call"),
            baseline: Some((
                format!("host tool `{}` {}", HOST_TOOL.0, HOST_TOOL.1),
                m(h, "µs/call"),
            )),
            target: None,
            note: note.clone(),
        },
        Row {
            name: "sandbox overhead = no-op plugin − host tool".into(),
            infra: m(p - h, "µs/call"),
            baseline: None,
            target: Some(("≤ 50 µs".into(), p - h <= 50.0)),
            note,
        },
    ])
}
