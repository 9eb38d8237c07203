//! The psql plugin through the real binary over MCP, against a real PostgreSQL started by the
//! test harness (`infra_tests::pg`): every action, the failure paths, the pool's behaviour seen
//! from the server (`pg_stat_activity`), a 1,000,000-row COPY export, and a password canary.

use infra_tests::pg::PgServer;
use infra_tests::{Home, Mcp, canary, contains};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The env var the profile's password reference names.
const PW_VAR: &str = "INFRA_TEST_PG_PASSWORD";

/// A server with role and database `app` (password `password`), and a state directory whose
/// profile `db` reaches it with the password by reference.
struct Setup {
    pg: PgServer,
    home: Home,
    password: String,
}

fn setup() -> Setup {
    setup_with(canary("pgcanary"))
}

/// [`setup`] with the given password.
fn setup_with(password: String) -> Setup {
    let pg = PgServer::start();
    pg.create_db("app", &password);
    let home = Home::new();
    home.profiles(&json!({
        "db": {"type": "postgres", "host": "127.0.0.1", "port": pg.port, "user": "app",
               "database": "app", "password": format!("env:{PW_VAR}")},
    }));
    Setup { pg, home, password }
}

/// `infra serve` with the password in its environment.
async fn serve(home: &Home, password: &str) -> Mcp {
    home.mcp_with(|c| {
        c.env(PW_VAR, password);
    })
    .await
}

async fn ok(mcp: &Mcp, args: Value) -> Value {
    let (err, out) = mcp.call("psql", args.clone()).await;
    assert!(!err, "{args} failed: {out}");
    assert_eq!(out["ok"], true, "{out}");
    out
}

async fn fails(mcp: &Mcp, args: Value) -> Value {
    let (err, out) = mcp.call("psql", args.clone()).await;
    assert!(err, "{args} should have failed: {out}");
    out
}

