//! Postgres through the psql plugin: a 1,000,000-row CSV export vs `psql \copy`, and `select 1`
//! round trips vs tokio-postgres in-process and the `psql` client per call.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use infra_tests::Home;
use infra_tests::pg::{PgServer, find_bin};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::{Scale, Server, artifact_path, call, run_quiet, secs, serve};
use crate::table::{Row, m, median};

/// The env var the profile's password reference names.
pub const PW_VAR: &str = "INFRA_BENCH_PG_PASSWORD";
/// The password of role `app`.
pub const PASSWORD: &str = "bench-password";
/// The export query of the 1M-row rows.
pub const QUERY: &str = "SELECT * FROM big ORDER BY id";

/// A server with role and database `app`, a state directory whose profile `db` reaches it over
/// TCP with a password (as infra always connects), and `infra serve` on it.
pub struct Setup {
    /// The PostgreSQL server.
    pub pg: PgServer,
    /// The state directory.
    pub home: Home,
    /// `infra serve` with the password in its environment.
    pub server: Server,
}

/// Starts PostgreSQL and infra; `rows` rows in table `big` (the shape of the 1M-row test).
pub async fn setup(rows: usize) -> Result<Setup> {
    let (pg, home) = prepare(rows);
    let server = serve(&home, &[(PW_VAR, PASSWORD)]).await?;
    Ok(Setup { pg, home, server })
}

/// [`setup`] without starting infra: the server and a state directory with profile `db`, for
/// rows that add files of their own to the state directory first.
pub fn prepare(rows: usize) -> (PgServer, Home) {
    let pg = PgServer::start();
    pg.create_db("app", PASSWORD);
    if rows > 0 {
        pg.psql(
            "app",
            &format!(
                "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS hash, g % 7 = 0 AS seventh, \
                 'line ' || g || E'\\nwith \"quotes\", commas' AS note FROM generate_series(1, {rows}) g; \
                 ALTER TABLE big OWNER TO app"
            ),
        );
        // Its own statement: psql -c runs a multi-statement string as one transaction.
        pg.psql("app", "VACUUM ANALYZE big");
    }
    let home = Home::new();
    home.profiles(&json!({
        "db": {"type": "postgres", "host": "127.0.0.1", "port": pg.port, "user": "app",
               "database": "app", "password": format!("env:{PW_VAR}")},
    }));
    (pg, home)
}

/// `psql` as role `app` over TCP, as an operator would run it.
pub fn psql_client(pg: &PgServer) -> Result<Command> {
    let psql = find_bin("psql").context("psql not found")?;
    let mut c = Command::new(psql);
    c.env("PGPASSWORD", PASSWORD)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
        .args(["-p", &pg.port.to_string(), "-U", "app", "-d", "app"]);
    Ok(c)
}

/// Size and sha256 of a file.
pub fn sha_file(path: &std::path::Path) -> Result<(u64, String)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let n = std::io::copy(&mut f, &mut h)?;
    Ok((n, hex::encode(h.finalize())))
}

