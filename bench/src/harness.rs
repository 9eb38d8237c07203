//! Shared plumbing: which `infra` binary runs, its compile cache, MCP calls without the test
//! client's checks, and the process facts (pid, RSS) the rows read.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use infra_tests::{Home, Mcp};
use serde_json::Value;

/// Iteration counts and repetitions for one run.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Multiplies every iteration count (a quick run uses e.g. 0.1).
    pub factor: f64,
    /// Repetitions of each timed batch; the table shows their median.
    pub reps: usize,
}

impl Scale {
    /// `n` scaled, never below `min`.
    pub fn n(&self, n: usize, min: usize) -> usize {
        ((n as f64 * self.factor).round() as usize).max(min)
    }
}

/// The `infra` binary next to this one (same target dir and profile), built first unless
/// `no_build`; `INFRA_BIN` overrides. A bench built with `--release` so measures a release infra.
pub fn resolve_infra_bin(no_build: bool) -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("INFRA_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("target/<profile>")?;
    let profile = dir
        .file_name()
        .and_then(|p| p.to_str())
        .context("profile dir")?
        .to_string();
    let target = dir.parent().context("target/")?;
    let bin = dir.join("infra");
    if !no_build {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("workspace")?;
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        eprintln!("[bench] cargo build --profile {profile} -p infra (a no-op when up to date)");
        let profile_arg = if profile == "debug" { "dev" } else { &profile };
        let status = Command::new(cargo)
            .current_dir(workspace)
            .args([
                "build",
                "-q",
                "-p",
                "infra",
                "--profile",
                profile_arg,
                "--target-dir",
            ])
            .arg(target)
            .status()
            .context("run cargo build -p infra")?;
        if !status.success() {
            bail!("cargo build -p infra failed");
        }
    }
    if !bin.is_file() {
        bail!(
            "{} is missing: run `cargo build --release -p infra` (or set INFRA_BIN)",
            bin.display()
        );
    }
    Ok(bin)
}

/// The compile cache every benchmark server shares (except the start rows, which need their own),
/// so that only the first server of a run compiles the plugins.
pub fn cache_dir() -> PathBuf {
    let bin = infra_tests::infra_bin();
    bin.parent()
        .and_then(Path::parent)
        .map(|t| t.join("bench-cache"))
        .unwrap_or_else(|| std::env::temp_dir().join("infra-bench-cache"))
}

/// Pids of running processes whose executable is the infra binary.
pub fn infra_pids() -> BTreeSet<u32> {
    let bin = std::fs::canonicalize(infra_tests::infra_bin()).unwrap_or_default();
    let mut out = BTreeSet::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if std::fs::read_link(e.path().join("exe")).is_ok_and(|p| p == bin) {
                out.insert(pid);
            }
        }
    }
    out
}

/// A running `infra serve` with its pid.
pub struct Server {
    /// The MCP session.
    pub mcp: Mcp,
    /// The server process.
    pub pid: u32,
}

/// Starts `infra serve` on `home` with the bench cache and `env`, and finds its pid.
pub async fn serve(home: &Home, env: &[(&str, &str)]) -> Result<Server> {
    let before = infra_pids();
    let cache = cache_dir();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mcp = home
        .mcp_with(move |c| {
            c.env("INFRA_CACHE_DIR", &cache);
            for (k, v) in &env {
                c.env(k, v);
            }
        })
        .await;
    let new: Vec<u32> = infra_pids().difference(&before).copied().collect();
    let [pid] = new[..] else {
        bail!("expected one new infra process, found {new:?}");
    };
    Ok(Server { mcp, pid })
}

/// `tools/call` returning structuredContent; an `isError` result is an error.
pub async fn call(mcp: &Mcp, tool: &str, args: &Value) -> Result<Value> {
    let mut params = rmcp::model::CallToolRequestParams::new(tool.to_string());
    if let Value::Object(map) = args.clone() {
        params = params.with_arguments(map);
    }
    let r = mcp.client.call_tool(params).await?;
    let out = r.structured_content.unwrap_or_default();
    if r.is_error == Some(true) {
        bail!("{tool} {args} failed: {out}");
    }
    Ok(out)
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
pub fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// Seconds since `t`.
pub fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// The file an `artifact://` URI names in `home`.
pub fn artifact_path(home: &Home, out: &Value) -> Result<PathBuf> {
    let uri = out
        .pointer("/artifact/uri")
        .and_then(Value::as_str)
        .with_context(|| format!("no artifact in {out}"))?;
    Ok(home.path().join("artifacts").join(
        uri.strip_prefix("artifact://")
            .context("an artifact:// uri")?,
    ))
}

/// Wall time of `cmd` run to completion with its output discarded; fails when it fails.
/// The wait leaves its runtime worker first: a task parked on this worker (the in-process
/// server the command talks to) would otherwise never run, and the command would hang.
pub fn run_quiet(cmd: &mut Command) -> Result<f64> {
    let t = Instant::now();
    let out = tokio::task::block_in_place(|| {
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
    })?;
    let dt = secs(t);
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(dt)
}
