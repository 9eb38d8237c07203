//! The http plugin through the real binary over MCP, against a real loopback HTTP server.

use base64::Engine as _;
use infra_tests::fixture_server::FixtureServer;
use infra_tests::{Home, Mcp, canary, contains};
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

#[tokio::test]
async fn methods_headers_and_bodies_reach_the_server() {
    let Setup {
        server,
        mcp,
        home: _home,
        secrets: _secrets,
    } = setup(&canary("canary")).await;
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
    } = setup(&canary("canary")).await;
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
    } = setup(&canary("canary")).await;
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
    } = setup(&canary("canary")).await;
    let base = server.base_url();
    // The server answers after an hour: the call returning at all, as a `timeout`, is its
    // deadline holding, not the server answering (the harness bounds a hang).
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "url": format!("{base}/slow?ms=3600000"), "timeout_ms": 400}),
        )
        .await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "timeout", "{out}");

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
    } = setup(&canary("canary")).await;
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
    } = setup(&canary("canary")).await;
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
    let token = canary("canary");
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
    } = setup(&canary("canary")).await;
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

/// The http plugin's grants with `extra` TOML added (limits, deny lists).
fn http_policy(deny_hosts: &str, limits: &str) -> String {
    format!(
        "[limits]\n{limits}\n[plugin.http.http]\nhosts = [\"*\"]\ndeny_hosts = {deny_hosts}\nprofiles = [\"*\"]\n[plugin.http.artifacts]\n[plugin.http.log]\n"
    )
}