/// The export row: MB/s of the artifact vs `psql -c "\copy (…) to stdout csv header"` to a file.
pub async fn export(scale: Scale) -> Result<Vec<Row>> {
    let rows = scale.n(1_000_000, 1000);
    eprintln!("[export] creating {rows} rows");
    let s = setup(rows).await?;
    let args = json!({"action": "export", "profile": "db", "sql": QUERY, "timeout_ms": 600000});
    let out_file = s.home.path().join("psql-copy.csv");
    let copy = format!("\\copy ({QUERY}) to stdout csv header");
    let (mut infra, mut native) = (Vec::new(), Vec::new());
    let mut sizes = None;
    // One untimed round each first: the table's pages and the plugin are warm for both sides.
    for rep in 0..=scale.reps {
        eprintln!("[export] rep {rep}/{}", scale.reps);
        let t = Instant::now();
        let out = call(&s.server.mcp, "psql", &args).await?;
        let dt = secs(t);
        if out["exported_rows"] != json!(rows) {
            bail!("export: {out}");
        }
        let path = artifact_path(&s.home, &out)?;
        let (size, sha) = sha_file(&path)?;
        std::fs::remove_file(&path)?;

        let file = std::fs::File::create(&out_file)?;
        let t = Instant::now();
        let status = psql_client(&s.pg)?
            .args(["-c", &copy])
            .stdout(file)
            .status()?;
        let dt_native = secs(t);
        if !status.success() {
            bail!("psql \\copy failed");
        }
        let (nsize, nsha) = sha_file(&out_file)?;
        if (size, &sha) != (nsize, &nsha) {
            bail!("export differs from psql \\copy: {size} B {sha} vs {nsize} B {nsha}");
        }
        sizes = Some(size);
        if rep > 0 {
            infra.push(size as f64 / 1e6 / dt);
            native.push(nsize as f64 / 1e6 / dt_native);
        }
    }
    let _ = std::fs::remove_file(&out_file);
    s.server.mcp.close().await;
    let size = sizes.unwrap_or(0);
    let (infra, native) = (median(&infra), median(&native));
    Ok(vec![Row {
        name: format!("psql export {rows} rows → CSV artifact"),
        infra: m(infra, "MB/s"),
        baseline: Some((
            "`psql -c \"\\copy (…) to stdout csv header\"` > file (TCP, same role)".into(),
            m(native, "MB/s"),
        )),
        target: Some(("≥ 0.8×".into(), infra / native >= 0.8)),
        note: format!(
            "{size} bytes both sides, sha256 equal; {:.2} s vs {:.2} s; {} reps",
            size as f64 / 1e6 / infra,
            size as f64 / 1e6 / native,
            scale.reps
        ),
    }])
}

/// The `select 1` row: psql plugin calls vs tokio-postgres on one connection, and vs `psql -c`.
pub async fn select1(scale: Scale) -> Result<Vec<Row>> {
    let n = scale.n(1000, 10);
    let n_cli = scale.n(100, 5);
    let s = setup(0).await?;
    let args = json!({"action": "query", "profile": "db", "sql": "select 1"});
    let check = |out: &Value| -> Result<()> {
        if out["ok"] != json!(true) {
            bail!("select 1: {out}");
        }
        Ok(())
    };
    for _ in 0..5 {
        check(&call(&s.server.mcp, "psql", &args).await?)?;
    }
    let (client, conn) = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port={} user=app password={PASSWORD} dbname=app",
            s.pg.port
        ),
        tokio_postgres::NoTls,
    )
    .await?;
    let conn = tokio::spawn(conn);
    let (mut infra, mut native, mut cli) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..scale.reps {
        eprintln!("[pg] rep {}/{}", rep + 1, scale.reps);
        let t = Instant::now();
        for _ in 0..n {
            check(&call(&s.server.mcp, "psql", &args).await?)?;
        }
        infra.push(n as f64 / secs(t));
        let t = Instant::now();
        for _ in 0..n {
            let rows = client.query("select 1", &[]).await?;
            if rows.len() != 1 {
                bail!("tokio-postgres select 1: {} rows", rows.len());
            }
        }
        native.push(n as f64 / secs(t));
        let t = Instant::now();
        for _ in 0..n_cli {
            run_quiet(psql_client(&s.pg)?.args(["-c", "select 1"]))?;
        }
        cli.push(n_cli as f64 / secs(t));
    }
    drop(client);
    let _ = conn.await;
    s.server.mcp.close().await;
    let (infra, native, cli) = (median(&infra), median(&native), median(&cli));
    Ok(vec![
        Row {
            name: format!("psql query `select 1` ×{n}"),
            infra: m(infra, "calls/s"),
            baseline: Some((
                "tokio-postgres in-process, one connection, `query(\"select 1\")`".into(),
                m(native, "calls/s"),
            )),
            target: Some(("≥ 0.9×".into(), infra / native >= 0.9)),
            note: format!("{n} sequential calls × {} reps", scale.reps),
        },
        Row {
            name: "psql query `select 1`".into(),
            infra: m(infra, "calls/s"),
            baseline: Some((
                "`psql -c 'select 1'`, one process per call (TCP, password)".into(),
                m(cli, "calls/s"),
            )),
            target: None,
            note: format!("{n_cli} client runs × {} reps", scale.reps),
        },
    ])
}
