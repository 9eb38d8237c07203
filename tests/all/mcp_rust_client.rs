//! The real binary driven by rmcp's client over stdio, in both protocol eras: the
//! `initialize` handshake (2025-11-25) and `server/discover` with per-request `_meta` (2026-07-28).

use infra_tests::Home;
use infra_tests::fixture_server::FixtureServer;
use infra_tests::progress::{Era, connect};
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

async fn exercise(era: Era) {
    let server = FixtureServer::start().await.unwrap();
    let home = Home::new();
    let (client, progress) = connect(&home, era).await;

    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for expected in ["help", "artifacts", "audit", "plugins", "http"] {
        assert!(
            names.contains(&expected),
            "{era:?}: {expected} missing from {names:?}"
        );
    }
    for t in &tools {
        let schema = Value::Object((*t.input_schema).clone());
        assert_eq!(schema["type"], "object", "{}: {schema}", t.name);
        assert_eq!(
            schema["additionalProperties"], false,
            "{} must refuse unknown fields",
            t.name
        );
        assert!(
            schema["properties"]["timeout_ms"].is_object(),
            "{} takes the common timeout_ms",
            t.name
        );
        assert!(t.output_schema.is_some(), "{} has an output schema", t.name);
        assert!(t.annotations.is_some(), "{} has annotations", t.name);
        assert!(
            t.description.as_deref().is_some_and(|d| d.len() > 20),
            "{} is described",
            t.name
        );
    }
    let http = tools.iter().find(|t| t.name == "http").unwrap();
    assert_eq!(
        http.annotations.as_ref().unwrap().open_world_hint,
        Some(true)
    );

    let call = |name: &str, args: Value| {
        let mut p = CallToolRequestParams::new(name.to_string());
        if let Value::Object(m) = args {
            p = p.with_arguments(m);
        }
        client.call_tool(p)
    };
    let r = call("help", json!({"tool": "http"})).await.unwrap();
    let out = r.structured_content.clone().unwrap();
    assert_eq!(r.is_error, Some(false));
    assert_eq!(
        out["actions"],
        json!(["request", "check", "paginate", "download"]),
        "{out}"
    );

    let r = call("http", json!({"action": "paginate", "url": format!("{}/items?per_page=5&total=20", server.base_url())}))
        .await
        .unwrap();
    let out = r.structured_content.clone().unwrap();
    assert_eq!(
        out["items"].as_array().map(Vec::len),
        Some(20),
        "{era:?}: {out}"
    );
    // The plugin reports progress per page through the log capability; the client asked for it.
    let seen = progress.lock().unwrap().clone();
    assert!(
        seen.len() >= 4,
        "{era:?}: one progress notification per page, got {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0].progress <= w[1].progress),
        "progress only grows"
    );

    let r = call(
        "http",
        json!({"action": "request", "url": "http://127.0.0.1:1/", "bogus": 1}),
    )
    .await
    .unwrap();
    assert_eq!(r.is_error, Some(true));
    let text = r.content[0].as_text().unwrap().text.clone();
    assert!(
        text.contains("bogus"),
        "{era:?}: the text mirror names the field: {text}"
    );

    let r = call("audit", json!({"action": "verify"})).await.unwrap();
    assert_eq!(r.structured_content.unwrap()["valid"], true);
    client.close().await;
}

#[tokio::test]
async fn initialize_era() {
    exercise(Era::Initialize).await;
}

#[tokio::test]
async fn discover_era() {
    exercise(Era::Discover).await;
}

