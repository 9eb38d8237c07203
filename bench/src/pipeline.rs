//! The pipeline plugin's flows against the same transfer done by hand: `postgres_to_sftp` vs
//! `psql \copy` to a file then `sftp put`, and `http_to_postgres` vs `curl -o` then `psql \copy
//! from` — each side checked at the destination (sha256 of the file, rows in the table).

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use infra_tests::data_server::DataServer;
use infra_tests::sshd::Sshd;
use serde_json::json;

use crate::harness::{Scale, call, run_quiet, secs, serve};
use crate::pg::{PASSWORD, PW_VAR, QUERY, prepare, psql_client, sha_file};
use crate::table::{Row, m, median};

/// `sftp` in batch mode, key auth, the host key pinned in `known_hosts`.
fn sftp(sshd: &Sshd, known_hosts: &std::path::Path, batch: &std::path::Path) -> Command {
    let mut c = crate::ssh::openssh_client("sftp", sshd, known_hosts);
    c.arg("-b")
        .arg(batch)
        .arg(format!("{}@127.0.0.1", sshd.user));
    c
}

/// Both rows, on one PostgreSQL, sshd and HTTP server.
pub async fn run(scale: Scale) -> Result<Vec<Row>> {
    let rows = scale.n(1_000_000, 1000);
    eprintln!("[pipeline] creating {rows} rows");
    let (pg, home) = prepare(rows);
    pg.psql(
        "app",
        "CREATE TABLE landing (LIKE big); ALTER TABLE landing OWNER TO app",
    );
    let sshd = Sshd::start();
    std::fs::write(
        home.path().join("targets.json"),
        json!({"box": sshd.target(false, None)}).to_string(),
    )?;
    let host_pub = std::fs::read_to_string(sshd.dir().join("host_ed25519.pub"))?;
    let known_hosts = sshd.dir().join("bench_known_hosts");
    std::fs::write(
        &known_hosts,
        format!("[127.0.0.1]:{} {host_pub}", sshd.port),
    )?;
    let work = tempfile::tempdir()?;
    let csv = pg.copy_out(
        "app",
        &format!("COPY ({QUERY}) TO STDOUT (FORMAT csv, HEADER)"),
    );
    let size = csv.len() as u64;
    let http = DataServer::start(csv).await?;
    let server = serve(&home, &[(PW_VAR, PASSWORD)]).await?;

    // postgres_to_sftp
    let infra_dest = work.path().join("infra.csv");
    let native_dest = work.path().join("native.csv");
    let local = work.path().join("local.csv");
    let batch = work.path().join("put.batch");
    std::fs::write(
        &batch,
        format!("put {} {}\n", local.display(), native_dest.display()),
    )?;
    let to_sftp = json!({"action": "run", "flow": "postgres_to_sftp", "apply": true,
        "source": {"profile": "db", "sql": QUERY},
        "destination": {"target": "box", "path": infra_dest.display().to_string(), "overwrite": true},
        "timeout_ms": 600000});
    let copy_out = format!("\\copy ({QUERY}) to '{}' csv header", local.display());
    let (mut infra, mut native) = (Vec::new(), Vec::new());
    for rep in 0..=scale.reps {
        eprintln!("[pipeline] postgres_to_sftp rep {rep}/{}", scale.reps);
        let t = Instant::now();
        let out = call(&server.mcp, "pipeline", &to_sftp).await?;
        let dt = secs(t);
        if out["rows"] != json!(rows) {
            bail!("postgres_to_sftp: {out}");
        }
        let t = Instant::now();
        run_quiet(psql_client(&pg)?.args(["-c", &copy_out]))?;
        run_quiet(&mut sftp(&sshd, &known_hosts, &batch)).context("sftp put")?;
        let dt_native = secs(t);
        let (a, b) = (sha_file(&infra_dest)?, sha_file(&native_dest)?);
        if a != b || a.0 != size || out["sha256"] != json!(a.1) {
            bail!("postgres_to_sftp: files differ: {a:?} vs {b:?}; {out}");
        }
        if rep > 0 {
            infra.push(size as f64 / 1e6 / dt);
            native.push(size as f64 / 1e6 / dt_native);
        }
    }
    let (i1, n1) = (median(&infra), median(&native));

    // http_to_postgres
    let url = format!("{}/data", http.base_url());
    let to_pg = json!({"action": "run", "flow": "http_to_postgres", "apply": true,
        "source": {"url": url},
        "destination": {"profile": "db", "table": "landing"},
        "timeout_ms": 600000});
    let fetched = work.path().join("fetched.csv");
    let copy_in = format!("\\copy landing from '{}' csv header", fetched.display());
    let count = |pg: &infra_tests::pg::PgServer| pg.psql("app", "SELECT count(*) FROM landing");
    let (mut infra, mut native) = (Vec::new(), Vec::new());
    for rep in 0..=scale.reps {
        eprintln!("[pipeline] http_to_postgres rep {rep}/{}", scale.reps);
        pg.psql("app", "TRUNCATE landing");
        let t = Instant::now();
        let out = call(&server.mcp, "pipeline", &to_pg).await?;
        let dt = secs(t);
        if out["rows"] != json!(rows) || count(&pg) != rows.to_string() {
            bail!("http_to_postgres: {out}");
        }
        pg.psql("app", "TRUNCATE landing");
        let t = Instant::now();
        run_quiet(
            Command::new("curl")
                .args(["-sSf", "-o"])
                .arg(&fetched)
                .arg(&url),
        )?;
        run_quiet(psql_client(&pg)?.args(["-c", &copy_in]))?;
        let dt_native = secs(t);
        if count(&pg) != rows.to_string() {
            bail!("http_to_postgres: curl + psql \\copy loaded {}", count(&pg));
        }
        if rep > 0 {
            infra.push(size as f64 / 1e6 / dt);
            native.push(size as f64 / 1e6 / dt_native);
        }
    }
    let (i2, n2) = (median(&infra), median(&native));
    server.mcp.close().await;
    let note = |i: f64, n: f64| {
        format!(
            "{size} bytes, {rows} rows, checked at the destination both sides; {:.2} s vs {:.2} s; {} reps",
            size as f64 / 1e6 / i,
            size as f64 / 1e6 / n,
            scale.reps
        )
    };
    Ok(vec![
        Row {
            name: format!("pipeline postgres_to_sftp, {rows} rows CSV"),
            infra: m(i1, "MB/s"),
            baseline: Some((
                "`psql -c \"\\copy (…) to FILE csv header\"` then `sftp -b` put".into(),
                m(n1, "MB/s"),
            )),
            target: Some(("≥ 0.8×".into(), i1 / n1 >= 0.8)),
            note: note(i1, n1),
        },
        Row {
            name: format!("pipeline http_to_postgres, {rows} rows CSV"),
            infra: m(i2, "MB/s"),
            baseline: Some((
                "`curl -o FILE` then `psql -c \"\\copy t from FILE csv header\"`".into(),
                m(n2, "MB/s"),
            )),
            target: Some(("≥ 0.8×".into(), i2 / n2 >= 0.8)),
            note: note(i2, n2),
        },
    ])
}
