//! Throughput with 64 calls in flight across plugins vs one at a time, on one MCP session.

use std::time::Instant;

use anyhow::{Result, bail};
use futures::StreamExt as _;
use infra_tests::Home;
use infra_tests::fixture_server::FixtureServer;
use infra_tests::pg::PgServer;
use infra_tests::sshd::Sshd;
use serde_json::{Value, json};

use crate::harness::{Scale, call, secs, serve};
use crate::noop::{install_noop, noop_tool};
use crate::pg::{PASSWORD, PW_VAR};
use crate::table::{Row, m, median};

/// In flight at once in the concurrent run.
const IN_FLIGHT: usize = 64;

/// Runs every call with at most `width` in flight; the calls per second.
pub async fn throughput(
    mcp: &infra_tests::Mcp,
    calls: &[(String, Value)],
    width: usize,
) -> Result<f64> {
    let t = Instant::now();
    // Owned items: a stream over borrowed ones is not `Send` for a spawned task (rust#110338).
    let results: Vec<Result<Value>> = futures::stream::iter(calls.to_vec())
        .map(|(tool, args)| async move { call(mcp, &tool, &args).await })
        .buffer_unordered(width)
        .collect()
        .await;
    let dt = secs(t);
    for r in results {
        let out = r?;
        if out["ok"] != json!(true) {
            bail!("concurrent call: {out}");
        }
    }
    Ok(calls.len() as f64 / dt)
}

/// The row: 64 in flight vs 1 in flight, the same mix of noop, http, psql and ssh calls.
pub async fn run(scale: Scale) -> Result<Vec<Row>> {
    let n = scale.n(512, 16);
    let fixture = FixtureServer::start().await?;
    let sshd = Sshd::start_with(infra_tests::sshd::QUIET_SHELL);
    let pg = PgServer::start();
    pg.create_db("app", PASSWORD);
    let home = Home::new();
    install_noop(&home);
    home.profiles(&json!({
        "db": {"type": "postgres", "host": "127.0.0.1", "port": pg.port, "user": "app",
               "database": "app", "password": format!("env:{PW_VAR}")},
    }));
    std::fs::write(
        home.path().join("targets.json"),
        json!({"plain": sshd.target(false, None)}).to_string(),
    )?;
    let server = serve(&home, &[(PW_VAR, PASSWORD)]).await?;
    let noop = noop_tool(&server.mcp).await?;
    let kinds = [
        (noop.clone(), json!({})),
        (
            "http".to_string(),
            json!({"action": "request", "url": format!("{}/bytes?n=1024", fixture.base_url())}),
        ),
        (
            "psql".to_string(),
            json!({"action": "query", "profile": "db", "sql": "select 1"}),
        ),
        (
            "ssh".to_string(),
            json!({"action": "exec", "target": "plain", "command": "true"}),
        ),
    ];
    let calls: Vec<(String, Value)> = (0..n).map(|i| kinds[i % kinds.len()].clone()).collect();
    // Warm: connections, pools and instances exist before timing, also for 64 in flight.
    throughput(&server.mcp, &calls[..kinds.len() * 2], 1).await?;
    throughput(&server.mcp, &calls, IN_FLIGHT).await?;
    let (mut serial, mut parallel) = (Vec::new(), Vec::new());
    for rep in 0..scale.reps {
        eprintln!("[concurrency] rep {}/{}: {n} calls", rep + 1, scale.reps);
        serial.push(throughput(&server.mcp, &calls, 1).await?);
        parallel.push(throughput(&server.mcp, &calls, IN_FLIGHT).await?);
    }
    server.mcp.close().await;
    drop(pg);
    drop(sshd);
    let (s, p) = (median(&serial), median(&parallel));
    Ok(vec![Row {
        name: format!("{IN_FLIGHT} calls in flight across plugins"),
        infra: m(p, "calls/s"),
        baseline: Some(("same calls, 1 in flight".into(), m(s, "calls/s"))),
        target: None,
        note: format!(
            "{n} calls rotating {noop}, http GET 1 KiB, psql select 1, ssh exec true; one MCP session; {} reps",
            scale.reps
        ),
    }])
}
