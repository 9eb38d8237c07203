//! The demo's PostgreSQL steps, against the `--servers` profile: bound values, a table built
//! from JSON, a guarded delete, an export streamed to an artifact, a server error with position.

use serde_json::json;

use super::{Demo, short};

/// Runs the psql steps on `profile`.
pub(super) async fn steps(d: &mut Demo, profile: &str) {
    let (err, _) = d
        .call(
            "A statement on a pooled PostgreSQL connection (the password stays in the host)",
            "psql",
            json!({"action": "query", "profile": profile, "mode": "command",
                   "sql": "CREATE TABLE IF NOT EXISTS demo_items (id serial PRIMARY KEY, name text, qty int)"}),
        )
        .await;
    d.expect("table created", !err);

    let (err, out) = d
        .call(
            "Insert from JSON: identifiers quoted, values bound with the column types",
            "psql",
            json!({"action": "insert", "profile": profile, "table": "demo_items",
                   "values": [{"name": "bolt", "qty": 10}, {"name": "nut", "qty": 5},
                              {"name": "o'brien\"; DROP TABLE demo_items; --", "qty": 1}]}),
        )
        .await;
    println!("   → {} rows; sql {}", out["affected"], short(&out["sql"]));
    d.expect("3 rows inserted", !err && out["affected"] == 3);

    let (err, out) = d
        .call(
            "A query with parameters (never interpolated into the SQL)",
            "psql",
            json!({"action": "query", "profile": profile,
                   "sql": "SELECT name, qty FROM demo_items WHERE qty >= $1 ORDER BY qty", "params": [5]}),
        )
        .await;
    println!("   → {}", short(&out["rows"]));
    d.expect(
        "2 rows",
        !err && out["rows"].as_array().map_or(0, Vec::len) == 2,
    );

    let (err, out) = d
        .call(
            "A delete without a filter is refused",
            "psql",
            json!({"action": "delete", "profile": profile, "table": "demo_items"}),
        )
        .await;
    println!("   → {}", out["error"]["message"].as_str().unwrap_or("?"));
    d.expect(
        "refused, naming all_rows",
        err && out["error"]["field"].is_string(),
    );

    let (err, out) = d
        .call(
            "Export: COPY streamed by the host into an artifact, never through the sandbox",
            "psql",
            json!({"action": "export", "profile": profile, "format": "csv",
                   "sql": "SELECT g AS n, md5(g::text) AS hash FROM generate_series(1, 100000) g"}),
        )
        .await;
    println!(
        "   → {} rows, {} ({} bytes)",
        out["exported_rows"], out["artifact"]["uri"], out["artifact"]["size"]
    );
    d.expect(
        "100000 rows exported",
        !err && out["exported_rows"] == 100_000,
    );

    let (err, out) = d
        .call(
            "A syntax error: the server's message, SQLSTATE and position",
            "psql",
            json!({"action": "query", "profile": profile, "sql": "SELECT * FORM demo_items"}),
        )
        .await;
    println!("   → {}", out["error"]["message"].as_str().unwrap_or("?"));
    d.expect("SQLSTATE 42601", err && out.to_string().contains("42601"));
    let _ = d
        .call(
            "Tidy up",
            "psql",
            json!({"action": "query", "profile": profile, "mode": "command", "sql": "DROP TABLE demo_items"}),
        )
        .await;
}
