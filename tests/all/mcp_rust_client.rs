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

/// Artifacts are MCP resources: a real download is listed (newest first, with its size and
/// type), read whole or by range (text as text, bytes as base64), each read audited as
/// `artifacts get` calls; a bad URI is an MCP error with advice.
#[tokio::test]
async fn artifacts_are_resources_read_by_range_and_audited() {
    use base64::Engine as _;
    use rmcp::model::{ReadResourceRequestParams, ResourceContents};
    let server = FixtureServer::start().await.unwrap();
    let home = Home::new();
    let (client, _) = connect(&home, Era::Initialize).await;
    let caps = client.client.peer_info().unwrap().capabilities.clone();
    assert!(
        caps.resources.is_some() && caps.prompts.is_some(),
        "{caps:?}"
    );

    let download = |path: String| {
        let args = json!({"action": "download", "url": format!("{}{path}", server.base_url())});
        let c = &client;
        async move {
            let p = CallToolRequestParams::new("http")
                .with_arguments(args.as_object().unwrap().clone());
            let out = c.call_tool(p).await.unwrap().structured_content.unwrap();
            out["artifact"]["uri"].as_str().unwrap().to_owned()
        }
    };
    // 300 000 bytes of text: over the 256 KiB one read returns.
    let text_uri = download("/text?n=300000".into()).await;
    let bytes_uri = download("/bytes?n=5000".into()).await;

    let listed = client
        .client
        .list_all_resources()
        .await
        .expect("resources/list");
    assert_eq!(listed[0].uri, bytes_uri, "newest first: {listed:?}");
    let text = listed.iter().find(|r| r.uri == text_uri).unwrap();
    assert_eq!(text.size, Some(300_000));
    assert_eq!(text.mime_type.as_deref(), Some("text/plain"));
    assert!(
        text.description.as_deref().unwrap().contains("http"),
        "{text:?}"
    );

    let audited = || {
        infra_tests::audit_records(home.path())
            .iter()
            .filter(|r| r["kind"] == "end" && r["tool"] == "artifacts" && r["action"] == "get")
            .count()
    };
    let before = audited();
    let read = |uri: String| {
        client
            .client
            .read_resource(ReadResourceRequestParams::new(uri))
    };
    let whole = read(text_uri.clone()).await.unwrap();
    let ResourceContents::TextResourceContents { text, meta, .. } = &whole.contents[0] else {
        panic!("text comes back as text: {whole:?}")
    };
    let line = "the quick brown fox jumps over the lazy dog\n";
    let expected: String = line.chars().cycle().take(300_000).collect();
    assert_eq!(text.len(), 256 * 1024, "one read is capped at 256 KiB");
    assert_eq!(text.as_str(), &expected[..256 * 1024]);
    let meta = meta.clone().unwrap();
    assert_eq!(meta.0["size"], 300_000);
    let next = meta.0["next"].as_str().unwrap().to_owned();
    assert_eq!(next, format!("{text_uri}?offset=262144&length=262144"));
    assert!(
        audited() > before,
        "the read was audited as artifacts get calls"
    );

    let rest = read(next).await.unwrap();
    let ResourceContents::TextResourceContents { text, meta, .. } = &rest.contents[0] else {
        panic!("{rest:?}")
    };
    assert_eq!(text.as_str(), &expected[256 * 1024..]);
    assert!(
        meta.as_ref().unwrap().0.get("next").is_none(),
        "nothing follows the end"
    );

    let ranged = read(format!("{text_uri}?offset=4&length=11"))
        .await
        .unwrap();
    let ResourceContents::TextResourceContents { text, .. } = &ranged.contents[0] else {
        panic!("{ranged:?}")
    };
    assert_eq!(text, "quick brown");

    let blob = read(bytes_uri.clone()).await.unwrap();
    let ResourceContents::BlobResourceContents {
        blob, mime_type, ..
    } = &blob.contents[0]
    else {
        panic!("bytes come back as a blob: {blob:?}")
    };
    let want: Vec<u8> = (0..5000).map(|i| (i % 251) as u8).collect();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(blob)
            .unwrap(),
        want
    );
    assert_eq!(mime_type.as_deref(), Some("application/octet-stream"));

    let before = audited();
    for (uri, says) in [
        ("https://example.com/x", "not an artifact URI"),
        (&format!("{bytes_uri}?offset=x") as &str, "offset=x"),
        ("artifact://20250101T120000-0a1b2c3d.txt", "artifact"),
        ("artifact://../policy.toml", "not an artifact URI"),
    ] {
        let e = read(uri.to_owned()).await.unwrap_err();
        let text = e.to_string();
        assert!(text.contains(says), "{uri}: {text}");
    }
    assert_eq!(
        audited(),
        before + 2,
        "the two well-formed URIs reached the artifacts tool"
    );
    client.close().await;
}

