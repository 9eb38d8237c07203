//! The pipeline plugin through the real binary over MCP: every flow end to end against a real
//! PostgreSQL (`infra_tests::pg`), a real sshd (`infra_tests::sshd`) and a real loopback HTTP
//! server (`infra_tests::data_server`), checked at the destination; a prompt-injected agent, a
//! hostile source server, a bad row, and password canaries.

use infra_tests::data_server::DataServer;
use infra_tests::pg::PgServer;
use infra_tests::sshd::Sshd;
use infra_tests::{Home, Mcp, audit_records, canary, contains};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The env var the postgres profile's password reference names.
const PW_VAR: &str = "INFRA_TEST_PIPE_PG_PASSWORD";
/// The env var the http profile's token reference names.
const TOKEN_VAR: &str = "INFRA_TEST_PIPE_TOKEN";

/// A CSV with the awkward parts: a quoted comma, a doubled quote, a newline inside a field,
/// unicode and a NULL.
const CSV: &str = "id,name,note\n1,alpha,\"a, b\"\n2,\"say \"\"hi\"\"\",\"two\nlines\"\n3,ünï,\n";

struct Setup {
    pg: PgServer,
    sshd: Sshd,
    home: Home,
    password: String,
    token: String,
    /// Where sftp paths live (sshd runs as this user on this machine).
    dir: tempfile::TempDir,
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Postgres role/database `app` with tables `src` (three rows) and empty `dst`, `jdst`; an sshd
/// target `box`; an http profile `api` with a bearer token.
fn setup(api_base: &str) -> Setup {
    let password = canary("pipepg");
    let token = canary("pipetoken");
    let pg = PgServer::start();
    pg.create_db("app", &password);
    pg.psql(
        "app",
        "SET ROLE app; \
         CREATE TABLE src (id int PRIMARY KEY, name text NOT NULL, note text); \
         CREATE TABLE dst (id int PRIMARY KEY, name text NOT NULL, note text); \
         CREATE TABLE jdst (id int PRIMARY KEY, name text NOT NULL, note text, meta jsonb); \
         INSERT INTO src VALUES (1, 'alpha', 'a, b'), (2, 'say \"hi\"', E'two\\nlines'), (3, 'ünï', NULL);",
    );
    let sshd = Sshd::start();
    let home = Home::new();
    home.profiles(&json!({
        "db": {"type": "postgres", "host": "127.0.0.1", "port": pg.port, "user": "app",
               "database": "app", "password": format!("env:{PW_VAR}")},
        "api": {"type": "http", "base_url": api_base, "auth": {"type": "bearer", "token": format!("env:{TOKEN_VAR}")}},
    }));
    std::fs::write(
        home.path().join("targets.json"),
        json!({"box": sshd.target(false, None)}).to_string(),
    )
    .unwrap();
    Setup {
        pg,
        sshd,
        home,
        password,
        token,
        dir: tempfile::tempdir().unwrap(),
    }
}

async fn serve(s: &Setup) -> Mcp {
    let (pw, token) = (s.password.clone(), s.token.clone());
    s.home
        .mcp_with(move |c| {
            c.env(PW_VAR, pw).env(TOKEN_VAR, token);
        })
        .await
}

async fn run(mcp: &Mcp, args: Value) -> (bool, Value) {
    let mut args = args;
    args["action"] = json!("run");
    mcp.call("pipeline", args).await
}

async fn ok(mcp: &Mcp, args: Value) -> Value {
    let (err, out) = run(mcp, args.clone()).await;
    assert!(!err, "{args} failed: {out}");
    assert_eq!(out["applied"], true, "{out}");
    out
}

fn msg(out: &Value) -> String {
    out["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn every_flow_moves_the_bytes_and_reports_bytes_rows_sha256_and_duration() {
    let server = DataServer::start(CSV.as_bytes().to_vec()).await.unwrap();
    let s = setup(server.base_url());
    let mcp = serve(&s).await;
    let data_url = format!("{}/data", server.base_url());
    let path = |name: &str| s.dir.path().join(name).display().to_string();

    // Without apply: the plan, and nothing moves.
    let (err, out) = run(
        &mcp,
        json!({"flow": "http_to_postgres", "source": {"url": data_url},
               "destination": {"profile": "db", "table": "dst"}}),
    )
    .await;
    assert!(!err, "{out}");
    assert_eq!(out["applied"], false, "{out}");
    assert!(
        out["plan"].to_string().contains("COPY into table dst"),
        "{out}"
    );
    assert_eq!(s.pg.psql("app", "SELECT count(*) FROM dst"), "0");

    // http_to_postgres: CSV with a header into a table.
    let out = ok(
        &mcp,
        json!({"flow": "http_to_postgres", "source": {"url": data_url},
               "destination": {"profile": "db", "table": "dst"}, "apply": true}),
    )
    .await;
    assert_eq!(out["rows"], 3, "{out}");
    assert_eq!(out["bytes"], CSV.len(), "{out}");
    assert_eq!(out["sha256"], sha(CSV.as_bytes()), "{out}");
    assert!(out["duration_ms"].is_u64(), "{out}");
    assert_eq!(out["approval"]["approved_by"], "policy", "{out}");
    assert_eq!(
        s.pg.psql(
            "app",
            "SELECT count(*) FROM (SELECT * FROM src EXCEPT SELECT * FROM dst) d"
        ),
        "0",
        "dst holds exactly src's rows"
    );
    assert_eq!(
        s.pg.psql("app", "SELECT count(*) FROM dst WHERE note IS NULL"),
        "1"
    );

    // postgres_to_sftp: the export is byte-identical with psql's COPY.
    let out_csv = path("out/src.csv");
    let out = ok(
        &mcp,
        json!({"flow": "postgres_to_sftp",
               "source": {"profile": "db", "sql": "SELECT * FROM src ORDER BY id"},
               "destination": {"target": "box", "path": out_csv, "mkdirs": true}, "apply": true}),
    )
    .await;
    let want = s.pg.copy_out(
        "app",
        "COPY (SELECT * FROM src ORDER BY id) TO STDOUT (FORMAT csv, HEADER)",
    );
    let got = std::fs::read(&out_csv).unwrap();
    assert_eq!(got, want);
    assert_eq!(out["rows"], 3, "{out}");
    assert_eq!(out["sha256"], sha(&got), "{out}");
    assert_eq!(out["destination"]["size"], got.len(), "{out}");

    // sftp_to_postgres: JSONL, keys in any order, a missing key is NULL, an object is jsonb.
    let jsonl = "{\"name\":\"x\",\"id\":10,\"meta\":{\"k\":[1,2]}}\n{\"id\":11,\"name\":\"y, \\\"z\\\"\",\"note\":\"n\\nm\"}\n";
    std::fs::write(path("rows.jsonl"), jsonl).unwrap();
    let out = ok(
        &mcp,
        json!({"flow": "sftp_to_postgres", "source": {"target": "box", "path": path("rows.jsonl")},
               "destination": {"profile": "db", "table": "public.jdst", "format": "jsonl"},
               "apply": true}),
    )
    .await;
    assert_eq!(out["rows"], 2, "{out}");
    assert_eq!(
        s.pg.psql(
            "app",
            "SELECT id, name, coalesce(note, '-'), coalesce(meta::text, '-') FROM jdst ORDER BY id"
        ),
        "10|x|-|{\"k\": [1, 2]}\n11|y, \"z\"|n\nm|-"
    );

    // sftp_to_http: the file's bytes are the request body, with its Content-Length, and the
    // profile's token is injected by the host.
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(path("payload.bin"), &payload).unwrap();
    let out = ok(
        &mcp,
        json!({"flow": "sftp_to_http", "source": {"target": "box", "path": path("payload.bin")},
               "destination": {"url": "/upload/bin", "profile": "api", "method": "PUT"},
               "apply": true}),
    )
    .await;
    assert_eq!(out["destination"]["status"], 201, "{out}");
    assert_eq!(out["sha256"], sha(&payload), "{out}");
    let up = server.uploads().pop().expect("an upload");
    assert_eq!(up.method, "PUT");
    assert_eq!(up.body, payload);
    assert_eq!(up.header("content-length"), Some("300000"));
    assert_eq!(
        up.header("authorization").map(str::to_string),
        Some(format!("Bearer {}", s.token))
    );

    // http_to_sftp: the downloaded body lands byte-identical; an existing file is not replaced
    // without overwrite.
    let landed = path("landed.csv");
    let out = ok(
        &mcp,
        json!({"flow": "http_to_sftp", "source": {"url": data_url},
               "destination": {"target": "box", "path": landed}, "apply": true}),
    )
    .await;
    assert_eq!(std::fs::read(&landed).unwrap(), CSV.as_bytes());
    assert_eq!(out["sha256"], sha(CSV.as_bytes()), "{out}");
    let (err, out) = run(
        &mcp,
        json!({"flow": "http_to_sftp", "source": {"url": data_url},
               "destination": {"target": "box", "path": landed}, "apply": true}),
    )
    .await;
    assert!(err && msg(&out).contains("overwrite: true"), "{out}");

    // postgres_to_http: a JSONL export POSTed, with its media type.
    let out = ok(
        &mcp,
        json!({"flow": "postgres_to_http",
               "source": {"profile": "db", "table": "src", "format": "jsonl"},
               "destination": {"url": format!("{}/upload/rows", server.base_url())},
               "apply": true}),
    )
    .await;
    assert_eq!(out["rows"], 3, "{out}");
    let up = server.uploads().pop().expect("an upload");
    assert_eq!(up.method, "POST");
    assert_eq!(up.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<Value> = up
        .body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines.contains(&json!({"id": 3, "name": "ünï", "note": null})),
        "{lines:?}"
    );
    assert_eq!(out["sha256"], sha(&up.body), "{out}");

    // Secrets: neither the password nor the token in any answer, log or audit record.
    let stderr = mcp.close().await;
    assert!(!stderr.contains(&s.password) && !stderr.contains(&s.token));
    let all = s.home.all_bytes();
    assert!(
        !contains(&all, &s.password),
        "the password is stored somewhere"
    );
    assert!(!contains(&all, &s.token), "the token is stored somewhere");
    let audit = audit_records(s.home.path());
    assert!(
        audit.iter().filter(|r| r["tool"] == "pipeline").count() >= 7,
        "every run is audited"
    );
}

#[tokio::test]
async fn a_bad_row_fails_the_load_naming_its_line_and_the_table_is_unchanged() {
    let bad = "id,name,note\n20,ok,\n21,fine,\nnot-a-number,x,\n";
    let server = DataServer::start(bad.as_bytes().to_vec()).await.unwrap();
    let s = setup(server.base_url());
    let mcp = serve(&s).await;
    s.pg.psql("app", "INSERT INTO dst VALUES (99, 'kept', NULL)");
    let (err, out) = run(
        &mcp,
        json!({"flow": "http_to_postgres", "source": {"url": format!("{}/data", server.base_url())},
               "destination": {"profile": "db", "table": "dst"}, "apply": true}),
    )
    .await;
    assert!(err, "{out}");
    let m = msg(&out);
    assert!(m.contains("line 4") && m.contains("not-a-number"), "{m}");
    assert!(m.contains("as it was"), "{m}");
    assert_eq!(out["error"]["detail"]["sqlstate"], "22P02", "{out}");
    assert_eq!(
        s.pg.psql("app", "SELECT string_agg(id::text, ',') FROM dst"),
        "99"
    );

    // JSONL: a key that is not a column, on line 2.
    let file = s.dir.path().join("bad.jsonl");
    std::fs::write(
        &file,
        "{\"id\":30,\"name\":\"a\"}\n{\"id\":31,\"name\":\"b\",\"evil\":1}\n",
    )
    .unwrap();
    let (err, out) = run(
        &mcp,
        json!({"flow": "sftp_to_postgres", "source": {"target": "box", "path": file},
               "destination": {"profile": "db", "table": "dst", "format": "jsonl"}, "apply": true}),
    )
    .await;
    assert!(err, "{out}");
    assert!(msg(&out).contains("line 2: key 'evil'"), "{out}");
    assert_eq!(s.pg.psql("app", "SELECT count(*) FROM dst"), "1");
}

#[tokio::test]
async fn a_prompt_injected_agent_cannot_reach_past_names_grants_or_sizes() {
    let server = DataServer::start(CSV.as_bytes().to_vec()).await.unwrap();
    let s = setup(server.base_url());
    let data_url = format!("{}/data", server.base_url());
    let mcp = serve(&s).await;
    let load = |dest: Value| {
        json!({"flow": "http_to_postgres", "source": {"url": data_url.clone()},
               "destination": dest, "apply": true})
    };

    // SQL in a table or column name is refused before anything runs, naming the field.
    for (dest, field) in [
        (
            json!({"profile": "db", "table": "dst; DROP TABLE src"}),
            "destination.table",
        ),
        (
            json!({"profile": "db", "table": "dst\" (id) FROM PROGRAM 'id' --"}),
            "destination.table",
        ),
        (
            json!({"profile": "db", "table": "dst", "columns": ["id", "name) FROM PROGRAM 'id' --"]}),
            "destination.columns[1]",
        ),
    ] {
        let (err, out) = run(&mcp, load(dest.clone())).await;
        assert!(err, "{dest}: {out}");
        assert_eq!(out["error"]["field"], field, "{out}");
    }
    // A field of another kind of end is refused, naming it.
    let (err, out) = run(
        &mcp,
        json!({"flow": "postgres_to_sftp", "source": {"profile": "db", "table": "src", "url": "http://x"},
               "destination": {"target": "box", "path": "/tmp/x"}, "apply": true}),
    )
    .await;
    assert!(err && out["error"]["field"] == "source.url", "{out}");
    // A source larger than max_bytes writes nothing.
    let (err, out) = run(
        &mcp,
        json!({"flow": "http_to_sftp", "source": {"url": data_url}, "max_bytes": 10,
               "destination": {"target": "box", "path": s.dir.path().join("big").display().to_string()},
               "apply": true}),
    )
    .await;
    assert!(err && msg(&out).contains("max_bytes"), "{out}");
    assert!(!s.dir.path().join("big").exists());
    // An export past max_bytes loads nothing.
    let (err, out) = run(
        &mcp,
        json!({"flow": "postgres_to_http", "source": {"profile": "db", "table": "src"},
               "destination": {"url": format!("{}/u", server.base_url())}, "max_bytes": 5,
               "apply": true}),
    )
    .await;
    assert!(err && msg(&out).contains("max_bytes"), "{out}");
    assert!(server.uploads().is_empty());
    // The source query runs read-only: a write smuggled into it never runs.
    let (err, out) = run(
        &mcp,
        json!({"flow": "postgres_to_sftp",
               "source": {"profile": "db", "sql": "DELETE FROM src RETURNING *"},
               "destination": {"target": "box", "path": s.dir.path().join("d").display().to_string()},
               "apply": true}),
    )
    .await;
    assert!(err, "{out}");
    assert_eq!(s.pg.psql("app", "SELECT count(*) FROM src"), "3");
    mcp.close().await;

    // An operator's narrower grant: only target `box` under ssh, postgres read-only, one host.
    let other = Sshd::start();
    std::fs::write(
        s.home.path().join("targets.json"),
        json!({"box": s.sshd.target(false, None), "other": other.target(false, None)}).to_string(),
    )
    .unwrap();
    s.home.policy(
        "[plugin.pipeline.http]\nhosts = [\"127.0.0.1\"]\n\
         [plugin.pipeline.ssh]\ntargets = [\"box\"]\n\
         [plugin.pipeline.postgres]\nprofiles = [\"db\"]\nread_only = true\n\
         [plugin.pipeline.artifacts]\n[plugin.pipeline.guard]\n[plugin.pipeline.log]\n",
    );
    let mcp = serve(&s).await;
    let (err, out) = run(&mcp, load(json!({"profile": "db", "table": "dst"}))).await;
    assert!(err && msg(&out).contains("read-only"), "{out}");
    assert_eq!(s.pg.psql("app", "SELECT count(*) FROM dst"), "0");
    let (err, out) = run(
        &mcp,
        json!({"flow": "http_to_sftp", "source": {"url": data_url},
               "destination": {"target": "other", "path": s.dir.path().join("o").display().to_string()},
               "apply": true}),
    )
    .await;
    assert!(err && out["error"]["kind"] == "denied", "{out}");
    assert!(!s.dir.path().join("o").exists());
    let (err, out) = run(
        &mcp,
        json!({"flow": "http_to_sftp", "source": {"url": "http://localhost:9/x"},
               "destination": {"target": "box", "path": s.dir.path().join("o").display().to_string()},
               "apply": true}),
    )
    .await;
    assert!(err && out["error"]["kind"] == "denied", "{out}");
    mcp.close().await;
}

/// A loopback server that answers every request with `head` and then holds the connection.
async fn stalling_server(head: &'static [u8]) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/data", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream.write_all(head).await;
            held.push(stream);
        }
    });
    (url, task)
}

