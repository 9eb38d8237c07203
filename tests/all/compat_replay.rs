//! The replay of the replaced tool's catalog: for every tool and action it documents
//! (`tests/data/seed_tool_catalog.json` lists them), a call shaped as it documents it, through
//! the real binary over MCP with a bare state directory. Each one is understood: it succeeds, or
//! fails for a reason it names — a grant, a flag, a target or profile that is not configured
//! here, a deliberately dropped action (docs/compat.md) — never because a tool, action or field
//! name is unknown.

use infra_tests::{Home, text};
use serde_json::{Value, json};

/// The fields a call of `action` carries, by the replaced tool's names.
fn sample(tool: &str, action: &str) -> Value {
    let job = "j-0123456789abcdef";
    let a = |v: Value| v;
    match (tool, action) {
        (_, "set") => a(json!({"key": "k", "value": 1})),
        (_, "get" | "unset") if tool.contains("state") => a(json!({"key": "k"})),
        (t, "get" | "head" | "tail") if t.contains("artifact") => {
            a(json!({"uri": "artifact://nothing"}))
        }
        (_, "job_list") => json!({}),
        (t, _) if t.contains("psql") || t == "sql" => psql(action),
        (_, a2) if a2.starts_with("job_") || a2.ends_with("_job") => {
            json!({"job_id": job, "timeout_ms": 200})
        }
        (_, "runbook_upsert") => json!({"name": "replay", "runbook": {"description": "d",
            "steps": [{"id": "a", "tool": "mcp_state", "args": {"action": "get", "key": "k"}}]}}),
        (_, "runbook_get" | "runbook_delete" | "runbook_compile") => {
            json!({"name": "repo.snapshot"})
        }
        (_, "runbook_run") => json!({"name": "replay", "input": {}}),
        (_, "runbook_upsert_dsl" | "runbook_run_dsl") => json!({"name": "x", "dsl": "x"}),
        (t, "compile" | "dry_run" | "explain") if t.contains("intent") => {
            json!({"intent": {"type": "repo.snapshot", "inputs": {}}})
        }
        (t, "execute") if t.contains("intent") => json!({"intent": {"type": "http.check",
            "inputs": {"url": "http://127.0.0.1:9/"}}}),
        (_, "exec" | "exec_detached" | "exec_follow") => {
            json!({"target": "box", "command": "true"})
        }
        (_, "batch") => json!({"target": "box", "commands": ["true"]}),
        (_, "system_info" | "check_host") => json!({"target": "box"}),
        (_, "sftp_list" | "sftp_exists") => json!({"target": "box", "path": "/tmp"}),
        (_, "sftp_upload") => json!({"target": "box", "remote_path": "/tmp/x", "content": "x"}),
        (_, "sftp_download") => json!({"target": "box", "remote_path": "/tmp/x"}),
        (_, "deploy_file") => json!({"target": "box", "remote_path": "/tmp/x", "content": "x"}),
        (_, "request" | "check" | "smoke_http" | "download") => {
            json!({"url": "http://127.0.0.1:9/"})
        }
        (_, "paginate") => json!({"url": "http://127.0.0.1:9/"}),
        (t, _) if t.contains("repo") => json!({"repo_root": "/tmp/nowhere"}),
        (t, _) if t.contains("local") => json!({"command": "true", "path": "/tmp"}),
        (t, "run") if t.contains("pipeline") => json!({"flow": "http_to_sftp",
            "http": {"url": "http://127.0.0.1:9/"}, "sftp": {"profile_name": "box", "remote_path": "/tmp/x"}}),
        _ => json!({}),
    }
}

/// A Postgres call by the replaced tool's field names.
fn psql(action: &str) -> Value {
    let mut v = json!({"profile_name": "db"});
    match action {
        "query" | "explain" | "export" => v["sql"] = json!("select 1"),
        "batch" | "transaction" => v["statements"] = json!([{"sql": "select 1"}]),
        "insert" | "insert_bulk" => {
            v["table"] = json!("t");
            v["rows"] = json!([{"a": 1}])
        }
        "update" => {
            v["table"] = json!("t");
            v["data"] = json!({"a": 1});
            v["filters"] = json!({"a": 2})
        }
        "delete" | "select" | "count" | "exists" => {
            v["table"] = json!("t");
            v["filters"] = json!({"a": 2})
        }
        "catalog_columns" => v["table"] = json!("t"),
        _ => {}
    }
    v
}

/// Words an answer must not say: the name was not understood.
const NOT_UNDERSTOOD: &[&str] = &[
    "unknown tool",
    "unknown field",
    "has no action",
    "unknown variant",
];

#[tokio::test]
async fn every_tool_and_action_of_the_replaced_catalog_is_understood() {
    let catalog: Vec<Value> =
        serde_json::from_str(include_str!("../data/seed_tool_catalog.json")).unwrap();
    let home = Home::new();
    let mcp = home.mcp().await;
    let mut misunderstood = Vec::new();
    let mut calls = 0;
    for t in &catalog {
        let tool = text(t, "/name");
        let actions: Vec<String> = t["actions"]
            .as_array()
            .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
            .unwrap_or_else(|| vec![String::new()]);
        for action in actions {
            let mut args = sample(tool, &action);
            if !action.is_empty() {
                args["action"] = json!(action);
            }
            args["timeout_ms"] = json!(3000);
            let (err, out) = mcp.call(tool, args.clone()).await;
            calls += 1;
            let said = out["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase();
            let bad = err && NOT_UNDERSTOOD.iter().any(|w| said.contains(w));
            // A failure names what to do: a field, a grant, a configuration file, the docs.
            let unnamed = err && out["error"]["field"].is_null() && said.len() < 20;
            if bad || unnamed {
                misunderstood.push(format!("{tool} {action} {args}: {said}"));
            }
        }
    }
    assert!(calls > 150, "{calls} calls");
    assert!(
        misunderstood.is_empty(),
        "not understood ({}):\n{}",
        misunderstood.len(),
        misunderstood.join("\n")
    );
}
