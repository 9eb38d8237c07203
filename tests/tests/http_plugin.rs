//! The http plugin through the real binary over MCP, against a real loopback HTTP server.

use base64::Engine as _;
use infra::fixture_server::FixtureServer;
use infra_tests::{Home, Mcp, contains};
use serde_json::{Value, json};

/// A server, a state directory with a bearer profile whose token is `token`, and an MCP session.
/// The token file lives outside the state directory, as a user's secrets would.
struct Setup {
    server: FixtureServer,
    home: Home,
    mcp: Mcp,
    secrets: tempfile::TempDir,
}

async fn setup(token: &str) -> Setup {
    let server = FixtureServer::start().await.expect("fixture server");
    let home = Home::new();
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("token");
    std::fs::write(&file, token).unwrap();
    home.profiles(&json!({
        "api": {"type": "http", "base_url": format!("{}/", server.base_url()),
                "auth": {"type": "bearer", "token": format!("file:{}", file.display())}},
        "basic": {"type": "http", "base_url": server.base_url(),
                "auth": {"type": "basic", "user": "agent", "password": format!("file:{}", file.display())}},
        "keyed": {"type": "http", "base_url": server.base_url(),
                "auth": {"type": "header", "name": "x-api-key", "value": format!("file:{}", file.display())}}
    }));
    let mcp = home.mcp().await;
    Setup {
        server,
        home,
        mcp,
        secrets,
    }
}

fn canary() -> String {
    format!(
        "canary-{:032x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[tokio::test]
async fn methods_headers_and_bodies_reach_the_server() {
    let Setup {
        server,
        mcp,
        home: _home,
        secrets: _secrets,
    } = setup(&canary()).await;
    let base = server.base_url();
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        let (err, out) = mcp
            .call(
                "http",
                json!({"action": "request", "method": method, "url": format!("{base}/echo")}),
            )
            .await;
        assert!(!err, "{method}: {out}");
        assert_eq!(out["json"]["method"], method, "{out}");
    }
    let (err, out) = mcp
        .call("http", json!({"action": "request", "method": "POST", "url": format!("{base}/echo"),
                             "headers": {"X-Custom": "yes"}, "json": {"a": 1}, "query": {"q": "x y", "n": 5}}))
        .await;
    assert!(!err, "{out}");
    assert_eq!(out["json"]["body"], r#"{"a":1}"#);
    assert_eq!(out["json"]["content_type"], "application/json");
    assert_eq!(out["json"]["query"], json!({"q": "x y", "n": "5"}));
    assert!(
        out["json"]["header_names"]
            .as_array()
            .unwrap()
            .contains(&json!("x-custom")),
        "{out}"
    );
    assert_eq!(out["ok"], true);
    assert_eq!(out["action"], "request");

    let (_, out) = mcp.call("http", json!({"action": "request", "method": "POST", "url": format!("{base}/echo"), "body": "plain"})).await;
    assert_eq!(out["json"]["body"], "plain");
    let (_, out) = mcp.call("http", json!({"action": "request", "method": "POST", "url": format!("{base}/echo"), "form": {"k": "v w"}})).await;
    assert_eq!(out["json"]["body"], "k=v+w");
    assert_eq!(
        out["json"]["content_type"],
        "application/x-www-form-urlencoded"
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode([0u8, 159, 146, 150]);
    let (_, out) = mcp.call("http", json!({"action": "request", "method": "POST", "url": format!("{base}/echo"), "body_base64": b64})).await;
    assert_eq!(out["json"]["content_type"], "application/octet-stream");
    let seen = server.seen();
    assert!(seen.iter().any(|s| s.method == "PATCH"));

    // Text and binary responses.
    let (_, out) = mcp
        .call(
            "http",
            json!({"action": "request", "url": format!("{base}/text?n=44")}),
        )
        .await;
    assert_eq!(out["text"], "the quick brown fox jumps over the lazy dog\n");
    let (_, out) = mcp
        .call(
            "http",
            json!({"action": "request", "url": format!("{base}/bytes?n=300")}),
        )
        .await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(out["body_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, (0..300).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    mcp.close().await;
}

#[tokio::test]
async fn bad_input_is_an_error_that_names_the_field_and_the_server_keeps_serving() {
    let Setup {
        server,
        mcp,
        home: _home,
        secrets: _secrets,
    } = setup(&canary()).await;
    let (err, out) = mcp
        .call("http", json!({"action": "request", "ur": "http://x"}))
        .await;
    assert!(err);
    assert_eq!(out["error"]["field"], "ur", "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `url`"),
        "{out}"
    );
    let (err, out) = mcp
        .call("http", json!({"action": "fetch", "url": "http://x"}))
        .await;
    assert!(err);
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("request"),
        "lists the actions: {out}"
    );
    let (err, out) = mcp
        .call("http", json!({"action": "request", "url": "ftp://x/y"}))
        .await;
    assert!(err);
    assert_eq!(out["error"]["kind"], "invalid", "{out}");
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "url": format!("{}/hello", server.base_url())}),
        )
        .await;
    assert!(!err, "still serving: {out}");
    mcp.close().await;
}

