//! Cold and warm start: spawning `infra serve` until `tools/list` is answered, with an empty
//! compile cache and with a populated one (the port of scripts/startup_time.py).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::harness::{Scale, secs};
use crate::table::{Row, m, median};

/// Milliseconds from spawn to the `tools/list` answer, with the cache in `home/cache`.
fn once(home: &std::path::Path) -> Result<f64> {
    let t = Instant::now();
    let mut child = Command::new(infra_tests::infra_bin())
        .arg("serve")
        .env("INFRA_HOME", home)
        .env("INFRA_LOG", "warn")
        .env_remove("INFRA_CACHE_DIR")
        .env_remove("INFRA_POLICY")
        .env_remove("MCP_PROFILES_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("spawn infra serve")?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let msgs = [
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"infra-bench","version":"0"}}}),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}),
    ];
    let mut text = String::new();
    for msg in msgs {
        text.push_str(&msg.to_string());
        text.push('\n');
    }
    stdin.write_all(text.as_bytes())?;
    stdin.flush()?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let dt = loop {
        let Some(line) = lines.next() else {
            bail!("infra serve closed stdout before answering tools/list");
        };
        let v: Value = serde_json::from_str(&line?)?;
        if v["id"] == json!(2) {
            if v["result"]["tools"].as_array().is_none_or(|t| t.is_empty()) {
                bail!("tools/list without tools: {v}");
            }
            break secs(t) * 1000.0;
        }
    };
    drop(stdin);
    child.wait()?;
    Ok(dt)
}

/// The row: warm start in ms against cold start (ratio warm/cold), target ≤ 30 ms warm.
pub fn run(scale: Scale) -> Result<Vec<Row>> {
    let rounds = scale.n(5, 2).max(scale.reps);
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        eprintln!("[start] round {}/{rounds}", r + 1);
        let home = tempfile::tempdir()?;
        cold.push(once(home.path())?);
        for _ in 0..3 {
            warm.push(once(home.path())?);
        }
    }
    let (c, w) = (median(&cold), median(&warm));
    let range = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(0.0, f64::max);
        format!("{lo:.0}–{hi:.0}")
    };
    Ok(vec![Row {
        name: "warm start: spawn `infra serve` → `tools/list` answered, compile cache populated"
            .into(),
        infra: m(w, "ms"),
        baseline: Some((
            "cold start: same with an empty compile cache".into(),
            m(c, "ms"),
        )),
        target: Some(("warm ≤ 30 ms".into(), w <= 30.0)),
        note: format!(
            "n = {} warm (range {} ms), {} cold (range {} ms); fresh INFRA_HOME, cache in it",
            warm.len(),
            range(&warm),
            cold.len(),
            range(&cold)
        ),
    }])
}