/// Runbooks are MCP prompts: listed with their inputs as arguments, and `prompts/get` words the
/// `runbook run` call with the arguments typed as the runbook declares; bad arguments are an
/// MCP error naming the argument.
#[tokio::test]
async fn runbooks_are_prompts_with_typed_arguments() {
    use rmcp::model::GetPromptRequestParams;
    let home = Home::new();
    let (client, _) = connect(&home, Era::Discover).await;
    let prompts = client
        .client
        .list_all_prompts()
        .await
        .expect("prompts/list");
    let snapshot = prompts
        .iter()
        .find(|p| p.name == "repo.snapshot")
        .unwrap_or_else(|| panic!("repo.snapshot missing: {prompts:?}"));
    assert!(
        snapshot
            .description
            .as_deref()
            .unwrap()
            .contains("Read-only")
    );
    let args = snapshot.arguments.clone().unwrap();
    let names: Vec<&str> = args.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["commits", "path", "root"]);
    let commits = args.iter().find(|a| a.name == "commits").unwrap();
    assert_eq!(commits.required, Some(false));
    assert!(
        commits.description.as_deref().unwrap().contains("integer"),
        "{commits:?}"
    );

    let get = |arguments: Value| {
        let p = GetPromptRequestParams::new("repo.snapshot")
            .with_arguments(arguments.as_object().unwrap().clone());
        client.client.get_prompt(p)
    };
    let got = get(json!({"root": "work", "commits": "3", "path": ""}))
        .await
        .unwrap();
    let text = serde_json::to_value(&got.messages[0]).unwrap();
    assert_eq!(text["role"], "user");
    let text = text["content"]["text"].as_str().unwrap();
    let call = text
        .split("```json\n")
        .nth(1)
        .and_then(|t| t.split("\n```").next())
        .unwrap_or_else(|| panic!("a JSON call in the message: {text}"));
    let call: Value = serde_json::from_str(call).unwrap();
    assert_eq!(
        call,
        json!({"action": "run", "name": "repo.snapshot", "inputs": {"root": "work", "commits": 3}})
    );
    assert!(text.contains("`runbook` tool"), "{text}");

    let e = get(json!({"commits": "many"}))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("arguments.commits") && e.contains("integer"),
        "{e}"
    );
    let e = get(json!({"comits": "3"})).await.unwrap_err().to_string();
    assert!(e.contains("no input `comits`"), "{e}");
    let e = client
        .client
        .get_prompt(GetPromptRequestParams::new("repo.snapshto"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("repo.snapshot"), "did you mean: {e}");
    let gets = infra_tests::audit_records(home.path())
        .iter()
        .filter(|r| r["kind"] == "end" && r["tool"] == "runbook" && r["action"] == "get")
        .count();
    assert_eq!(gets, 4, "every prompts/get is an audited runbook get");
    client.close().await;
}

