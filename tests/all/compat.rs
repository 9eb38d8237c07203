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

/// A user of the replaced tool keeps their environment: its state directory variable, runbooks
/// and intent-map files, repository variable, and a `targets.json` in its shape — whose
/// targets without a host key are read (the server serves; their passwords are still scrubbed)
/// and refused at use with what to add.
#[tokio::test]
async fn the_replaced_tools_environment_and_targets_file_are_read() {
    let home = Home::new();
    let files = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("infra/live")).unwrap();
    std::fs::write(work.path().join("infra/live/main.tf"), "terraform {}\n").unwrap();
    home.policy(&format!(
        "[roots]\nwork = {{ path = \"{}\", read_only = true }}\n\n[plugin.repo.fs]\nroots = [\"work\"]\n\n[plugin.ssh.ssh]\ntargets = [\"old\"]\n",
        work.path().display()
    ));
    let password = infra_tests::canary("old-target-password");
    std::fs::write(
        home.path().join("targets.json"),
        json!({"old": {"host": "127.0.0.1", "port": 1, "username": "deploy",
                        "password": "env:OLD_TARGET_PASSWORD"}})
        .to_string(),
    )
    .unwrap();
    let runbooks = files.path().join("my-runbooks.json");
    let capabilities = files.path().join("my-capabilities.json");
    std::fs::write(
        &capabilities,
        json!({"version": 1, "capabilities": {"lab.check": {
            "description": "the lab's health", "runbook": "http.check",
            "when": {"tags_any": ["terraform"]}, "effects": {"kind": "read", "requires_apply": false}}}})
        .to_string(),
    )
    .unwrap();
    let (state_dir, pw) = (home.path().to_path_buf(), password.clone());
    let (rb, caps, repo) = (
        runbooks.clone(),
        capabilities.clone(),
        work.path().join("infra/live"),
    );
    let mcp = home
        .mcp_with(move |c| {
            c.env_remove("INFRA_HOME")
                .env("MCP_PROFILES_DIR", state_dir)
                .env("MCP_RUNBOOKS_PATH", rb)
                .env("MCP_CAPABILITIES_PATH", caps)
                .env("MCP_CONTEXT_REPO_ROOT", repo)
                .env("OLD_TARGET_PASSWORD", pw);
        })
        .await;

    // MCP_PROFILES_DIR is the state directory: a persistent value lands there.
    let (err, out) = mcp
        .call(
            "mcp_state",
            json!({"action": "set", "key": "k", "value": 1, "scope": "persistent"}),
        )
        .await;
    assert!(!err, "{out}");
    assert!(home.path().join("state.json").exists());

    // The old-shape target is read and refused at use, saying what to add; nothing connected.
    let (err, out) = mcp
        .call(
            "mcp_ssh_manager",
            json!({"action": "exec", "target": "old", "command": "true"}),
        )
        .await;
    assert!(err, "{out}");
    let m = text(&out, "/error/message");
    assert!(
        m.contains("has no host_key") && m.contains("\"tofu\"") && m.contains("targets.json"),
        "{m}"
    );

    // The replaced tool's runbook quick starts: its names and inputs reach infra's built-ins.
    let (err, out) = mcp
        .call(
            "mcp_runbook",
            json!({"action": "runbook_run", "name": "ssh.system_info",
                   "input": {"project_name": "shop", "target_name": "old"}}),
        )
        .await;
    assert!(err, "{out}");
    let m = text(&out, "/error/message");
    assert!(
        m.contains("target 'old'") && m.contains("has no host_key"),
        "{m}"
    );
    let understood = &out["error"]["detail"]["understood"];
    assert_eq!(understood["target_name"]["meant"], "target", "{out}");
    assert!(understood["project_name"]["ignored"].is_string(), "{out}");
    for (name, input, field) in [
        (
            "gitops.sync.argocd",
            json!({"app_name": "web", "kubeconfig": "/root/.kube/config"}),
            "inputs.kubeconfig",
        ),
        (
            "repo.snapshot",
            json!({"repo_path": files.path()}),
            "inputs.repo_path",
        ),
    ] {
        let (err, out) = mcp
            .call(
                "mcp_runbook",
                json!({"action": "runbook_run", "name": name, "input": input}),
            )
            .await;
        assert!(err, "{out}");
        assert_eq!(out["error"]["field"], field, "{name}: {out}");
        assert!(
            text(&out, "/error/message").contains("docs/compat.md"),
            "{out}"
        );
    }

    // A repo_root that only looks as if it were in the root is refused, never reached.
    for sneaky in [
        format!("{}/../../etc", work.path().display()),
        format!("{}/missing/../../..", work.path().display()),
    ] {
        let (err, out) = mcp
            .call(
                "mcp_repo",
                json!({"action": "repo_info", "repo_root": sneaky}),
            )
            .await;
        assert!(err, "{sneaky}: {out}");
        assert_eq!(out["error"]["field"], "repo_root", "{sneaky}: {out}");
    }

    // MCP_RUNBOOKS_PATH receives the user's runbooks.
    let (err, out) = mcp
        .call(
            "mcp_runbook",
            json!({"action": "runbook_upsert", "name": "mine", "runbook": {"description": "d",
                "steps": [{"id": "a", "tool": "mcp_state", "args": {"action": "get", "key": "k"}}]}}),
        )
        .await;
    assert!(!err, "{out}");
    assert!(
        std::fs::read_to_string(&runbooks)
            .unwrap()
            .contains("\"mine\"")
    );

    // MCP_CAPABILITIES_PATH adds an intent; MCP_CONTEXT_REPO_ROOT picks the repository.
    let (err, out) = mcp.call("mcp_intent", json!({"action": "dry_run"})).await;
    assert!(!err, "{out}");
    let proposed: Vec<&str> = out["proposed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| text(p, "/type"))
        .collect();
    assert!(
        proposed.contains(&"terraform.plan") && proposed.contains(&"lab.check"),
        "{out}"
    );

    let stderr = mcp.close().await;
    assert!(stderr.contains("has no host_key"), "a warning at start");
    assert!(!stderr.contains(&password));
    assert!(!infra_tests::contains(&home.all_bytes(), &password));
}
