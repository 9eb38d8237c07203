//! What the audit log costs a call: no-op plugin calls one at a time and 64 in flight. Every
//! call writes a begin record before it runs and an end record after, each durable
//! (`fdatasync`) before the call goes on; calls in flight share syncs (group commit).

use anyhow::Result;
use serde_json::{Value, json};

use crate::concurrency::throughput;
use crate::harness::{Scale, serve};
use crate::noop::{install_noop, latencies, noop_tool};
use crate::table::{Row, m, median};

/// In flight at once in the concurrent run.
const IN_FLIGHT: usize = 64;

/// The rows: µs per no-op call sequentially and with 64 in flight, and syncs per call.
pub async fn run(scale: Scale) -> Result<Vec<Row>> {
    let n = scale.n(1000, 20);
    let home = infra_tests::Home::new();
    install_noop(&home);
    let server = serve(&home, &[]).await?;
    let tool = noop_tool(&server.mcp).await?;
    let args = json!({});
    latencies(&server.mcp, &tool, &args, 50).await?;
    let calls: Vec<(String, Value)> = (0..n).map(|_| (tool.clone(), args.clone())).collect();
    throughput(&server.mcp, &calls, IN_FLIGHT).await?;
    let (mut serial, mut parallel) = (Vec::new(), Vec::new());
    for rep in 0..scale.reps {
        eprintln!("[audit] rep {}/{}: {n} calls", rep + 1, scale.reps);
        serial.push(median(&latencies(&server.mcp, &tool, &args, n).await?));
        parallel.push(1e6 / throughput(&server.mcp, &calls, IN_FLIGHT).await?);
    }
    server.mcp.close().await;
    let records = std::fs::read_to_string(home.path().join("audit.jsonl"))?
        .lines()
        .count();
    let note = format!(
        "no-op plugin `{tool}`, {n} calls per rep, {} reps; {records} records in the log",
        scale.reps
    );
    Ok(vec![
        Row {
            name: "audited no-op call, 1 in flight".into(),
            infra: m(median(&serial), "µs/call"),
            baseline: None,
            target: None,
            note: note.clone(),
        },
        Row {
            name: format!("audited no-op calls, {IN_FLIGHT} in flight"),
            infra: m(median(&parallel), "µs/call"),
            baseline: None,
            target: None,
            note,
        },
    ])
}
