//! HTTP through the http plugin: 1 KiB GETs vs reqwest in-process and `curl` per call, and a
//! large download into an artifact vs `curl -o`, with the infra process's peak RSS.

use std::process::Command;
use std::time::Instant;

use anyhow::{Result, bail};
use infra_tests::Home;
use infra_tests::fixture_server::FixtureServer;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Scale, artifact_path, call, run_quiet, secs, serve, status_kib};
use crate::table::{Row, m, median};

/// The GET rows: 1 KiB from the loopback fixture server.
pub async fn get(scale: Scale) -> Result<Vec<Row>> {
    let n = scale.n(1000, 10);
    let n_curl = scale.n(100, 5);
    let fixture = FixtureServer::start().await?;
    let url = format!("{}/bytes?n=1024", fixture.base_url());
    let home = Home::new();
    let server = serve(&home, &[]).await?;
    let args = json!({"action": "request", "url": url});
    let check = |out: &serde_json::Value| -> Result<()> {
        if out["ok"] != json!(true) || out["body_base64"].as_str().is_none_or(|b| b.len() != 1368) {
            bail!("GET 1 KiB: {out}");
        }
        Ok(())
    };
    for _ in 0..5 {
        check(&call(&server.mcp, "http", &args).await?)?;
    }
    let client = reqwest::Client::new();
    let (mut infra, mut native, mut curl) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..scale.reps {
        eprintln!("[http] rep {}/{}", rep + 1, scale.reps);
        let t = Instant::now();
        for _ in 0..n {
            check(&call(&server.mcp, "http", &args).await?)?;
        }
        infra.push(n as f64 / secs(t));
        let t = Instant::now();
        for _ in 0..n {
            let body = client
                .get(&url)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            if body.len() != 1024 {
                bail!("reqwest: {} bytes", body.len());
            }
        }
        native.push(n as f64 / secs(t));
        let t = Instant::now();
        for _ in 0..n_curl {
            run_quiet(Command::new("curl").args(["-sSf", "-o", "/dev/null", &url]))?;
        }
        curl.push(n_curl as f64 / secs(t));
    }
    server.mcp.close().await;
    let (infra, native, curl) = (median(&infra), median(&native), median(&curl));
    Ok(vec![
        Row {
            name: format!("http GET 1 KiB ×{n} (loopback)"),
            infra: m(infra, "calls/s"),
            baseline: Some((
                "reqwest in-process, one client (keep-alive)".into(),
                m(native, "calls/s"),
            )),
            target: Some(("≥ 0.9×".into(), infra / native >= 0.9)),
            note: format!("{n} sequential calls × {} reps", scale.reps),
        },
        Row {
            name: "http GET 1 KiB".into(),
            infra: m(infra, "calls/s"),
            baseline: Some((
                "`curl -o /dev/null`, one process per call".into(),
                m(curl, "calls/s"),
            )),
            target: None,
            note: format!("{n_curl} curl runs × {} reps", scale.reps),
        },
    ])
}

/// A loopback server that streams `size` bytes of a fixed pattern per request and closes: the
/// fixture server builds a body in memory, which for a gigabyte would measure the server.
async fn stream_server(size: u64) -> Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let url = format!("http://{}/big", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let chunk: std::sync::Arc<Vec<u8>> =
            std::sync::Arc::new((0..1 << 20).map(|i| (i % 251) as u8).collect());
        while let Ok((mut sock, _)) = listener.accept().await {
            let chunk = chunk.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => head.extend_from_slice(&buf[..k]),
                    }
                }
                let header = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {size}\r\nconnection: close\r\n\r\n"
                );
                if sock.write_all(header.as_bytes()).await.is_err() {
                    return;
                }
                let mut left = size;
                while left > 0 {
                    let k = left.min(chunk.len() as u64) as usize;
                    if sock.write_all(&chunk[..k]).await.is_err() {
                        return;
                    }
                    left -= k as u64;
                }
                let _ = sock.shutdown().await;
            });
        }
    });
    Ok((url, task))
}