/// A policy with a small inline cap still reads whole resources: the front asks for smaller
/// ranges until the answers fit, instead of handing the client a spilled preview.
#[tokio::test]
async fn resources_read_whole_under_a_small_inline_cap() {
    use rmcp::model::{ReadResourceRequestParams, ResourceContents};
    let server = FixtureServer::start().await.unwrap();
    let home = Home::new();
    let policy = include_str!("../../policies/default.toml")
        .replace("inline_bytes = 65536", "inline_bytes = 8192");
    assert!(
        policy.contains("inline_bytes = 8192"),
        "the default policy sets inline_bytes"
    );
    home.policy(&policy);
    let (client, _) = connect(&home, Era::Initialize).await;
    let args = json!({"action": "download", "url": format!("{}/text?n=40000", server.base_url())});
    let p = CallToolRequestParams::new("http").with_arguments(args.as_object().unwrap().clone());
    let out = client
        .call_tool(p)
        .await
        .unwrap()
        .structured_content
        .unwrap();
    let uri = out["artifact"]["uri"].as_str().unwrap().to_owned();
    let stored = || {
        std::fs::read_dir(home.path().join("artifacts"))
            .unwrap()
            .count()
    };
    let line = "the quick brown fox jumps over the lazy dog\n";
    let expected: String = line.chars().cycle().take(40_000).collect();
    let mut after_first = 0;
    for round in 0..2 {
        let read = client
            .client
            .read_resource(ReadResourceRequestParams::new(uri.clone()))
            .await
            .unwrap();
        let ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
            panic!("{read:?}")
        };
        assert_eq!(text, &expected, "the whole text, not a spilled preview");
        match round {
            0 => after_first = stored(),
            _ => assert_eq!(stored(), after_first, "the range size that fits was kept"),
        }
    }
    client.close().await;
}

/// A compromised server echoes the profile's token into a download: the artifact, its listing,
/// and every read of it as a resource show the token scrubbed.
#[tokio::test]
async fn a_secret_echoed_into_an_artifact_never_surfaces_through_resources() {
    use rmcp::model::{ReadResourceRequestParams, ResourceContents};
    let token = infra_tests::canary("resource-token");
    // Large enough to be read by range, with the token across the first range's end.
    let echo = infra_tests::serve::EchoAuth::start(262_123).await;
    let base = echo.base.clone();
    let home = Home::new();
    home.policy(
        "[plugin.http.http]\nhosts = [\"127.0.0.1:*\"]\nprofiles = [\"svc\"]\n[plugin.http.artifacts]\n",
    );
    home.profiles(&json!({"svc": {"type": "http", "base_url": base,
        "auth": {"type": "bearer", "token": "env:INFRA_TEST_RESOURCE_TOKEN"}}}));
    let (client, _) = {
        let t = token.clone();
        infra_tests::progress::connect_with(&home, Era::Initialize, move |c| {
            c.env("INFRA_TEST_RESOURCE_TOKEN", t);
        })
        .await
    };
    let args = json!({"action": "download", "profile": "svc", "url": "/echo"});
    let p = CallToolRequestParams::new("http").with_arguments(args.as_object().unwrap().clone());
    let out = client.call_tool(p).await.unwrap();
    let out = out.structured_content.unwrap();
    let uri = out["artifact"]["uri"]
        .as_str()
        .expect("an artifact")
        .to_owned();
    let listed = client.client.list_all_resources().await.unwrap();
    let mut seen = format!("{out}{listed:?}");
    let mut next = Some(uri);
    while let Some(u) = next.take() {
        let read = client
            .client
            .read_resource(ReadResourceRequestParams::new(u))
            .await
            .unwrap();
        let ResourceContents::TextResourceContents { text, meta, .. } = &read.contents[0] else {
            panic!("{read:?}")
        };
        seen.push_str(text);
        next = meta
            .as_ref()
            .and_then(|m| m.0.get("next"))
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    assert!(
        seen.ends_with("you sent: [REDACTED]"),
        "the echo is there, scrubbed"
    );
    assert!(
        !seen.contains(&token),
        "the token surfaced through resources"
    );
    let stderr = client.close().await;
    assert!(!stderr.contains(&token));
    assert!(!infra_tests::contains(&home.all_bytes(), &token));
}