fn message(out: &Value) -> &str {
    out["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn unspecified_and_respelled_loopback_addresses_do_not_pass_a_loopback_deny() {
    // Listening on every local address, as a developer's service often does: 0.0.0.0 and [::]
    // reach it, as would 127.0.0.1.
    let server = FixtureServer::start_on("::".parse().unwrap())
        .await
        .expect("fixture server on [::]");
    let port = server.port();
    let home = Home::new();
    home.policy(&http_policy(r#"["127.0.0.0/8", "::1"]"#, ""));
    let mcp = home.mcp().await;
    for host in [
        "0.0.0.0",
        "0",
        "0x0",
        "0.0.0.0.",
        "000.0.0.0",
        "[::]",
        "[0:0:0:0:0:0:0:0]",
        "[::ffff:0.0.0.0]",
        "127.0.0.1",
        "127.1",
        "0x7f000001",
        "2130706433",
        "0177.0.0.1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        // A name resolving to loopback: refused by the resolver, at connect time.
        "localhost",
        "LOCALHOST",
    ] {
        let (err, out) = mcp
            .call(
                "http",
                json!({"action": "request", "url": format!("http://{host}:{port}/hello")}),
            )
            .await;
        assert!(err, "{host} reached the loopback server: {out}");
        assert_eq!(out["error"]["kind"], "denied", "{host}: {out}");
        let m = message(&out);
        assert!(
            m.contains("deny_hosts") || m.contains("unspecified address"),
            "{host}: {m}"
        );
        if m.contains("unspecified") {
            assert!(m.contains("127.0.0.1"), "advises the explicit address: {m}");
        }
    }
    assert!(
        server.seen().is_empty(),
        "the loopback server was reached: {:?}",
        server.seen()
    );
    mcp.close().await;
}

/// Spellings of one IPv4 address the URL parser reads as that address.
fn ipv4_spellings(ip: std::net::Ipv4Addr) -> Vec<String> {
    let [a, b, c, d] = ip.octets().map(u32::from);
    let n = u32::from(ip);
    vec![
        ip.to_string(),
        format!("{ip}."),
        n.to_string(),
        format!("0x{n:x}"),
        format!("0X{n:X}"),
        format!("0x{a:x}.0x{b:x}.0x{c:x}.0x{d:x}"),
        format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}"),
        format!("{a}.{b}.{}", c << 8 | d),
        format!("{a}.{}", b << 16 | c << 8 | d),
        format!(
            "%{:02X}{}",
            ip.to_string().as_bytes()[0],
            &ip.to_string()[1..]
        ),
        format!("[::ffff:{ip}]"),
        format!("[::FFFF:{:x}:{:x}]", a << 8 | b, c << 8 | d),
        format!("[64:ff9b::{ip}]"),
        format!("[2002:{:x}:{:x}::1]", a << 8 | b, c << 8 | d),
    ]
}

fn ipv6_spellings(ip: std::net::Ipv6Addr) -> Vec<String> {
    let full: Vec<String> = ip.segments().iter().map(|s| format!("{s:04x}")).collect();
    vec![
        format!("[{ip}]"),
        format!("[{}]", ip.to_string().to_uppercase()),
        format!("[{}]", full.join(":")),
    ]
}

#[tokio::test]
async fn every_default_denial_and_its_spellings_are_refused() {
    use std::net::IpAddr;
    let policy = infra::policy::Policy::embedded_default().unwrap();
    let entries: Vec<String> = policy
        .plugin("http")
        .and_then(|p| p.http.as_ref())
        .expect("the default grants http")
        .deny_hosts
        .iter()
        .map(|h| h.as_str().to_string())
        .collect();
    // The well-known metadata addresses, each covered by some entry (checked below), plus the
    // first and last address of every block.
    let mut addrs: Vec<IpAddr> = [
        "169.254.169.254",
        "169.254.170.2",
        "169.254.170.23",
        "169.254.0.23",
        "100.100.100.200",
        "192.0.0.192",
        "168.63.129.16",
        "fd00:ec2::254",
        "fd00:ec2::23",
        "fd20:ce::254",
        "fd00:c1::a9fe:a9fe",
    ]
    .iter()
    .map(|a| a.parse().unwrap())
    .collect();
    let mut names = Vec::new();
    for e in &entries {
        if let Some((ip, len)) = e.split_once('/') {
            // The first and last address of the block, past its network and broadcast.
            addrs.extend(match ip.parse::<IpAddr>().unwrap() {
                IpAddr::V4(v4) => {
                    let host = u32::MAX >> len.parse::<u32>().unwrap();
                    let first = u32::from(v4) & !host;
                    [first + 1, (first | host) - 1].map(|a| IpAddr::V4(a.into()))
                }
                IpAddr::V6(v6) => {
                    let host = u128::MAX >> len.parse::<u32>().unwrap();
                    let first = u128::from(v6) & !host;
                    [first + 1, (first | host) - 1].map(|a| IpAddr::V6(a.into()))
                }
            });
        } else if e.parse::<IpAddr>().is_err() {
            names.push(e.clone());
        }
    }
    assert!(
        names.contains(&"metadata.google.internal".to_string()),
        "{names:?}"
    );
    let mut hosts: Vec<String> = Vec::new();
    for a in &addrs {
        match a {
            IpAddr::V4(v4) => hosts.extend(ipv4_spellings(*v4)),
            IpAddr::V6(v6) => hosts.extend(ipv6_spellings(*v6)),
        }
    }
    for n in &names {
        hosts.extend([n.clone(), n.to_uppercase(), format!("{n}.")]);
    }
    let home = Home::new();
    let mcp = home.mcp().await;
    for host in &hosts {
        let (err, out) = mcp
            .call(
                "http",
                json!({"action": "request", "url": format!("http://{host}/latest/meta-data/"), "retries": 0}),
            )
            .await;
        assert!(err, "{host} was not refused: {out}");
        assert_eq!(out["error"]["kind"], "denied", "{host}: {out}");
        assert!(message(&out).contains("deny_hosts entry"), "{host}: {out}");
    }
    mcp.close().await;
}

/// The token of `setup` and the wire form it is sent in, as the fixture reflects them.
fn assert_no_secret_prefix(what: &str, hay: &[u8], token: &str) {
    for needle in [&token[..4], "Bearer q"] {
        assert!(
            !contains(hay, needle),
            "{what}: '{needle}', the start of the secret, came back"
        );
    }
}

#[tokio::test]
async fn a_cut_anywhere_across_a_reflected_secret_leaves_none_of_it() {
    // "qz" and hex digits: its first four characters never occur by chance. (It began with
    // "tok", and a first hex digit `e` made the needle "toke", which profiles.json's "token"
    // key contains: a failure one run in sixteen.)
    let token = format!("qz{}", &canary("canary")["canary-".len()..]);
    let Setup {
        server: _server,
        home,
        mcp,
        secrets: _secrets,
    } = setup(&token).await;
    let value_len = "Bearer ".len() + token.len();
    // Inline bodies, then bodies large enough to spill into an artifact (over the 64 KiB inline
    // limit): the cut moves one byte at a time from before the secret to after it.
    for pad in [16usize, 70_000] {
        for cut in pad..=pad + value_len + 1 {
            let (err, out) = mcp
                .call(
                    "http",
                    json!({"action": "request", "profile": "api", "url": format!("reflect?pad={pad}&after=16"),
                           "max_bytes": cut, "response_type": "text"}),
                )
                .await;
            assert!(!err, "{out}");
            assert!(
                out["bytes"].as_u64().is_none_or(|b| b <= cut as u64),
                "{out}"
            );
            assert_no_secret_prefix(
                &format!("pad {pad} cut {cut}"),
                out.to_string().as_bytes(),
                &token,
            );
        }
    }
    // Downloads: a body over max_bytes stores nothing; one within it is stored scrubbed.
    let pad = 16;
    for cut in pad..=pad + value_len + 1 {
        let (err, out) = mcp
            .call(
                "http",
                json!({"action": "download", "profile": "api", "url": format!("reflect?pad={pad}"),
                       "max_bytes": cut}),
            )
            .await;
        assert_eq!(err, cut < pad + value_len, "cut {cut}: {out}");
        assert_no_secret_prefix(
            &format!("download cut {cut}"),
            out.to_string().as_bytes(),
            &token,
        );
    }
    mcp.close().await;
    assert_no_secret_prefix("the state directory", &home.all_bytes(), &token);
}

#[tokio::test]
async fn sizes_asked_by_the_agent_are_clamped_to_the_policy_limits() {
    let server = FixtureServer::start().await.expect("fixture server");
    let base = server.base_url();
    let home = Home::new();
    home.policy(&http_policy(
        "[]",
        "capture_bytes = 1000\nartifact_bytes = 2000",
    ));
    let mcp = home.mcp().await;
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "url": format!("{base}/text?n=5000"), "max_bytes": 1_000_000_000u64}),
        )
        .await;
    assert!(!err, "{out}");
    assert_eq!(out["bytes"], 1000, "held to limits.capture_bytes: {out}");
    assert_eq!(out["truncated"], true);
    assert!(
        out["clamped"]
            .as_str()
            .unwrap_or_default()
            .contains("limits.capture_bytes"),
        "says it clamped: {out}"
    );
    // A download's default is the limit: within it, stored; over it, refused with advice.
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "download", "url": format!("{base}/bytes?n=1500")}),
        )
        .await;
    assert!(!err, "{out}");
    assert_eq!(out["artifact"]["size"], 1500);
    assert!(
        out.get("clamped").is_none(),
        "nothing asked, nothing clamped: {out}"
    );
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "download", "url": format!("{base}/bytes?n=3000"), "max_bytes": 1u64 << 40}),
        )
        .await;
    assert!(err, "{out}");
    assert!(
        message(&out).contains("limits.artifact_bytes"),
        "names the limit: {out}"
    );
    mcp.close().await;
}

