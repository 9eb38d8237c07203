//! `infra-bench`: runs the real infra binary over MCP against real backends on loopback and
//! prints one markdown table of medians, each beside a native baseline measured in the same run.
//!
//! `cargo run --release -p infra-bench [-- ROW… --scale F --reps N --no-build]`

mod audit;
mod concurrency;
mod harness;
mod http;
mod k8s;
mod machine;
mod noop;
mod pg;
mod pipeline;
mod repo;
mod rss;
mod ssh;
mod start;
mod table;

use anyhow::{Context, Result, bail};
use harness::Scale;
use table::Row;

/// Every row group, in the order of the table.
const ROWS: &[(&str, &str)] = &[
    (
        "ssh",
        "ssh exec true: infra vs russh in-process vs the OpenSSH client",
    ),
    (
        "export",
        "psql export of 1,000,000 rows to CSV vs psql \\copy",
    ),
    ("start", "cold and warm start of infra serve"),
    (
        "noop",
        "no-op plugin call vs a host tool call: the sandbox overhead",
    ),
    ("pg", "psql select 1: infra vs tokio-postgres vs psql -c"),
    (
        "pipeline",
        "pipeline postgres_to_sftp and http_to_postgres vs psql \\copy + sftp, curl + psql \\copy",
    ),
    ("http", "http GET 1 KiB: infra vs reqwest vs curl"),
    (
        "download",
        "http download of 1 GiB vs curl -o, and peak RSS",
    ),
    (
        "repo",
        "repo snapshot + diff on 10,000 files / 1,000 commits vs git status, diff --stat, log -20",
    ),
    (
        "k8s",
        "k8s list of 5,000 pods vs kubectl get pods -o json, same stand-in API",
    ),
    ("rss", "RSS idle vs after 10,000 calls"),
    ("concurrency", "64 calls in flight vs 1"),
    (
        "audit",
        "the audit log's cost: no-op calls 1 and 64 in flight",
    ),
];

struct Args {
    rows: Vec<String>,
    scale: Scale,
    no_build: bool,
}

fn usage() -> String {
    let mut s = String::from(
        "usage: infra-bench [ROW…] [--scale F] [--reps N] [--no-build]\n\
         \n  --scale F   multiply every iteration count and size by F (default 1; 0.1 for a quick run)\
         \n  --reps N    repetitions of each timed batch, the table shows the median (default 5)\
         \n  --no-build  do not run `cargo build -p infra` first (INFRA_BIN=path overrides the binary)\
         \n\nrows (default: all):\n",
    );
    for (name, what) in ROWS {
        s.push_str(&format!("  {name:<12} {what}\n"));
    }
    s
}

fn parse() -> Result<Args> {
    let mut args = Args {
        rows: Vec::new(),
        scale: Scale {
            factor: 1.0,
            reps: 5,
        },
        no_build: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                print!("{}", usage());
                std::process::exit(0);
            }
            "--scale" => {
                args.scale.factor = it.next().context("--scale needs a number")?.parse()?;
            }
            "--reps" => {
                args.scale.reps = it
                    .next()
                    .context("--reps needs a number")?
                    .parse::<usize>()?
                    .max(1);
            }
            "--no-build" => args.no_build = true,
            row if ROWS.iter().any(|(n, _)| *n == row) => args.rows.push(row.to_string()),
            other => bail!("unknown argument {other:?}\n\n{}", usage()),
        }
    }
    if args.rows.is_empty() {
        args.rows = ROWS.iter().map(|(n, _)| n.to_string()).collect();
    }
    Ok(args)
}

async fn run_row(name: &str, scale: Scale) -> Result<Vec<Row>> {
    match name {
        "ssh" => ssh::run(scale).await,
        "export" => pg::export(scale).await,
        "start" => tokio::task::spawn_blocking(move || start::run(scale)).await?,
        "noop" => noop::run(scale).await,
        "pg" => pg::select1(scale).await,
        "pipeline" => pipeline::run(scale).await,
        "http" => http::get(scale).await,
        "download" => http::download(scale).await,
        "repo" => repo::run(scale).await,
        "k8s" => k8s::run(scale).await,
        "rss" => rss::run(scale).await,
        "concurrency" => concurrency::run(scale).await,
        "audit" => audit::run(scale).await,
        _ => unreachable!("parse() accepts known rows only"),
    }
}

fn main() -> Result<()> {
    let args = parse()?;
    let bin = harness::resolve_infra_bin(args.no_build)?;
    // SAFETY: no other thread exists yet; the harness reads INFRA_BIN to find the binary.
    unsafe { std::env::set_var("INFRA_BIN", &bin) };
    let facts = machine::facts(&bin);
    let started = std::time::Instant::now();
    let rt = tokio::runtime::Runtime::new()?;
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for name in &args.rows {
        eprintln!("[bench] {name}");
        let t = std::time::Instant::now();
        // Spawned, so that a panic in the harness (a server that does not start) fails this
        // row and not the whole run.
        let row = name.clone();
        let task = rt.spawn(async move { run_row(&row, args.scale).await });
        let result = rt
            .block_on(task)
            .unwrap_or_else(|e| Err(anyhow::anyhow!("panicked: {e}")));
        match result {
            Ok(r) => rows.extend(r),
            Err(e) => {
                eprintln!("[bench] {name} FAILED: {e:#}");
                failures.push(format!("- `{name}` failed: {e:#}"));
            }
        }
        eprintln!("[bench] {name} took {:.1} s", t.elapsed().as_secs_f64());
    }
    drop(rt);
    println!("## infra-bench\n\n{facts}");
    println!(
        "- scale {}, {} reps per timed batch; total {:.0} s\n",
        args.scale.factor,
        args.scale.reps,
        started.elapsed().as_secs_f64()
    );
    print!("{}", table::render(&rows));
    if !failures.is_empty() {
        println!("\nFailed rows:\n{}", failures.join("\n"));
        std::process::exit(1);
    }
    Ok(())
}