/// A call the client cancels is stopped and still leaves its audit record.
#[tokio::test]
async fn a_cancelled_call_is_stopped_and_audited() {
    use rmcp::model::{CallToolRequest, ClientRequest};
    use rmcp::service::PeerRequestOptions;
    let server = FixtureServer::start().await.unwrap();
    let home = Home::new();
    let (client, _) = connect(&home, Era::Initialize).await;
    let args = json!({"action": "request", "url": format!("{}/slow?ms=20000", server.base_url()), "trace_id": "t-cancel-me"});
    let Value::Object(args) = args else {
        unreachable!()
    };
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(
        CallToolRequestParams::new("http").with_arguments(args),
    ));
    let handle = client
        .peer()
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    // Wait until the host is really inside the call (the server has the request), then cancel.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !server.seen().iter().any(|s| s.uri.starts_with("/slow")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the call never reached the server"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    handle.cancel(Some("test".into())).await.unwrap();
    // The server keeps serving, and the audit log holds the cancelled call (the cancellation is
    // a notification handled concurrently with the next request, so look until a deadline).
    let list = json!({"action": "list", "trace": "t-cancel-me"})
        .as_object()
        .unwrap()
        .clone();
    let records = loop {
        let r = client
            .call_tool(CallToolRequestParams::new("audit").with_arguments(list.clone()))
            .await
            .unwrap();
        let out = r.structured_content.unwrap();
        let records = out["records"].as_array().unwrap().clone();
        // Until its end record lands, the call is listed as begun and unended.
        let ended = records.first().is_some_and(|r| r["outcome"] != "unended");
        if ended || std::time::Instant::now() > deadline {
            break records;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(
        records[0]["error"].as_str().unwrap().contains("cancelled"),
        "{records:?}"
    );
    client.close().await;
}

/// The ssh, psql and jobs tools are listed with the annotations an agent relies on, and `help`
/// shows every action of each, or one action's own fields.
#[tokio::test]
async fn ssh_psql_and_jobs_are_listed_and_help_covers_each_action() {
    let home = Home::new();
    let (client, _) = connect(&home, Era::Initialize).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    let find = |name: &str| {
        tools
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name} missing from tools/list"))
    };
    for name in ["ssh", "psql"] {
        let a = find(name).annotations.clone().unwrap();
        assert_eq!(a.destructive_hint, Some(true), "{name}: {a:?}");
        assert_eq!(a.open_world_hint, Some(true), "{name}: {a:?}");
    }
    find("jobs");
    let help = |args: Value| {
        let p =
            CallToolRequestParams::new("help").with_arguments(args.as_object().unwrap().clone());
        let c = &client;
        async move {
            let r = c.call_tool(p).await.unwrap();
            (r.is_error, r.structured_content.unwrap())
        }
    };
    let every = [
        (
            "ssh",
            &[
                "exec",
                "batch",
                "system_info",
                "check_host",
                "sftp_list",
                "sftp_stat",
                "sftp_download",
                "sftp_upload",
                "deploy_file",
                "exec_detached",
                "containers",
                "container_logs",
                "metrics",
                "disk_health",
                "logs",
            ][..],
        ),
        (
            "psql",
            &[
                "query",
                "batch",
                "transaction",
                "select",
                "insert",
                "update",
                "delete",
                "count",
                "exists",
                "export",
                "tables",
                "columns",
                "database_info",
                "explain",
            ][..],
        ),
        ("jobs", &["list", "status", "wait", "logs", "cancel"][..]),
    ];
    for (tool, actions) in every {
        let (_, out) = help(json!({"tool": tool})).await;
        let listed: Vec<&str> = out["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        for a in actions {
            assert!(
                listed.contains(a),
                "help {tool}: {a} missing from {listed:?}"
            );
        }
    }
    // One action: its own description and fields, not the other actions' fields.
    let (err, out) = help(json!({"tool": "ssh", "action": "logs"})).await;
    assert_eq!(err, Some(false), "{out}");
    let fields = out["input_schema"]["properties"].as_object().unwrap();
    for f in ["target", "unit", "priority", "lines"] {
        assert!(fields.contains_key(f), "logs takes {f}: {out}");
    }
    for f in ["command", "stdin", "content", "restart_command"] {
        assert!(!fields.contains_key(f), "logs does not take {f}: {out}");
    }
    assert!(
        out["description"].as_str().unwrap().contains("journal"),
        "{out}"
    );
    let (_, out) = help(json!({"tool": "psql", "action": "delete"})).await;
    let fields = out["input_schema"]["properties"].as_object().unwrap();
    for f in ["table", "where", "all_rows", "returning"] {
        assert!(fields.contains_key(f), "delete takes {f}: {out}");
    }
    for f in ["values", "set", "format", "analyze"] {
        assert!(!fields.contains_key(f), "delete does not take {f}: {out}");
    }
    let (err, out) = help(json!({"tool": "psql", "action": "drop"})).await;
    assert_eq!(err, Some(true), "{out}");
    assert!(
        out["error"]["message"].as_str().unwrap().contains("delete"),
        "{out}"
    );
    client.close().await;
}