#[tokio::test]
async fn methods_and_headers_that_are_the_hosts_to_decide_are_refused() {
    let Setup {
        server,
        mcp,
        home: _home,
        secrets: _secrets,
    } = setup(&canary("canary")).await;
    let base = server.base_url();
    for (field, args) in [
        ("headers", json!({"headers": {"Host": "internal.example"}})),
        ("headers", json!({"headers": {"accept-encoding": "gzip"}})),
        ("headers", json!({"headers": {"TE": "gzip"}})),
        (
            "headers",
            json!({"headers": {"Transfer-Encoding": "chunked"}}),
        ),
        // A header an agent builds from an answer: a line break would start a second header.
        (
            "headers",
            json!({"headers": {"X-Note": "ok\r\nX-Injected: yes"}}),
        ),
        ("headers", json!({"headers": {"Bad Name": "v"}})),
        ("method", json!({"method": "TRACE"})),
        ("method", json!({"method": "track"})),
        ("method", json!({"method": "CONNECT"})),
    ] {
        let call = infra_tests::with_fields(
            json!({"action": "request", "url": format!("{base}/echo")}),
            args.clone(),
        );
        let (err, out) = mcp.call("http", call).await;
        assert!(err, "{args}: {out}");
        assert_eq!(out["error"]["kind"], "invalid", "{args}: {out}");
        assert!(
            message(&out).starts_with(&format!("{field}: ")) && message(&out).contains("; "),
            "names the field and gives advice: {out}"
        );
    }
    assert!(
        server.seen().is_empty(),
        "nothing was sent: {:?}",
        server.seen()
    );
    // The host asks for an unencoded body itself.
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "url": format!("{base}/echo")}),
        )
        .await;
    assert!(!err, "{out}");
    assert!(
        server.seen()[0]
            .headers
            .contains(&("accept-encoding".into(), "identity".into())),
        "{:?}",
        server.seen()
    );
    mcp.close().await;
}