#[tokio::test]
async fn redirects_are_followed_and_each_hop_is_checked() {
    let Setup {
        server,
        mcp,
        home: _home,
        secrets: _secrets,
    } = setup(&canary()).await;
    let base = server.base_url();
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "url": format!("{base}/redirect?to=/hello")}),
        )
        .await;
    assert!(!err, "{out}");
    assert_eq!(out["redirects"], 1);
    assert_eq!(out["final_url"], format!("{base}/hello"));
    let (_, out) = mcp.call("http", json!({"action": "request", "url": format!("{base}/redirect?to=/hello"), "follow_redirects": 0})).await;
    assert_eq!(out["status"], 302, "not followed when asked: {out}");
    // A POST answered 303 becomes a GET.
    let (_, out) = mcp.call("http", json!({"action": "request", "method": "POST", "url": format!("{base}/redirect?to=/echo&code=303"), "body": "x"})).await;
    assert_eq!(out["json"]["method"], "GET", "{out}");
    // A redirect to a denied host is denied, and the denied host is never contacted.
    let (err, out) = mcp.call("http", json!({"action": "request", "url": format!("{base}/redirect?to=http://169.254.169.254/latest/meta-data/")})).await;
    assert!(err);
    assert_eq!(out["error"]["kind"], "denied", "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deny_hosts"),
        "{out}"
    );
    mcp.close().await;
}

#[tokio::test]
async fn timeouts_caps_and_retries() {
    let Setup {
        server,
        mcp,
        home: _home,
        secrets: _secrets,
    } = setup(&canary()).await;
    let base = server.base_url();
    let started = std::time::Instant::now();
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "url": format!("{base}/slow?ms=5000"), "timeout_ms": 400}),
        )
        .await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "timeout", "{out}");
    assert!(
        started.elapsed().as_secs() < 4,
        "stopped near its deadline, not after the server answered"
    );

    let (_, out) = mcp
        .call(
            "http",
            json!({"action": "request", "url": format!("{base}/text?n=100000"), "max_bytes": 1000}),
        )
        .await;
    assert_eq!(out["truncated"], true);
    assert_eq!(out["bytes"], 1000);

    // GET is retried past two 503s; POST is not retried.
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "url": format!("{base}/flaky?key=g&fail=2"), "retries": 2}),
        )
        .await;
    assert!(!err, "{out}");
    assert_eq!(
        (out["status"].clone(), out["attempts"].clone()),
        (json!(200), json!(3)),
        "{out}"
    );
    let (_, out) = mcp.call("http", json!({"action": "request", "method": "POST", "url": format!("{base}/flaky?key=p&fail=2"), "retries": 2})).await;
    assert_eq!(
        (out["status"].clone(), out["attempts"].clone()),
        (json!(503), json!(1)),
        "{out}"
    );
    let posts = server
        .seen()
        .iter()
        .filter(|s| s.uri.contains("key=p"))
        .count();
    assert_eq!(posts, 1, "the server saw exactly one POST");
    mcp.close().await;
}

#[tokio::test]
async fn check_and_paginate() {
    let Setup {
        server,
        mcp,
        home: _home,
        secrets: _secrets,
    } = setup(&canary()).await;
    let base = server.base_url();
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "check", "url": format!("{base}/hello"), "contains": "hello"}),
        )
        .await;
    assert!(!err);
    assert_eq!(out["healthy"], true, "{out}");
    let (_, out) = mcp
        .call(
            "http",
            json!({"action": "check", "url": format!("{base}/status/500")}),
        )
        .await;
    assert_eq!(out["healthy"], false);
    assert!(
        out["problems"][0].as_str().unwrap().contains("500"),
        "{out}"
    );

    let (_, out) = mcp
        .call(
            "http",
            json!({"action": "paginate", "url": format!("{base}/items?per_page=10&total=35")}),
        )
        .await;
    assert_eq!(out["items"].as_array().unwrap().len(), 35);
    assert_eq!(out["pages"], 4);
    let (_, out) = mcp.call("http", json!({"action": "paginate", "url": format!("{base}/items?per_page=10&total=35"), "max_pages": 2})).await;
    assert_eq!(
        out["items"].as_array().unwrap().len(),
        20,
        "bounded by max_pages"
    );
    assert!(
        out["next"].as_str().unwrap().contains("page=3"),
        "says where it stopped: {out}"
    );
    let (_, out) = mcp.call("http", json!({"action": "paginate", "url": format!("{base}/items?per_page=10&total=25"), "page_mode": "page"})).await;
    assert_eq!(out["items"].as_array().unwrap().len(), 25, "{out}");
    let (_, out) = mcp.call("http", json!({"action": "paginate", "url": format!("{base}/cursor"), "page_mode": "cursor", "cursor_path": "next", "items_path": "data"})).await;
    assert_eq!(out["items"], json!([0, 1, 10, 11, 20, 21]), "{out}");
    mcp.close().await;
}