fn msg(out: &Value) -> String {
    out["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The host refused a statement a read-only call may not run, before sending it, saying why
/// the call is read-only (`because`) and what it allows.
fn refused_as_read_only(out: &Value, because: &str) {
    assert_eq!(out["error"]["kind"], "invalid", "{out}");
    let field = out["error"]["field"].as_str().unwrap_or_default();
    assert!(field == "sql" || field.ends_with("].sql"), "{out}");
    let m = msg(out);
    assert!(
        m.contains("read-only") && m.contains("SELECT") && m.contains(because),
        "{out}"
    );
}

#[tokio::test]
async fn every_action_works_through_mcp() {
    let s = setup();
    let mcp = serve(&s.home, &s.password).await;
    let q = |sql: &str| json!({"action": "query", "profile": "db", "sql": sql});

    let out = ok(
        &mcp,
        q(
            "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, \
        qty int4, price numeric(10,2), tags text[], meta jsonb, seen timestamptz, \
        day date, blob bytea, ok bool, uid uuid, ratio float8)",
        ),
    )
    .await;
    assert_eq!(out["affected"], 0, "{out}");

    // tables, columns
    let out = ok(&mcp, json!({"action": "tables", "profile": "db"})).await;
    assert_eq!(
        out["rows"],
        json!([{"schema": "public", "name": "items", "type": "BASE TABLE"}]),
        "{out}"
    );
    let out = ok(
        &mcp,
        json!({"action": "columns", "profile": "db", "table": "items"}),
    )
    .await;
    assert_eq!(out["row_count"], 12, "{out}");
    assert_eq!(
        out["rows"][1],
        json!({"name": "name", "type": "text", "nullable": false, "default": null, "position": 2})
    );
    let out = fails(
        &mcp,
        json!({"action": "columns", "profile": "db", "table": "nope"}),
    )
    .await;
    assert_eq!(out["error"]["kind"], "not-found", "{out}");

    // insert: one object, then several; values are bound with the column types.
    let out = ok(&mcp, json!({"action": "insert", "profile": "db", "table": "items",
        "values": {"name": "bolt", "qty": 10, "price": "1.25", "tags": ["a", "b"], "meta": {"k": [1, 2]},
                   "seen": "2024-01-31T12:00:00Z", "day": "2024-02-29", "blob": "AAEC", "ok": true,
                   "uid": "67e55044-10b1-426f-9247-bb680e5fe0c8", "ratio": 0.5},
        "returning": ["id", "name"]})).await;
    assert_eq!(out["rows"], json!([{"id": 1, "name": "bolt"}]), "{out}");
    assert!(
        out["sql"]
            .as_str()
            .unwrap()
            .starts_with("INSERT INTO \"items\""),
        "{out}"
    );
    let out = ok(&mcp, json!({"action": "insert", "profile": "db", "table": "items",
        "values": [{"name": "nut", "qty": 5, "price": 0.1}, {"name": "o'brien\"; drop table items; --"}]})).await;
    assert_eq!(out["affected"], 2, "{out}");

    // select with a filter, order and limit; every type mapped to JSON.
    let out = ok(
        &mcp,
        json!({"action": "select", "profile": "db", "table": "items",
        "where": {"qty": {"op": ">=", "value": 10}}}),
    )
    .await;
    let row = &out["rows"][0];
    assert_eq!(row["price"], "1.25");
    assert_eq!(row["tags"], json!(["a", "b"]));
    assert_eq!(row["meta"], json!({"k": [1, 2]}));
    assert_eq!(row["seen"], "2024-01-31T12:00:00Z");
    assert_eq!(row["day"], "2024-02-29");
    assert_eq!(row["blob"], "AAEC");
    assert_eq!(row["ok"], true);
    assert_eq!(row["uid"], "67e55044-10b1-426f-9247-bb680e5fe0c8");
    assert_eq!(row["ratio"], 0.5);
    let out = ok(
        &mcp,
        json!({"action": "select", "profile": "db", "table": "public.items",
        "columns": ["name"], "order_by": ["-id"], "limit": 2}),
    )
    .await;
    assert_eq!(
        out["rows"],
        json!([{"name": "o'brien\"; drop table items; --"}, {"name": "nut"}]),
        "{out}"
    );
    let out = ok(&mcp, json!({"action": "select", "profile": "db", "table": "items",
        "where": {"name": {"op": "in", "value": ["nut", "bolt"]}, "qty": null}, "columns": ["name"]})).await;
    assert_eq!(out["row_count"], 0, "{out}");

    // count, exists
    let out = ok(
        &mcp,
        json!({"action": "count", "profile": "db", "table": "items"}),
    )
    .await;
    assert_eq!(out["value"], 3, "{out}");
    let out = ok(
        &mcp,
        json!({"action": "exists", "profile": "db", "table": "items", "where": {"name": "nut"}}),
    )
    .await;
    assert_eq!(out["value"], true, "{out}");
    let out = ok(
        &mcp,
        json!({"action": "exists", "profile": "db", "table": "items", "where": {"name": "washer"}}),
    )
    .await;
    assert_eq!(out["value"], false, "{out}");

    // update, delete (filtered)
    let out = ok(
        &mcp,
        json!({"action": "update", "profile": "db", "table": "items",
        "set": {"qty": 7}, "where": {"name": "nut"}, "returning": ["qty"]}),
    )
    .await;
    assert_eq!(out["rows"], json!([{"qty": 7}]), "{out}");
    let out = ok(
        &mcp,
        json!({"action": "delete", "profile": "db", "table": "items", "where": {"qty": null}}),
    )
    .await;
    assert_eq!(out["affected"], 1, "{out}");

    // query modes, parameters, row cap
    let out = ok(
        &mcp,
        json!({"action": "query", "profile": "db",
        "sql": "SELECT $1::int8 + 1 AS n, $2::text AS t", "params": [41, "x"], "mode": "row"}),
    )
    .await;
    assert_eq!(out["row"], json!({"n": 42, "t": "x"}), "{out}");
    let out = ok(
        &mcp,
        json!({"action": "query", "profile": "db", "sql": "SELECT name FROM items WHERE qty = $1",
        "params": [7], "mode": "value"}),
    )
    .await;
    assert_eq!(out["value"], "nut", "{out}");
    let out = ok(
        &mcp,
        json!({"action": "query", "profile": "db",
        "sql": "SELECT g FROM generate_series(1, 50) g", "max_rows": 10}),
    )
    .await;
    assert_eq!(out["row_count"], 10);
    assert_eq!(out["truncated"], true);
    assert_eq!(out["total"], 50, "{out}");
    let out = ok(
        &mcp,
        json!({"action": "query", "profile": "db",
        "sql": "UPDATE items SET qty = qty + 1", "mode": "command"}),
    )
    .await;
    assert_eq!(out["affected"], 2, "{out}");
    let out = ok(&mcp, json!({"action": "query", "profile": "db", "read_only": true,
        "sql": "SELECT 1::numeric / 3 AS third, NULL::int AS nothing, 'NaN'::float8 AS nan, 'infinity'::timestamp AS inf"})).await;
    assert_eq!(
        out["rows"][0],
        json!({"third": "0.33333333333333333333", "nothing": null, "nan": "NaN", "inf": "infinity"}),
        "{out}"
    );

    // batch: each on its own, stops at the first error by default.
    let out = ok(
        &mcp,
        json!({"action": "batch", "profile": "db", "statements": [
        {"sql": "SELECT 1 AS a", "mode": "value"},
        {"sql": "SELEC 2"},
        {"sql": "SELECT 3"}]}),
    )
    .await;
    assert_eq!(out["all_ok"], false);
    assert_eq!(out["results"].as_array().unwrap().len(), 2, "{out}");
    assert_eq!(out["results"][0]["value"], 1);
    assert_eq!(
        out["results"][1]["error"]["detail"]["sqlstate"], "42601",
        "{out}"
    );

    // transaction: all or nothing.
    let out = ok(
        &mcp,
        json!({"action": "transaction", "profile": "db", "statements": [
        {"sql": "INSERT INTO items (name) VALUES ($1)", "params": ["t1"]},
        {"sql": "SELECT count(*) AS n FROM items", "mode": "value"}]}),
    )
    .await;
    assert_eq!(out["results"][0]["affected"], 1, "{out}");
    assert_eq!(out["results"][1]["value"], 3, "{out}");
    let out = fails(
        &mcp,
        json!({"action": "transaction", "profile": "db", "statements": [
        {"sql": "INSERT INTO items (name) VALUES ('t2')"},
        {"sql": "INSERT INTO items (name) VALUES (NULL)"}]}),
    )
    .await;
    assert_eq!(out["error"]["detail"]["sqlstate"], "23502", "{out}");
    assert!(msg(&out).contains("statement 2 of 2"), "{out}");
    let out = ok(
        &mcp,
        json!({"action": "count", "profile": "db", "table": "items", "where": {"name": "t2"}}),
    )
    .await;
    assert_eq!(out["value"], 0, "rolled back: {out}");

    // explain, database_info
    let out = ok(&mcp, json!({"action": "explain", "profile": "db", "sql": "SELECT * FROM items WHERE id = $1", "params": [1]})).await;
    assert!(out["plan"][0]["Plan"]["Node Type"].is_string(), "{out}");
    let out = ok(&mcp, json!({"action": "explain", "profile": "db", "analyze": true, "sql": "SELECT count(*) FROM items"})).await;
    assert!(out["plan"][0]["Execution Time"].is_number(), "{out}");
    let out = ok(&mcp, json!({"action": "database_info", "profile": "db"})).await;
    assert_eq!(out["row"]["database"], "app", "{out}");
    assert_eq!(out["row"]["user"], "app");
    assert!(out["row"]["server_version"].is_string());

    // export, small: jsonl and csv of a table
    let out = ok(
        &mcp,
        json!({"action": "export", "profile": "db", "format": "jsonl",
        "sql": "SELECT id, name, meta FROM items ORDER BY id;"}),
    )
    .await;
    assert_eq!(out["exported_rows"], 3, "{out}");
    let path = artifact_path(&s.home, &out);
    let text = std::fs::read_to_string(&path).unwrap();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        first,
        json!({"id": 1, "name": "bolt", "meta": {"k": [1, 2]}})
    );
    let out = ok(
        &mcp,
        json!({"action": "export", "profile": "db", "format": "jsonl",
               "sql": r#"SELECT 'a\b "q"' || chr(10) || 'x' AS s"#}),
    )
    .await;
    let line = std::fs::read_to_string(artifact_path(&s.home, &out)).unwrap();
    let v: Value = serde_json::from_str(line.trim_end()).unwrap();
    assert_eq!(v["s"], "a\\b \"q\"\nx", "no COPY text escaping: {line}");
    let out = ok(
        &mcp,
        json!({"action": "export", "profile": "db", "table": "items"}),
    )
    .await;
    assert_eq!(out["exported_rows"], 3, "{out}");
    let csv = std::fs::read_to_string(artifact_path(&s.home, &out)).unwrap();
    assert!(csv.starts_with("id,name,qty,price"), "{csv}");

    mcp.close().await;
    drop(s.pg);
}

fn artifact_path(home: &Home, out: &Value) -> std::path::PathBuf {
    let uri = out["artifact"]["uri"].as_str().expect("an artifact uri");
    home.path()
        .join("artifacts")
        .join(uri.strip_prefix("artifact://").unwrap())
}

#[tokio::test]
async fn sql_errors_and_refusals_say_what_went_wrong() {
    let s = setup();
    let mcp = serve(&s.home, &s.password).await;
    ok(&mcp, json!({"action": "query", "profile": "db", "sql": "CREATE TABLE t (id int PRIMARY KEY, v text)"})).await;
    ok(&mcp, json!({"action": "insert", "profile": "db", "table": "t", "values": [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]})).await;

    // A syntax error: isError with the server's message, SQLSTATE and position.
    let out = fails(
        &mcp,
        json!({"action": "query", "profile": "db", "sql": "SELECT * FROM t ORDER id"}),
    )
    .await;
    assert_eq!(out["error"]["detail"]["sqlstate"], "42601", "{out}");
    assert_eq!(out["error"]["detail"]["position"], 23, "{out}");
    assert_eq!(out["error"]["field"], "sql");
    assert!(
        msg(&out).contains("syntax error") && msg(&out).contains("SQLSTATE 42601"),
        "{out}"
    );
    // An unknown column, a constraint violation.
    let out = fails(
        &mcp,
        json!({"action": "query", "profile": "db", "sql": "SELECT nope FROM t"}),
    )
    .await;
    assert_eq!(out["error"]["detail"]["sqlstate"], "42703", "{out}");
    assert_eq!(out["error"]["detail"]["position"], 8, "{out}");
    let out = fails(
        &mcp,
        json!({"action": "insert", "profile": "db", "table": "t", "values": {"id": 1}}),
    )
    .await;
    assert_eq!(out["error"]["detail"]["sqlstate"], "23505", "{out}");
    assert!(
        msg(&out).contains("detail: Key (id)=(1) already exists"),
        "{out}"
    );

    // Parameters: wrong count, wrong type — refused before the server runs anything.
    let out = fails(
        &mcp,
        json!({"action": "query", "profile": "db", "sql": "SELECT * FROM t WHERE id = $1"}),
    )
    .await;
    assert_eq!(out["error"]["kind"], "invalid", "{out}");
    assert!(msg(&out).contains("1 placeholder"), "{out}");
    let out = fails(&mcp, json!({"action": "query", "profile": "db", "sql": "SELECT * FROM t WHERE id = $1", "params": ["x"]})).await;
    assert!(
        msg(&out).contains("$1, type int4") && msg(&out).contains("not an integer"),
        "{out}"
    );
    // Values are bound, never interpolated: an injection attempt is just a string.
    let out = ok(&mcp, json!({"action": "query", "profile": "db", "sql": "SELECT count(*) AS n FROM t WHERE v = $1",
        "params": ["a' OR '1'='1"], "mode": "value"})).await;
    assert_eq!(out["value"], 0, "{out}");

    // Unfiltered update and delete are refused unless all_rows.
    let out = fails(
        &mcp,
        json!({"action": "delete", "profile": "db", "table": "t"}),
    )
    .await;
    assert_eq!(out["error"]["field"], "where", "{out}");
    assert!(msg(&out).contains("all_rows"), "{out}");
    let out = fails(
        &mcp,
        json!({"action": "update", "profile": "db", "table": "t", "set": {"v": "z"}, "where": {}}),
    )
    .await;
    assert!(msg(&out).contains("all_rows"), "{out}");
    let out = ok(
        &mcp,
        json!({"action": "count", "profile": "db", "table": "t"}),
    )
    .await;
    assert_eq!(out["value"], 2, "nothing was deleted: {out}");
    let out = ok(&mcp, json!({"action": "update", "profile": "db", "table": "t", "set": {"v": "z"}, "all_rows": true})).await;
    assert_eq!(out["affected"], 2, "{out}");

    // read_only in the call refuses a write; the statement timeout cancels a slow statement.
    let out = fails(
        &mcp,
        json!({"action": "query", "profile": "db", "read_only": true, "sql": "DELETE FROM t"}),
    )
    .await;
    refused_as_read_only(&out, "the call asked for read_only");
    // A write the keyword check lets through still meets the READ ONLY transaction.
    let out = fails(
        &mcp,
        json!({"action": "query", "profile": "db", "read_only": true,
        "sql": "WITH d AS (DELETE FROM t RETURNING 1) SELECT count(*) FROM d"}),
    )
    .await;
    assert_eq!(out["error"]["detail"]["sqlstate"], "25006", "{out}");
    let out = fails(
        &mcp,
        json!({"action": "query", "profile": "db", "sql": "SELECT pg_sleep(5)", "timeout_ms": 500}),
    )
    .await;
    assert_eq!(out["error"]["kind"], "timeout", "{out}");
    assert!(msg(&out).contains("57014"), "{out}");

    // Unknown profile, a bad action.
    let out = fails(
        &mcp,
        json!({"action": "query", "profile": "nope", "sql": "SELECT 1"}),
    )
    .await;
    assert_eq!(out["error"]["kind"], "not-found", "{out}");
    assert!(msg(&out).contains("db"), "names the known profiles: {out}");
    let out = fails(&mcp, json!({"action": "drop", "profile": "db"})).await;
    assert!(msg(&out).contains("query"), "{out}");
    mcp.close().await;
}

/// One call's session state (settings, temp tables, an open transaction) never reaches the next
/// call on the same pooled connection: the host resets the session after every call.
#[tokio::test]
async fn session_state_does_not_leak_between_calls() {
    let s = setup();
    let mcp = serve(&s.home, &s.password).await;
    // Calls that share a backend with `pid`: the pool may hand out another of its connections,
    // so probe until one lands on the same backend.
    async fn on_backend(mcp: &Mcp, pid: &Value, sql: &str) -> Value {
        for _ in 0..40 {
            let out = ok(
                mcp,
                json!({"action": "query", "profile": "db", "sql": sql, "mode": "row"}),
            )
            .await;
            if out["row"]["pid"] == *pid {
                return out["row"].clone();
            }
        }
        panic!("no later call ran on backend {pid}");
    }
    let out = ok(
        &mcp,
        json!({"action": "transaction", "profile": "db", "statements": [
            {"sql": "SELECT set_config('search_path', 'nowhere', false)"},
            {"sql": "CREATE TEMP TABLE leak_probe (i int)"},
            {"sql": "SELECT pg_backend_pid() AS pid", "mode": "value"},
        ]}),
    )
    .await;
    let pid = out["results"][2]["value"].clone();
    assert!(pid.is_number(), "{out}");
    let row = on_backend(
        &mcp,
        &pid,
        "SELECT pg_backend_pid() AS pid, current_setting('search_path') AS sp, \
        to_regclass('pg_temp.leak_probe')::text AS probe",
    )
    .await;
    assert_eq!(row["sp"], "\"$user\", public", "{row}");
    assert_eq!(row["probe"], Value::Null, "{row}");
    // A transaction left open by a bare BEGIN is rolled back after the call, not inherited by
    // the next one: seen from the server, no backend of the pool stays idle in a transaction.
    let out = ok(
        &mcp,
        json!({"action": "query", "profile": "db", "mode": "command",
        "sql": "BEGIN"}),
    )
    .await;
    assert_eq!(out["ok"], true);
    let open = || {
        s.pg.psql(
            "app",
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'app' AND application_name = 'infra' \
             AND state LIKE 'idle in transaction%'",
        )
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while open() != "0" {
        assert!(
            std::time::Instant::now() < deadline,
            "a backend stayed idle in the transaction the call opened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    mcp.close().await;
}

/// `batch` goes on past a failure when told to, `transaction` rolls back and names the failing
/// statement with the server's position, a profile's own `read_only` forces read-only, and a
/// result past the row cap reports `total` only while it could be counted.
#[tokio::test]
async fn batches_transactions_profiles_and_totals() {
    let s = setup();
    let mcp = serve(&s.home, &s.password).await;
    ok(
        &mcp,
        json!({"action": "query", "profile": "db", "sql": "CREATE TABLE t (id int PRIMARY KEY)"}),
    )
    .await;
    let out = ok(&mcp, json!({"action": "batch", "profile": "db", "stop_on_error": false, "statements": [
        {"sql": "INSERT INTO t VALUES (1)"}, {"sql": "INSERT INTO t VALUES (1)"}, {"sql": "INSERT INTO t VALUES (2)"},
    ]}))
    .await;
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{out}");
    assert_eq!(out["all_ok"], false, "{out}");
    assert_eq!(results[1]["ok"], false, "{out}");
    assert_eq!(results[1]["error"]["detail"]["sqlstate"], "23505", "{out}");
    assert_eq!(results[2]["ok"], true, "{out}");

    let out = fails(
        &mcp,
        json!({"action": "transaction", "profile": "db", "statements": [
            {"sql": "INSERT INTO t VALUES (3)"}, {"sql": "SELECT * FROM t ORDER id"},
        ]}),
    )
    .await;
    assert!(msg(&out).contains("statement 2 of 2"), "{out}");
    assert_eq!(out["error"]["detail"]["position"], 23, "{out}");
    let out = ok(
        &mcp,
        json!({"action": "count", "profile": "db", "table": "t"}),
    )
    .await;
    assert_eq!(out["value"], 2, "the transaction was rolled back: {out}");

    let out = ok(
        &mcp,
        json!({"action": "query", "profile": "db", "max_rows": 10,
        "sql": "SELECT generate_series(1, 5000) AS n"}),
    )
    .await;
    assert_eq!(out["truncated"], true, "{out}");
    assert_eq!(out["row_count"], 10, "{out}");
    assert_eq!(out["total"], 5000, "{out}");
    let out = ok(
        &mcp,
        json!({"action": "query", "profile": "db", "max_rows": 10,
        "sql": "SELECT generate_series(1, 50000) AS n"}),
    )
    .await;
    assert_eq!(out["truncated"], true, "{out}");
    assert!(
        out.get("total").is_none_or(Value::is_null),
        "past what is counted, total is unknown: {out}"
    );
    mcp.close().await;

    // The profile says read_only: writes are refused whatever the call says.
    s.home.profiles(&json!({
        "db": {"type": "postgres", "host": "127.0.0.1", "port": s.pg.port, "user": "app",
               "database": "app", "password": format!("env:{PW_VAR}"), "read_only": true},
    }));
    let mcp = serve(&s.home, &s.password).await;
    let out = fails(
        &mcp,
        json!({"action": "query", "profile": "db", "read_only": false,
        "sql": "INSERT INTO t VALUES (9)"}),
    )
    .await;
    refused_as_read_only(&out, "profile 'db' has \"read_only\": true");
    let out = ok(
        &mcp,
        json!({"action": "count", "profile": "db", "table": "t"}),
    )
    .await;
    assert_eq!(out["value"], 2, "{out}");
    mcp.close().await;
}

#[tokio::test]
async fn read_only_forced_by_policy_refuses_writes() {
    let s = setup();
    s.pg.psql("app", "CREATE TABLE t (id int)");
    s.pg.psql("app", "ALTER TABLE t OWNER TO app");
    s.home.policy(
        "[plugin.psql.postgres]\nprofiles = [\"db\"]\nread_only = true\n[plugin.psql.artifacts]\n",
    );
    let mcp = serve(&s.home, &s.password).await;
    for args in [
        json!({"action": "insert", "profile": "db", "table": "t", "values": {"id": 1}}),
        json!({"action": "query", "profile": "db", "sql": "INSERT INTO t VALUES (1)", "read_only": false}),
        json!({"action": "query", "profile": "db", "sql": "DROP TABLE t"}),
        json!({"action": "transaction", "profile": "db", "statements": [{"sql": "DELETE FROM t"}]}),
    ] {
        let out = fails(&mcp, args.clone()).await;
        refused_as_read_only(&out, "[plugin.psql.postgres] read_only");
    }
    let out = ok(
        &mcp,
        json!({"action": "count", "profile": "db", "table": "t"}),
    )
    .await;
    assert_eq!(out["value"], 0);
    assert_eq!(s.pg.psql("app", "SELECT count(*) FROM t"), "0");
    // A profile the policy does not list is denied.
    s.home.profiles(&json!({
        "db": {"type": "postgres", "host": "127.0.0.1", "port": s.pg.port, "user": "app", "database": "app", "password": format!("env:{PW_VAR}")},
        "other": {"type": "postgres", "host": "127.0.0.1", "port": s.pg.port, "user": "app", "database": "app", "password": format!("env:{PW_VAR}")},
    }));
    mcp.close().await;
    let mcp = serve(&s.home, &s.password).await;
    let out = fails(
        &mcp,
        json!({"action": "query", "profile": "other", "sql": "SELECT 1"}),
    )
    .await;
    assert_eq!(out["error"]["kind"], "denied", "{out}");
    assert!(msg(&out).contains("[plugin.psql.postgres]"), "{out}");
    mcp.close().await;
}

#[tokio::test]
async fn the_pool_caps_backends_and_recovers_after_a_restart() {
    let mut s = setup();
    let mcp = serve(&s.home, &s.password).await;
    // 40 queries, 8 at a time: never more backends than the pool holds (4).
    let mut peak = 0;
    for _ in 0..5 {
        let calls = (0..8).map(|i| {
            mcp.call(
                "psql",
                json!({"action": "query", "profile": "db", "sql": "SELECT pg_sleep(0.05), $1::int AS i", "params": [i]}),
            )
        });
        for (err, out) in futures_join(calls).await {
            assert!(!err, "{out}");
        }
        peak = peak.max(s.pg.backends("app", "app"));
    }
    for _ in 0..20 {
        ok(
            &mcp,
            json!({"action": "query", "profile": "db", "sql": "SELECT 1"}),
        )
        .await;
    }
    let after = s.pg.backends("app", "app");
    eprintln!(
        "pool: peak {peak} backends after rounds of 8 concurrent calls; {after} after 20 sequential"
    );
    assert!((1..=4).contains(&after), "{after} backends for 60 queries");
    assert!(peak <= 4, "peak {peak}");

    // The server restarts between calls: the next call works on a fresh connection.
    s.pg.restart();
    let out = ok(
        &mcp,
        json!({"action": "query", "profile": "db", "sql": "SELECT 7 AS n", "mode": "value"}),
    )
    .await;
    assert_eq!(out["value"], 7, "{out}");
    s.pg.restart();
    let out = ok(
        &mcp,
        json!({"action": "count", "profile": "db", "table": "pg_class"}),
    )
    .await;
    assert!(out["value"].as_i64().unwrap() > 0, "{out}");
    // The server down: a clean error, then back.
    s.pg.stop();
    let out = fails(
        &mcp,
        json!({"action": "query", "profile": "db", "sql": "SELECT 1"}),
    )
    .await;
    assert_eq!(out["error"]["kind"], "failed", "{out}");
    assert!(msg(&out).contains("127.0.0.1"), "{out}");
    s.pg.restart();
    ok(
        &mcp,
        json!({"action": "query", "profile": "db", "sql": "SELECT 1"}),
    )
    .await;
    mcp.close().await;
}

/// Polls every future concurrently until all are done (no extra crate for `join_all`).
async fn futures_join<F: std::future::Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = fs.map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in pinned.iter_mut().zip(results.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().map(|r| r.expect("ready")).collect()
}

#[tokio::test]
async fn a_million_row_export_lands_in_an_artifact() {
    let s = setup();
    s.pg.psql(
        "app",
        "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS hash, g % 7 = 0 AS seventh, \
         'line ' || g || E'\\nwith \"quotes\", commas' AS note FROM generate_series(1, 1000000) g; \
         ALTER TABLE big OWNER TO app",
    );
    let mcp = serve(&s.home, &s.password).await;
    let query = "SELECT * FROM big ORDER BY id";
    let started = std::time::Instant::now();
    let out = ok(
        &mcp,
        json!({"action": "export", "profile": "db", "sql": query, "timeout_ms": 300000}),
    )
    .await;
    let infra_ms = started.elapsed().as_millis();
    assert_eq!(out["exported_rows"], 1_000_000, "{out}");
    let path = artifact_path(&s.home, &out);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(out["artifact"]["size"], bytes.len() as u64);
    let sha = hex::encode(Sha256::digest(&bytes));
    assert_eq!(out["artifact"]["sha256"], sha, "{out}");
    // The same bytes psql's COPY gives.
    let started = std::time::Instant::now();
    let reference = s.pg.copy_out(
        "app",
        &format!("COPY ({query}) TO STDOUT (FORMAT csv, HEADER)"),
    );
    let psql_ms = started.elapsed().as_millis();
    assert_eq!(
        hex::encode(Sha256::digest(&reference)),
        sha,
        "identical to psql's COPY output"
    );
    eprintln!(
        "1M-row csv export: infra {infra_ms} ms ({} bytes), psql COPY {psql_ms} ms",
        bytes.len()
    );
    // jsonl: one object per line.
    let out = ok(&mcp, json!({"action": "export", "profile": "db", "format": "jsonl", "sql": query, "timeout_ms": 300000})).await;
    assert_eq!(out["exported_rows"], 1_000_000, "{out}");
    let text = std::fs::read_to_string(artifact_path(&s.home, &out)).unwrap();
    assert_eq!(text.lines().count(), 1_000_000);
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["id"], 1_000_000);
    assert_eq!(last["note"], "line 1000000\nwith \"quotes\", commas");
    // A query that returns no rows is refused as an export; COPY takes no parameters.
    let out = fails(
        &mcp,
        json!({"action": "export", "profile": "db", "sql": "DELETE FROM big"}),
    )
    .await;
    assert!(msg(&out).contains("returns rows"), "{out}");
    let out = fails(
        &mcp,
        json!({"action": "export", "profile": "db", "sql": "SELEC 1"}),
    )
    .await;
    assert!(msg(&out).contains("begins with SELEC"), "{out}");
    let out = fails(
        &mcp,
        json!({"action": "export", "profile": "db", "sql": "SELECT 1 ORDER id"}),
    )
    .await;
    assert_eq!(
        out["error"]["detail"]["position"], 16,
        "points into the caller's SQL: {out}"
    );
    mcp.close().await;
}

#[tokio::test]
async fn the_password_never_leaves_the_host() {
    let s = setup();
    let mcp = serve(&s.home, &s.password).await;
    let pw = s.password.clone();
    let mut outputs = String::new();
    let calls = [
        json!({"action": "query", "profile": "db", "sql": "CREATE TABLE secrets (v text)"}),
        json!({"action": "insert", "profile": "db", "table": "secrets", "values": {"v": pw}}),
        json!({"action": "query", "profile": "db", "sql": "SELECT $1::text AS echoed, v FROM secrets", "params": [pw]}),
        json!({"action": "select", "profile": "db", "table": "secrets"}),
        json!({"action": "export", "profile": "db", "table": "secrets"}),
        json!({"action": "export", "profile": "db", "table": "secrets", "format": "jsonl"}),
        json!({"action": "query", "profile": "db", "sql": format!("SELECT '{pw}' FRM x")}),
        json!({"action": "query", "profile": "db", "sql": "SELECT current_setting('application_name')"}),
        json!({"action": "database_info", "profile": "db"}),
        json!({"action": "tables", "profile": "db"}),
        json!({"action": "columns", "profile": "db", "table": "secrets"}),
        json!({"action": "explain", "profile": "db", "sql": "SELECT * FROM secrets"}),
        json!({"action": "count", "profile": "db", "table": "secrets"}),
        json!({"action": "exists", "profile": "db", "table": "secrets"}),
        json!({"action": "batch", "profile": "db", "statements": [{"sql": "SELECT v FROM secrets"}]}),
        json!({"action": "transaction", "profile": "db", "statements": [{"sql": "SELECT v FROM secrets"}]}),
        json!({"action": "update", "profile": "db", "table": "secrets", "set": {"v": "x"}, "where": {"v": pw}}),
        json!({"action": "delete", "profile": "db", "table": "secrets", "all_rows": true}),
    ];
    for args in calls {
        let (_, out) = mcp.call("psql", args).await;
        outputs.push_str(&out.to_string());
    }
    // A wrong password: the server says so, without the value.
    let mut stderr = mcp.close().await;
    s.pg.psql(
        "postgres",
        "ALTER ROLE app PASSWORD 'something-else-entirely'",
    );
    let mcp = serve(&s.home, &s.password).await;
    let out = fails(
        &mcp,
        json!({"action": "query", "profile": "db", "sql": "SELECT 1"}),
    )
    .await;
    assert!(
        msg(&out).contains("password authentication failed"),
        "{out}"
    );
    outputs.push_str(&out.to_string());
    // Both servers' stderr, each read to its exit.
    stderr.push_str(&mcp.close().await);

    assert!(
        outputs.contains("[REDACTED]") || outputs.contains("REDACTED"),
        "the echoed secret is scrubbed: {outputs}"
    );
    assert!(!outputs.contains(&pw), "MCP output leaked the password");
    assert!(
        !contains(&s.home.all_bytes(), &pw),
        "the state directory (audit, artifacts) leaked the password"
    );
    assert!(
        !contains(stderr.as_bytes(), &pw),
        "stderr leaked the password"
    );
}

/// What the database holds, read through `psql` as the superuser outside infra: rows, the
/// sequence, tables, role settings, prepared transactions and large objects.
fn fingerprint(pg: &PgServer) -> String {
    pg.psql(
        "app",
        "SELECT concat_ws(' ', 'rows=' || (SELECT count(*) FROM t), \
         'seq=' || (SELECT last_value || '/' || is_called FROM s), \
         'tables=' || (SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace), \
         'role_settings=' || (SELECT count(*) FROM pg_db_role_setting), \
         'prepared=' || (SELECT count(*) FROM pg_prepared_xacts), \
         'large_objects=' || (SELECT count(*) FROM pg_largeobject_metadata))",
    )
}

/// A read-only profile cannot be made to write. Each trick goes through the psql plugin (every
/// action that takes SQL) on a profile with `"read_only": true`, and the database is checked
/// through `psql` outside infra before and after it.
#[tokio::test]
async fn a_read_only_profile_cannot_be_made_to_write() {
    let s = setup();
    s.pg.psql(
        "app",
        "CREATE TABLE t (id int); CREATE SEQUENCE s; \
         CREATE FUNCTION f_ins() RETURNS int VOLATILE LANGUAGE sql \
           AS 'INSERT INTO t VALUES (1) RETURNING id'; \
         CREATE PROCEDURE p_ins() LANGUAGE plpgsql AS $$ BEGIN INSERT INTO t VALUES (1); END $$; \
         CREATE PROCEDURE p_commit() LANGUAGE plpgsql AS $$ BEGIN COMMIT; \
           SET TRANSACTION READ WRITE; INSERT INTO t VALUES (1); COMMIT; END $$; \
         ALTER TABLE t OWNER TO app; ALTER SEQUENCE s OWNER TO app; \
         ALTER FUNCTION f_ins() OWNER TO app; ALTER PROCEDURE p_ins() OWNER TO app; \
         ALTER PROCEDURE p_commit() OWNER TO app; GRANT CREATE ON SCHEMA public TO app",
    );
    s.home.profiles(&json!({
        "ro": {"type": "postgres", "host": "127.0.0.1", "port": s.pg.port, "user": "app",
               "database": "app", "password": format!("env:{PW_VAR}"), "read_only": true},
    }));
    let mcp = serve(&s.home, &s.password).await;
    let q = |sql: &str| json!({"action": "query", "profile": "ro", "sql": sql});
    let tx = |sqls: &[&str]| {
        let statements: Vec<Value> = sqls.iter().map(|s| json!({"sql": s})).collect();
        json!({"action": "transaction", "profile": "ro", "statements": statements})
    };
    let ins = "INSERT INTO t VALUES (1)";
    let tricks = [
        ("COMMIT, then a write", tx(&["COMMIT", ins])),
        ("END, then a write", tx(&["END", ins])),
        ("ROLLBACK, then a write", tx(&["ROLLBACK", ins])),
        ("ABORT, then a write", tx(&["ABORT", ins])),
        (
            "a commented COMMIT",
            tx(&["/* a /* nested */ comment */ COMMIT", ins]),
        ),
        (
            "a lowercase COMMIT in odd whitespace",
            tx(&["-- x\n\t\x0c  cOmMiT\n;", "\n\tinsert\tinto t values (1)"]),
        ),
        (
            "a COMMIT after a line comment that \\r ends",
            tx(&["-- x\rCOMMIT", ins]),
        ),
        (
            "a write hidden behind a line comment that \\r ends",
            q("-- x\rCREATE TABLE made3 AS\nSELECT 1"),
        ),
        (
            "BEGIN, COMMIT, BEGIN",
            tx(&["BEGIN", "COMMIT", "BEGIN", ins, "COMMIT"]),
        ),
        (
            "START TRANSACTION READ WRITE after COMMIT",
            tx(&["COMMIT", "START TRANSACTION READ WRITE", ins, "COMMIT"]),
        ),
        (
            "SAVEPOINT, RELEASE, COMMIT",
            tx(&["SAVEPOINT a", "RELEASE a", "COMMIT", ins]),
        ),
        (
            "SET TRANSACTION READ WRITE",
            tx(&["SET TRANSACTION READ WRITE", ins, "COMMIT"]),
        ),
        (
            "SET SESSION CHARACTERISTICS",
            tx(&[
                "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
                "COMMIT",
                ins,
            ]),
        ),
        (
            "set_config of the session default, then a later write",
            tx(&[
                "SELECT set_config('default_transaction_read_only', 'off', false)",
                "COMMIT",
                ins,
            ]),
        ),
        (
            "set_config of transaction_read_only",
            tx(&[
                "SELECT set_config('transaction_read_only', 'off', true)",
                ins,
            ]),
        ),
        (
            "set_config and a write in one query",
            q("SELECT set_config('transaction_read_only', 'off', true), f_ins()"),
        ),
        (
            "two statements in one string",
            q("SELECT 1; INSERT INTO t VALUES (1)"),
        ),
        (
            "COMMIT and a write in one string",
            q("COMMIT; INSERT INTO t VALUES (1)"),
        ),
        ("DO", q("DO $$ BEGIN INSERT INTO t VALUES (1); END $$")),
        (
            "COMMIT, then DO",
            tx(&["COMMIT", "DO $$ BEGIN INSERT INTO t VALUES (1); END $$"]),
        ),
        ("CALL", q("CALL p_ins()")),
        ("CALL of a procedure that commits", tx(&["CALL p_commit()"])),
        ("a volatile function that inserts", q("SELECT f_ins()")),
        ("the same in parentheses", q("((SELECT f_ins()))")),
        (
            "a data-modifying WITH",
            q("WITH x AS (INSERT INTO t VALUES (1) RETURNING id) SELECT * FROM x"),
        ),
        (
            "EXPLAIN ANALYZE INSERT",
            q("EXPLAIN ANALYZE INSERT INTO t VALUES (1)"),
        ),
        (
            "explain with analyze",
            json!({"action": "explain", "profile": "ro", "analyze": true, "read_only": false, "sql": ins}),
        ),
        ("nextval", q("SELECT nextval('s')")),
        ("setval", q("SELECT setval('s', 42)")),
        (
            "PREPARE TRANSACTION",
            tx(&["PREPARE TRANSACTION 'p1'", ins]),
        ),
        ("COPY FROM", q("COPY t FROM STDIN")),
        ("CREATE TABLE AS", q("CREATE TABLE made AS SELECT 1 AS x")),
        ("SELECT INTO", q("SELECT 1 AS x INTO made2")),
        (
            "ALTER ROLE SET after COMMIT",
            tx(&[
                "COMMIT",
                "ALTER ROLE app SET default_transaction_read_only = off",
            ]),
        ),
        ("a large object", q("SELECT lo_from_bytea(0, 'x')")),
        (
            "export of INSERT … RETURNING",
            json!({"action": "export", "profile": "ro", "sql": "INSERT INTO t VALUES (1) RETURNING id"}),
        ),
        (
            "export of a volatile function",
            json!({"action": "export", "profile": "ro", "sql": "SELECT f_ins()"}),
        ),
        (
            "batch: COMMIT, then a write",
            json!({"action": "batch", "profile": "ro", "stop_on_error": false,
                   "statements": [{"sql": "COMMIT"}, {"sql": ins}]}),
        ),
        (
            "the insert helper asking read_only false",
            json!({"action": "insert", "profile": "ro", "table": "t", "values": {"id": 1}, "read_only": false}),
        ),
    ];
    let mut wrote = Vec::new();
    for (name, args) in &tricks {
        let before = fingerprint(&s.pg);
        let (_, out) = mcp.call("psql", args.clone()).await;
        let after = fingerprint(&s.pg);
        if before != after {
            eprintln!("WROTE through '{name}': {before} -> {after}; infra said {out}");
            wrote.push(*name);
        }
    }
    assert!(
        wrote.is_empty(),
        "{} of {} tricks wrote through a read-only profile: {wrote:?}",
        wrote.len(),
        tricks.len()
    );
    // Refused before anything is sent, saying why and naming the statement.
    let out = fails(&mcp, tx(&["SELECT 1", "COMMIT", ins])).await;
    refused_as_read_only(&out, "profile 'ro' has \"read_only\": true");
    assert_eq!(out["error"]["field"], "statements[1].sql", "{out}");
    assert!(msg(&out).contains("begins with COMMIT"), "{out}");
    // Queries still work.
    let out = ok(
        &mcp,
        json!({"action": "query", "profile": "ro", "mode": "value",
               "sql": "/* count */ (SELECT count(*) FROM t)"}),
    )
    .await;
    assert_eq!(out["value"], 0, "{out}");
    let out = ok(
        &mcp,
        tx(&[
            "SHOW transaction_read_only",
            "SHOW default_transaction_read_only",
            "TABLE t",
            "VALUES (1)",
        ]),
    )
    .await;
    assert_eq!(
        out["results"][0]["rows"][0]["transaction_read_only"], "on",
        "{out}"
    );
    // The session's own default is read-only too, should a statement ever leave the transaction.
    assert_eq!(
        out["results"][1]["rows"][0]["default_transaction_read_only"], "on",
        "{out}"
    );
    mcp.close().await;
}

/// PostgreSQL restarts while a query runs: the cut call says the connection was lost and to
/// retry, and the next call works on a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_query_fails_the_call_clearly_and_the_next_one_works() {
    let mut s = setup();
    let mcp = serve(&s.home, &s.password).await;
    let slow = mcp.call(
        "psql",
        json!({"action": "query", "profile": "db", "sql": "SELECT pg_sleep(60) AS slept",
               "timeout_ms": 120000}),
    );
    let pg = &mut s.pg;
    let restart = async move {
        // Restart only once the query is running on the server.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%' \
             AND state = 'active'",
        ) != "1"
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the query never started"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        tokio::task::block_in_place(|| pg.restart());
    };
    let ((err, out), ()) = tokio::join!(slow, restart);
    assert!(err, "the cut call failed: {out}");
    assert_eq!(out["error"]["kind"], "failed", "{out}");
    let m = msg(&out);
    assert!(
        m.contains("connection") && m.contains("lost") && m.contains("retry"),
        "says the connection was lost and to retry: {out}"
    );
    let out = ok(
        &mcp,
        json!({"action": "query", "profile": "db", "sql": "SELECT 7 AS n", "mode": "value"}),
    )
    .await;
    assert_eq!(out["value"], 7, "{out}");
    mcp.close().await;
}

/// A policy whose `[limits]` add `extra` to the psql grants.
fn policy_with_limits(extra: &str) -> String {
    format!(
        "[limits]\n{extra}\n[plugin.psql.postgres]\nprofiles = [\"*\"]\nread_only = false\n\
         [plugin.psql.artifacts]\n"
    )
}

/// Whether `hay` holds the first four characters of `secret` (any longer prefix holds them).
fn has_prefix_of(hay: &[u8], secret: &str) -> bool {
    contains(hay, &secret[..4])
}

/// Rows are clamped to `[limits] capture_bytes` whatever `max_rows` asks, and the cut never
/// splits a reflected password: for every position of the cut across it, the output holds the
/// whole secret scrubbed, or none of it.
#[tokio::test]
async fn rows_are_clamped_to_capture_bytes_and_never_cut_a_secret() {
    const CAPTURE: usize = 2048;
    let s = setup();
    s.home
        .policy(&policy_with_limits(&format!("capture_bytes = {CAPTURE}")));
    let mcp = serve(&s.home, &s.password).await;
    let out = ok(
        &mcp,
        json!({"action": "query", "profile": "db", "max_rows": 1000000,
               "sql": "SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 400) g"}),
    )
    .await;
    assert_eq!(out["truncated"], true, "{out}");
    assert_eq!(out["total"], 400, "{out}");
    let rows = out["rows"].as_array().expect("rows");
    assert!(!rows.is_empty(), "{out}");
    assert!(
        out["rows"].to_string().len() <= CAPTURE,
        "{} rows exceed {CAPTURE} bytes",
        rows.len()
    );
    // The statements of a transaction share the budget.
    let out = ok(
        &mcp,
        json!({"action": "transaction", "profile": "db", "statements": [
            {"sql": "SELECT repeat('x', 1500) AS a"}, {"sql": "SELECT repeat('y', 1500) AS b"}]}),
    )
    .await;
    assert_eq!(out["results"][0]["truncated"], false, "{out}");
    assert_eq!(out["results"][1]["truncated"], true, "{out}");
    assert_eq!(out["results"][1]["row_count"], 0, "{out}");
    // A first row of padding, then the password: move the cut across every byte of it.
    let pw = s.password.clone();
    let row2 = json!({"v": pw}).to_string().len();
    let first = CAPTURE - row2 - "[{\"v\":\"\"},]".len();
    for pad in first - 8..first + row2 + 8 {
        let out = ok(
            &mcp,
            json!({"action": "query", "profile": "db",
                   "sql": "SELECT v FROM (VALUES (1, repeat('x', $1::int)), (2, $2::text)) AS r(i, v) ORDER BY i",
                   "params": [pad, pw]}),
        )
        .await;
        let text = out.to_string();
        assert!(
            !has_prefix_of(text.as_bytes(), &pw),
            "pad {pad}: part of the password reached the output: {text}"
        );
        assert!(
            out["truncated"] == true || text.contains("[REDACTED]"),
            "pad {pad}: {text}"
        );
    }
    mcp.close().await;
}

/// A COPY export is held to `[limits] artifact_bytes`, measured on scrubbed bytes: for every
/// position of the limit across a reflected password, the export either fits (whole secret
/// scrubbed) or fails with advice and leaves no artifact; no part of the password is stored.
#[tokio::test]
async fn exports_are_held_to_artifact_bytes_and_never_store_part_of_a_secret() {
    const LIMIT: usize = 4096;
    let s = setup();
    s.home
        .policy(&policy_with_limits(&format!("artifact_bytes = {LIMIT}")));
    let mcp = serve(&s.home, &s.password).await;
    let pw = s.password.clone();
    // csv: "v\n", the padding line, then the password's line ("[REDACTED]" once scrubbed).
    let fits = |pad: usize| "v\n".len() + pad + "\n[REDACTED]\n".len() <= LIMIT;
    let first = LIMIT - 2 - 1 - pw.len() - 1;
    let (mut fitted, mut refused) = (0, 0);
    for pad in first - 8..first + pw.len() + 8 {
        let (err, out) = mcp
            .call(
                "psql",
                json!({"action": "export", "profile": "db",
                       "sql": format!("SELECT v FROM (VALUES (1, repeat('x', {pad})), (2, '{pw}')) AS r(i, v) ORDER BY i")}),
            )
            .await;
        if fits(pad) {
            assert!(!err, "pad {pad}: {out}");
            let data = std::fs::read(artifact_path(&s.home, &out)).unwrap();
            assert!(data.len() <= LIMIT, "pad {pad}: {} bytes", data.len());
            assert!(contains(&data, "[REDACTED]"), "pad {pad}");
            fitted += 1;
        } else {
            assert!(err, "pad {pad}: an export over the limit is refused: {out}");
            assert!(msg(&out).contains("artifact_bytes"), "{out}");
            refused += 1;
        }
        assert!(
            !has_prefix_of(out.to_string().as_bytes(), &pw),
            "pad {pad}: {out}"
        );
    }
    assert!(
        fitted > 0 && refused > 0,
        "{fitted} fitted, {refused} refused"
    );
    mcp.close().await;
    assert!(
        !has_prefix_of(&s.home.all_bytes(), &pw),
        "part of the password is in the state directory (artifacts, audit)"
    );
}

/// A password with a quote and a backslash, reflected in rows and in csv and jsonl exports,
/// where JSON escapes it and CSV doubles its quote: no form of it reaches the output or the
/// state directory.
#[tokio::test]
async fn a_password_that_needs_quoting_is_scrubbed_in_every_form() {
    let tail = canary("pgcanary");
    let s = setup_with(format!("q\"uo\\te'{tail}"));
    let pw = s.password.clone();
    let mcp = serve(&s.home, &s.password).await;
    ok(
        &mcp,
        json!({"action": "query", "profile": "db", "sql": "CREATE TABLE secrets (v text)"}),
    )
    .await;
    ok(
        &mcp,
        json!({"action": "insert", "profile": "db", "table": "secrets", "values": {"v": pw}}),
    )
    .await;
    let mut outputs = String::new();
    for args in [
        json!({"action": "query", "profile": "db", "sql": "SELECT $1::text AS echoed, v, row_to_json(secrets)::text AS j FROM secrets", "params": [pw]}),
        json!({"action": "export", "profile": "db", "table": "secrets"}),
        json!({"action": "export", "profile": "db", "table": "secrets", "format": "jsonl"}),
    ] {
        let out = ok(&mcp, args).await;
        outputs.push_str(&out.to_string());
    }
    mcp.close().await;
    assert!(outputs.contains("[REDACTED]"), "{outputs}");
    assert!(
        !outputs.contains(&tail),
        "the output holds a form of the password: {outputs}"
    );
    assert!(
        !contains(&s.home.all_bytes(), &tail),
        "the state directory (artifacts, audit) holds a form of the password"
    );
}

/// The server clips what it quotes (values in "Failing row contains" to 64 bytes, identifiers to
/// 63) and a clipped password no longer matches the scrubber; the plugin pointed at errors with
/// a snippet of the SQL cut to 24 characters. For every clip position across the password, no
/// part of it longer than three characters reaches the output.
#[tokio::test]
async fn a_password_clipped_by_the_server_or_a_snippet_leaves_no_prefix() {
    let s = setup();
    let pw = s.password.clone();
    let mcp = serve(&s.home, &s.password).await;
    ok(
        &mcp,
        json!({"action": "query", "profile": "db", "sql": "CREATE TABLE c (v text, n int NOT NULL)"}),
    )
    .await;
    let mut leaks = Vec::new();
    for pad in 20..64 - 3 {
        let x = "x".repeat(pad);
        for args in [
            json!({"action": "query", "profile": "db",
                   "sql": "INSERT INTO c (v, n) VALUES (repeat('x', $1::int) || $2::text, NULL)",
                   "params": [pad, pw]}),
            json!({"action": "query", "profile": "db", "sql": format!("SELECT 1 AS \"{x}{pw}\"")}),
            json!({"action": "query", "profile": "db", "sql": format!("SELECT * FROM \"{pw}\"")}),
        ] {
            let (_, out) = mcp.call("psql", args.clone()).await;
            if has_prefix_of(out.to_string().as_bytes(), &pw) {
                leaks.push(format!("pad {pad}: {out}"));
            }
        }
    }
    mcp.close().await;
    assert!(
        leaks.is_empty(),
        "{} leaks, e.g. {:?}",
        leaks.len(),
        leaks.first()
    );
}