fn sha_file(path: &std::path::Path) -> Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// The download rows: MB/s vs `curl -o FILE`, and the peak RSS of the infra process.
pub async fn download(scale: Scale) -> Result<Vec<Row>> {
    let size = (scale.n(1024, 16) as u64) << 20;
    let (url, task) = stream_server(size).await?;
    let home = Home::new();
    let server = serve(&home, &[]).await?;
    // A small call first, so the peak before the downloads includes the plugin's instance.
    let fixture = FixtureServer::start().await?;
    call(
        &server.mcp,
        "http",
        &json!({"action": "request", "url": format!("{}/hello", fixture.base_url())}),
    )
    .await?;
    let hwm_before = status_kib(server.pid, "VmHWM")?;
    let args = json!({"action": "download", "url": url, "max_bytes": size, "timeout_ms": 600000});
    let curl_file = home.path().join("curl.out");
    let (mut infra, mut native, mut native_hashed) = (Vec::new(), Vec::new(), Vec::new());
    let mut expected_sha = None;
    for rep in 0..scale.reps {
        eprintln!(
            "[download] rep {}/{}: {} MiB each",
            rep + 1,
            scale.reps,
            size >> 20
        );
        let t = Instant::now();
        let out = call(&server.mcp, "http", &args).await?;
        let dt = secs(t);
        if out["artifact"]["size"] != json!(size) {
            bail!("download: {out}");
        }
        std::fs::remove_file(artifact_path(&home, &out)?)?;
        let t = Instant::now();
        run_quiet(
            Command::new("curl")
                .args(["-sSf", "-o"])
                .arg(&curl_file)
                .arg(&url),
        )?;
        let dt_curl = secs(t);
        // What infra delivers besides the bytes: their sha256 (and a sync, not counted here).
        // OpenSSL's sha256 uses the CPU's SHA extensions, as infra's does (coreutils' does not).
        let dt_sha = run_quiet(
            Command::new("openssl")
                .args(["dgst", "-sha256"])
                .arg(&curl_file),
        )?;
        let got = std::fs::metadata(&curl_file)?.len();
        if got != size {
            bail!("curl wrote {got} bytes, expected {size}");
        }
        if expected_sha.is_none() {
            let sha = sha_file(&curl_file)?;
            if out["artifact"]["sha256"] != json!(sha) {
                bail!("artifact sha256 differs from curl's file: {out}");
            }
            expected_sha = Some(sha);
        }
        std::fs::remove_file(&curl_file)?;
        infra.push(size as f64 / 1e6 / dt);
        native.push(size as f64 / 1e6 / dt_curl);
        native_hashed.push(size as f64 / 1e6 / (dt_curl + dt_sha));
    }
    let hwm = status_kib(server.pid, "VmHWM")?;
    server.mcp.close().await;
    task.abort();
    let (infra, native, native_hashed) = (median(&infra), median(&native), median(&native_hashed));
    let mib = size >> 20;
    let hwm_mib = hwm as f64 / 1024.0;
    Ok(vec![
        Row {
            name: format!("http download {mib} MiB → artifact (loopback)"),
            infra: m(infra, "MB/s"),
            baseline: Some(("`curl -o FILE`".into(), m(native, "MB/s"))),
            target: Some(("≥ 0.8×".into(), infra / native >= 0.8)),
            note: format!("{size} bytes both sides, sha256 equal; {} reps", scale.reps),
        },
        Row {
            name: format!("http download {mib} MiB → artifact (loopback)"),
            infra: m(infra, "MB/s"),
            baseline: Some((
                "`curl -o FILE` then `openssl dgst -sha256 FILE` (the same result: bytes and digest)".into(),
                m(native_hashed, "MB/s"),
            )),
            target: None,
            note: "infra also syncs the artifact to disk before it is listed; curl's file is never synced".into(),
        },
        Row {
            name: format!("peak RSS (VmHWM) of infra serve during {mib} MiB downloads"),
            infra: m(hwm_mib, "MiB"),
            baseline: None,
            target: Some(("< 100 MiB".into(), hwm_mib < 100.0)),
            note: format!(
                "VmHWM before the downloads: {:.1} MiB",
                hwm_before as f64 / 1024.0
            ),
        },
    ])
}
