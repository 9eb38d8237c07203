//! Calls shaped as the tool infra replaces documents them, through the real binary over MCP:
//! its tool, action and field names reach the same behaviour as infra's own; what infra dropped
//! is refused with the reason; the audit begin record keeps what was sent next to what it meant.

use infra_tests::{Home, audit_records, text};
use serde_json::{Value, json};

#[tokio::test]
async fn old_names_reach_the_same_tools_and_the_audit_keeps_what_was_sent() {
    let home = Home::new();
    let mcp = home.mcp().await;
    let ok = |out: &Value| out["ok"] == true;

    // mcp_state, with its own action names.
    let (err, out) = mcp
        .call(
            "mcp_state",
            json!({"action": "set", "key": "k", "value": [1, 2]}),
        )
        .await;
    assert!(!err && ok(&out), "{out}");
    let (_, out) = mcp
        .call("mcp_state", json!({"action": "get", "key": "k"}))
        .await;
    assert_eq!(out["value"], json!([1, 2]), "{out}");
    assert_eq!(out["tool"], "state", "answered as infra's tool: {out}");

    // mcp_runbook / mcp_audit / mcp_jobs / job: renamed actions.
    for (tool, args, meant) in [
        ("mcp_runbook", json!({"action": "runbook_list"}), "list"),
        (
            "mcp_runbook",
            json!({"action": "runbook_compile", "name": "repo.snapshot"}),
            "compile",
        ),
        ("mcp_audit", json!({"action": "audit_stats"}), "stats"),
        (
            "mcp_audit",
            json!({"action": "audit_list", "limit": 3}),
            "list",
        ),
        ("mcp_jobs", json!({"action": "job_list"}), "list"),
        ("job", json!({"action": "job_list"}), "list"),
        ("mcp_artifacts", json!({"action": "list"}), "list"),
    ] {
        let (err, out) = mcp.call(tool, args.clone()).await;
        assert!(!err, "{tool} {args}: {out}");
        assert_eq!(out["action"], meant, "{tool} {args}: {out}");
    }

    // A runbook step may use the old names too.
    let rb = json!({"description": "old names", "steps": [
        {"id": "a", "tool": "mcp_state", "args": {"action": "set", "key": "x", "value": 1}},
        {"id": "b", "tool": "mcp_audit", "args": {"action": "audit_tail", "limit": 1}}]});
    let (err, out) = mcp
        .call(
            "mcp_runbook",
            json!({"action": "runbook_upsert", "name": "old", "runbook": rb}),
        )
        .await;
    assert!(!err, "{out}");
    let (err, out) = mcp
        .call(
            "mcp_runbook",
            json!({"action": "runbook_run", "name": "old"}),
        )
        .await;
    assert!(!err, "{out}");

    // Dropped on purpose: refused with why, naming the docs.
    for (tool, args, why) in [
        ("mcp_audit", json!({"action": "audit_clear"}), "append-only"),
        (
            "mcp_ssh_manager",
            json!({"action": "profile_upsert", "name": "x"}),
            "targets.json",
        ),
        (
            "mcp_vault",
            json!({"action": "profile_list"}),
            "http profile",
        ),
        ("legend", json!({}), "help"),
        (
            "mcp_jobs",
            json!({"action": "job_forget", "job_id": "j"}),
            "registry",
        ),
    ] {
        let (err, out) = mcp.call(tool, args.clone()).await;
        assert!(err, "{tool} {args}: {out}");
        let m = text(&out, "/error/message");
        assert!(
            m.contains(why) && m.contains("docs/compat.md"),
            "{tool}: {m}"
        );
    }

    // help shows the table.
    let (_, out) = mcp.call("help", json!({"query": "alias"})).await;
    assert!(
        out["compat"]["actions"].as_array().unwrap().len() > 20,
        "{out}"
    );

    // The audit keeps what was sent and what it meant.
    let begins: Vec<Value> = audit_records(home.path())
        .into_iter()
        .filter(|r| r["kind"] == "begin" && r.get("sent").is_some())
        .collect();
    let stats = begins
        .iter()
        .find(|r| r["sent"]["names"]["action"]["sent"] == "audit_stats")
        .expect("a begin record for audit_stats");
    assert_eq!(stats["sent"]["tool"], "mcp_audit");
    assert_eq!(stats["tool"], "audit");
    assert_eq!(stats["action"], "stats");
    let plain = audit_records(home.path())
        .into_iter()
        .filter(|r| r["kind"] == "begin" && r["tool"] == "help")
        .all(|r| r.get("sent").is_none());
    assert!(plain, "infra's own names record no `sent`");
}