#[tokio::test]
async fn a_profiles_literal_headers_are_scrubbed_and_stay_at_its_origin() {
    let tenant_key = canary("canary");
    let server = FixtureServer::start().await.expect("fixture server");
    let elsewhere = FixtureServer::start().await.expect("second origin");
    let home = Home::new();
    home.profiles(&json!({
        "tenant": {"type": "http", "base_url": server.base_url(),
                   "headers": {"x-tenant-key": tenant_key, "accept": "application/json"}}
    }));
    let mcp = home.mcp().await;
    // Known from the start: echoed back before any call used the profile, it is scrubbed.
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "method": "POST", "url": format!("{}/echo", server.base_url()), "body": tenant_key}),
        )
        .await;
    assert!(!err, "{out}");
    assert!(!out.to_string().contains(&tenant_key), "echoed: {out}");
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "profile": "tenant", "url": "reflect?header=x-tenant-key"}),
        )
        .await;
    assert!(!err, "{out}");
    assert!(
        server.seen().iter().any(|s| s
            .headers
            .contains(&("x-tenant-key".into(), tenant_key.clone()))),
        "the header reached the profile's server"
    );
    assert!(!out.to_string().contains(&tenant_key), "reflected: {out}");
    assert!(out.to_string().contains("[REDACTED]"), "{out}");
    // A header that carries no credential is not a secret: scrubbing "application/json" would
    // erase it from every output.
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "profile": "tenant", "url": "reflect?header=accept"}),
        )
        .await;
    assert!(
        !err && out.to_string().contains("application/json"),
        "{out}"
    );
    // A redirect off the profile's origin: the next hop gets none of the profile's headers.
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "profile": "tenant",
                   "url": format!("redirect?to={}/echo", elsewhere.base_url())}),
        )
        .await;
    assert!(!err, "{out}");
    assert_eq!(out["redirects"], 1, "{out}");
    let leaked: Vec<_> = elsewhere
        .seen()
        .into_iter()
        .filter(|s| s.headers.iter().any(|(_, v)| v == &tenant_key))
        .collect();
    assert!(leaked.is_empty(), "sent off-origin: {leaked:?}");
    assert_eq!(elsewhere.seen().len(), 1, "the redirect was followed");
    // The agent may not set a header the profile sets itself.
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "profile": "tenant", "url": "echo", "headers": {"X-Tenant-Key": "mine"}}),
        )
        .await;
    assert!(err && message(&out).starts_with("headers: "), "{out}");
    mcp.close().await;
    // The profile file holds the literal, as written; nothing else in the state directory may.
    std::fs::remove_file(home.path().join("profiles.json")).unwrap();
    assert!(
        !contains(&home.all_bytes(), &tenant_key),
        "stored somewhere"
    );
}

/// A loopback server that reads each request and then answers with `head` only, never more,
/// holding the connection open: a server that stalls.
async fn stalling_server(head: &'static [u8]) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/stall", listener.local_addr().unwrap());
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
async fn a_server_that_stalls_headers_or_body_ends_at_the_deadline_saying_which() {
    let home = Home::new();
    let mcp = home.mcp().await;
    let (url, headers_task) = stalling_server(b"").await;
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "url": url, "timeout_ms": 1500, "retries": 0}),
        )
        .await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "timeout", "{out}");
    assert!(message(&out).contains("no response headers"), "{out}");

    let (url, body_task) =
        stalling_server(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nhello").await;
    for action in ["request", "download"] {
        let (err, out) = mcp
            .call(
                "http",
                json!({"action": action, "url": url, "timeout_ms": 1500, "retries": 0}),
            )
            .await;
        assert!(err, "{action}: {out}");
        assert_eq!(out["error"]["kind"], "timeout", "{action}: {out}");
        let m = message(&out);
        assert!(
            m.contains("answered 200") && m.contains("sent 5 bytes") && m.contains("stalled"),
            "{action}: {m}"
        );
    }
    // The server is still serving after both.
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "check", "url": "http://127.0.0.1:1/"}),
        )
        .await;
    assert!(!err, "{out}");
    headers_task.abort();
    body_task.abort();
    mcp.close().await;
}
