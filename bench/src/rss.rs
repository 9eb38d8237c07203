//! Resident memory of `infra serve`: idle with every plugin instantiated, and after many calls.

use std::time::Duration;

use anyhow::Result;
use infra_tests::Home;
use infra_tests::fixture_server::FixtureServer;
use serde_json::{Value, json};

use crate::harness::{Scale, call, serve, status_kib};
use crate::noop::{install_noop, noop_tool};
use crate::table::{Row, m};

/// One call of each plugin: the psql and ssh calls name an unknown profile or target, which
/// still runs their plugin instance and needs no server.
fn mix(noop: &str, fixture: &FixtureServer) -> Vec<(String, Value)> {
    vec![
        (noop.to_string(), json!({})),
        (
            "http".into(),
            json!({"action": "request", "url": format!("{}/bytes?n=1024", fixture.base_url())}),
        ),
        (
            "psql".into(),
            json!({"action": "query", "profile": "none", "sql": "select 1"}),
        ),
        (
            "ssh".into(),
            json!({"action": "exec", "target": "none", "command": "true"}),
        ),
    ]
}

/// The row: VmRSS after N calls vs VmRSS idle (target ≤ 1.1×).
pub async fn run(scale: Scale) -> Result<Vec<Row>> {
    let n = scale.n(10_000, 100);
    let fixture = FixtureServer::start().await?;
    let home = Home::new();
    install_noop(&home);
    let server = serve(&home, &[]).await?;
    let noop = noop_tool(&server.mcp).await?;
    let calls = mix(&noop, &fixture);
    // Each plugin runs once before "idle", so idle means loaded and instantiated; a refused
    // psql/ssh call (unknown profile/target) is an error result, which is fine here.
    for _ in 0..3 {
        for (tool, args) in &calls {
            let _ = call(&server.mcp, tool, args).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = status_kib(server.pid, "VmRSS")?;
    eprintln!("[rss] idle {idle} KiB; {n} calls");
    for i in 0..n {
        let (tool, args) = &calls[i % calls.len()];
        let _ = call(&server.mcp, tool, args).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = status_kib(server.pid, "VmRSS")?;
    let hwm = status_kib(server.pid, "VmHWM")?;
    server.mcp.close().await;
    let (idle, after) = (idle as f64 / 1024.0, after as f64 / 1024.0);
    Ok(vec![Row {
        name: format!("RSS (VmRSS) of infra serve after {n} calls"),
        infra: m(after, "MiB"),
        baseline: Some((
            "idle RSS, every plugin loaded and called 3×".into(),
            m(idle, "MiB"),
        )),
        target: Some(("≤ 1.1×".into(), after <= idle * 1.1)),
        note: format!(
            "calls rotate {noop}, http GET 1 KiB, psql and ssh (refused: unknown profile/target); VmHWM {:.1} MiB",
            hwm as f64 / 1024.0
        ),
    }])
}