#[tokio::test]
async fn download_streams_into_an_artifact_with_the_right_sha256() {
    let Setup {
        server,
        mcp,
        home: _home,
        secrets: _secrets,
    } = setup(&canary()).await;
    let n = 3 * 1024 * 1024 + 7;
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "download", "url": format!("{}/bytes?n={n}", server.base_url())}),
        )
        .await;
    assert!(!err, "{out}");
    let expected: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
    use sha2::Digest;
    assert_eq!(out["artifact"]["size"], n as u64);
    assert_eq!(
        out["artifact"]["sha256"],
        hex::encode(sha2::Sha256::digest(&expected))
    );
    let uri = out["artifact"]["uri"].as_str().unwrap().to_string();
    assert_eq!(out["artifacts"], json!([uri.clone()]));
    let (err, tail) = mcp
        .call(
            "artifacts",
            json!({"action": "tail", "uri": uri, "length": 10}),
        )
        .await;
    assert!(!err, "{tail}");
    let got = base64::engine::general_purpose::STANDARD
        .decode(tail["base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(got, expected[n - 10..]);
    // Too large for max_bytes: refused, nothing stored.
    let (err, out) = mcp.call("http", json!({"action": "download", "url": format!("{}/bytes?n=5000", server.base_url()), "max_bytes": 1000})).await;
    assert!(err);
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_bytes"),
        "{out}"
    );
    mcp.close().await;
}

#[tokio::test]
async fn the_injected_token_reaches_the_server_and_nothing_else() {
    let token = canary();
    let Setup {
        server,
        home,
        mcp,
        secrets: _secrets,
    } = setup(&token).await;
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "profile": "api", "url": "echo"}),
        )
        .await;
    assert!(!err, "{out}");
    assert!(server.seen().iter().any(|s| {
        s.headers
            .contains(&("authorization".into(), format!("Bearer {token}")))
    }));
    let (_, out) = mcp
        .call(
            "http",
            json!({"action": "request", "profile": "keyed", "url": "/echo"}),
        )
        .await;
    assert!(
        out["json"]["header_names"]
            .as_array()
            .unwrap()
            .contains(&json!("x-api-key"))
    );
    assert!(
        server
            .seen()
            .iter()
            .any(|s| s.headers.contains(&("x-api-key".into(), token.clone())))
    );

    let (_, out) = mcp
        .call(
            "http",
            json!({"action": "request", "profile": "basic", "url": "/echo"}),
        )
        .await;
    assert_eq!(out["status"], 200, "{out}");
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("agent:{token}"))
    );
    assert!(
        server
            .seen()
            .iter()
            .any(|s| s.headers.contains(&("authorization".into(), basic.clone())))
    );
    let (_, out) = mcp
        .call(
            "http",
            json!({"action": "request", "profile": "basic", "url": "/reflect-auth"}),
        )
        .await;
    let encoded = basic.trim_start_matches("Basic ");
    assert!(
        !out.to_string().contains(encoded),
        "the encoded credential leaked: {out}"
    );

    // A hostile server echoing the secret: the output, the text mirror, artifacts and audit stay clean.
    let mut outputs: Vec<Value> = Vec::new();
    outputs.push(
        mcp.call(
            "http",
            json!({"action": "request", "profile": "api", "url": "reflect-auth"}),
        )
        .await
        .1,
    );
    outputs.push(mcp.call("http", json!({"action": "request", "profile": "api", "url": "reflect-auth", "response_type": "base64"})).await.1);
    outputs.push(
        mcp.call(
            "http",
            json!({"action": "download", "profile": "api", "url": "reflect-auth"}),
        )
        .await
        .1,
    );
    outputs.push(mcp.call("http", json!({"action": "request", "profile": "api", "url": "/echo", "json": {"password": token.clone()}})).await.1);
    assert!(
        outputs[0]["json"]["you_sent"]
            .as_str()
            .unwrap()
            .contains("[REDACTED]"),
        "{}",
        outputs[0]
    );
    for o in &outputs {
        assert!(!o.to_string().contains(&token), "leaked in output: {o}");
    }
    // The auth is not sent to another origin: an absolute URL elsewhere is refused with a profile.
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "profile": "api", "url": "http://127.0.0.2:1/x"}),
        )
        .await;
    assert!(err, "{out}");
    mcp.close().await;
    let everything = home.all_bytes();
    assert!(
        !contains(&everything, &token),
        "a file in the state directory (artifact, audit, …) holds the token"
    );
    assert!(
        contains(&everything, "[REDACTED]"),
        "the scrubbed echo was stored"
    );
}

#[tokio::test]
async fn a_missing_profile_or_secret_is_a_clear_error() {
    let Setup {
        mcp,
        secrets,
        home: _home,
        server: _server,
    } = setup(&canary()).await;
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "profile": "nope", "url": "/x"}),
        )
        .await;
    assert!(err);
    assert_eq!(out["error"]["kind"], "not-found", "{out}");
    assert!(
        out["error"]["message"].as_str().unwrap().contains("api"),
        "lists the known profiles: {out}"
    );
    std::fs::remove_file(secrets.path().join("token")).unwrap();
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "profile": "api", "url": "/x"}),
        )
        .await;
    assert!(err);
    assert!(
        out["error"]["message"].as_str().unwrap().contains("token"),
        "names the secret file: {out}"
    );
    mcp.close().await;
}