#[tokio::test]
async fn a_hostile_source_server_ends_at_the_deadline_or_the_cap_and_nothing_is_written() {
    let server = DataServer::start(vec![b'x'; 4096]).await.unwrap();
    let s = setup(server.base_url());
    let mcp = serve(&s).await;
    // Claims 1000 bytes, sends 5, never ends.
    let (url, task) =
        stalling_server(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nhello").await;
    let dest = s.dir.path().join("stalled");
    let (err, out) = run(
        &mcp,
        json!({"flow": "http_to_sftp", "source": {"url": url}, "timeout_ms": 2000,
               "destination": {"target": "box", "path": dest.display().to_string()}, "apply": true}),
    )
    .await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "timeout", "{out}");
    assert!(!dest.exists());
    task.abort();
    // Endless chunked body: cut at max_bytes, nothing loaded.
    let (url, task) =
        stalling_server(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1000\r\n").await;
    let (err, out) = run(
        &mcp,
        json!({"flow": "http_to_postgres", "source": {"url": url}, "timeout_ms": 2000,
               "destination": {"profile": "db", "table": "dst"}, "apply": true}),
    )
    .await;
    assert!(err, "{out}");
    assert_eq!(s.pg.psql("app", "SELECT count(*) FROM dst"), "0");
    task.abort();
    // A body larger than max_bytes is refused whole.
    let (err, out) = run(
        &mcp,
        json!({"flow": "http_to_sftp", "source": {"url": format!("{}/data", server.base_url())},
               "max_bytes": 1000,
               "destination": {"target": "box", "path": dest.display().to_string()}, "apply": true}),
    )
    .await;
    assert!(err && msg(&out).contains("max_bytes"), "{out}");
    assert!(!dest.exists());
    mcp.close().await;
}

#[tokio::test]
async fn describe_lists_the_six_flows() {
    let home = Home::new();
    let mcp = home.mcp().await;
    let (err, out) = mcp.call("pipeline", json!({"action": "describe"})).await;
    assert!(!err, "{out}");
    let names: Vec<&str> = out["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["flow"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "http_to_sftp",
            "sftp_to_http",
            "http_to_postgres",
            "sftp_to_postgres",
            "postgres_to_sftp",
            "postgres_to_http"
        ]
    );
    mcp.close().await;
}
