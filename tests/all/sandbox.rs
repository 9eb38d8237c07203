//! Adversarial: the `hostile` test plugin really tries each way out of the sandbox — sockets,
//! files, environment, ungranted hosts, made-up artifact URIs, CPU, memory, output size, secrets — against the real
//! `infra` binary. Each test asserts the escape was stopped (and, where the escape reaches
//! something real, that the real thing saw nothing), then that the same server keeps answering.
//!
//! Most tests drive one long-lived `infra serve` over MCP stdio (an rmcp client), because
//! "keeps serving" means the same process, with the same loaded plugin, answers the next call.

use std::io::Read;
use std::time::{Duration, Instant};

use infra_tests::fixture_server::FixtureServer;
use infra_tests::{Home, Mcp, audit_records, canary, contains, test_plugin, wait_for};
use serde_json::{Value, json};

/// The hostile plugin's manifest, as shipped beside its source.
const HOSTILE_MANIFEST: &str = include_str!("../plugins/hostile/plugin.toml");
/// The undeclared plugin's (lying) manifest.
const UNDECLARED_MANIFEST: &str = include_str!("../plugins/undeclared/plugin.toml");

/// A state directory with `hostile` installed under `policy`.
fn hostile_home(policy: &str) -> Home {
    let home = Home::new();
    home.policy(policy)
        .install_plugin("hostile", &test_plugin("hostile"), HOSTILE_MANIFEST);
    home
}

/// `infra serve` on `home` with extra environment `env`.
async fn start(home: &Home, env: &[(&str, &str)]) -> Mcp {
    home.mcp_with(|c| {
        for (k, v) in env {
            c.env(k, v);
        }
    })
    .await
}

/// The same server answers an ordinary call of the same plugin, correctly.
async fn still_serves(server: &Mcp, after: &str) {
    let (is_error, out) = server.call("hostile", json!({"action": "fs_read"})).await;
    assert!(
        !is_error && out["ok"] == true && out["tool"] == "hostile" && out["escaped"] == false,
        "after {after}, the same server must still answer a normal call; got {out:#}\nstderr:\n{}",
        server.stderr()
    );
}

/// The error object of a failed call, with the envelope checked.
fn error_of<'a>(is_error: bool, out: &'a Value, what: &str) -> &'a Value {
    assert!(is_error, "{what}: the call must fail; got {out:#}");
    assert_eq!(
        out["ok"], false,
        "{what}: the envelope says ok=false: {out:#}"
    );
    assert!(
        out["trace_id"].is_string() && out["duration_ms"].is_u64(),
        "{what}: envelope fields present: {out:#}"
    );
    &out["error"]
}

/// Nothing reached the listener: no pending connection in its accept queue.
fn assert_no_connection(listener: &std::net::TcpListener) {
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(e) => panic!("accept on the test listener failed oddly: {e}"),
        Ok((mut stream, peer)) => {
            let mut got = Vec::new();
            stream.set_nonblocking(false).ok();
            stream
                .set_read_timeout(Some(Duration::from_millis(200)))
                .ok();
            let _ = stream.read_to_end(&mut got);
            panic!(
                "the sandbox let the plugin connect: the listener accepted a connection from {peer} and read {:?}",
                String::from_utf8_lossy(&got)
            );
        }
    }
}

/// The listener was really live: a connection from outside the sandbox does arrive.
fn assert_listener_live(listener: &std::net::TcpListener) {
    let addr = listener.local_addr().expect("listener address");
    let _outside = std::net::TcpStream::connect(addr).expect("connect from the test process");
    listener
        .accept()
        .expect("a connection from outside the sandbox is in the accept queue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn std_net_connect_to_a_live_loopback_listener_is_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let addr = listener.local_addr().expect("listener address").to_string();
    let home = hostile_home("[plugin.hostile]\n");
    let server = start(&home, &[]).await;

    let (is_error, out) = server
        .call("hostile", json!({"action": "net_connect", "addr": addr}))
        .await;
    assert!(!is_error, "the plugin reports the attempt itself: {out:#}");
    assert_eq!(
        out["escaped"], false,
        "std::net::TcpStream::connect({addr}) must fail in the sandbox: {out:#}"
    );
    let error = out["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&addr),
        "the plugin says which connect failed: {out:#}"
    );
    assert_no_connection(&listener);

    // By name too: the guest can neither resolve `localhost` nor connect to what it names.
    let by_name = addr.replace("127.0.0.1", "localhost");
    let (is_error, out) = server
        .call("hostile", json!({"action": "net_connect", "addr": by_name}))
        .await;
    assert!(
        !is_error && out["escaped"] == false,
        "connect({by_name}) must fail: {out:#}"
    );
    assert_no_connection(&listener);

    still_serves(&server, "a socket escape").await;
    server.close().await;
    assert_listener_live(&listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn std_fs_cannot_read_etc_passwd_or_list_the_current_directory() {
    assert!(
        std::fs::read_to_string("/etc/passwd").is_ok_and(|t| t.contains("root:")),
        "the file exists outside the sandbox (else this test proves nothing)"
    );
    let home = hostile_home("[plugin.hostile]\n");
    let server = start(&home, &[]).await;

    let (is_error, out) = server.call("hostile", json!({"action": "fs_read"})).await;
    assert!(!is_error, "the plugin reports the attempt itself: {out:#}");
    assert_eq!(
        out["escaped"], false,
        "no file or directory is reachable through std::fs: {out:#}"
    );
    assert!(
        out.get("data").is_none_or(Value::is_null),
        "nothing was read: {out:#}"
    );
    let error = out["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("/etc/passwd") && error.contains("read_dir ."),
        "both attempts were made and both failed: {out:#}"
    );
    assert!(
        !out.to_string().contains("root:"),
        "no line of /etc/passwd in the output: {out:#}"
    );

    still_serves(&server, "a file-system escape").await;
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_and_argv_are_empty_even_with_a_canary_on_the_server() {
    let secret = canary("env-canary");
    let home = hostile_home("[plugin.hostile]\n");
    let server = start(
        &home,
        &[
            ("HOSTILE_CANARY", &secret),
            ("HOSTILE_PLAIN", "visible-if-leaked"),
        ],
    )
    .await;

    let (is_error, out) = server.call("hostile", json!({"action": "env_read"})).await;
    assert!(!is_error, "the plugin reports the attempt itself: {out:#}");
    assert_eq!(
        out["escaped"], false,
        "the guest sees no environment and no arguments: {out:#}"
    );
    assert_eq!(
        out["data"]["vars"],
        json!({}),
        "std::env::vars() is empty: {out:#}"
    );
    assert_eq!(
        out["data"]["args"],
        json!([]),
        "std::env::args() is empty: {out:#}"
    );
    let text = out.to_string();
    assert!(
        !text.contains(&secret) && !text.contains("visible-if-leaked"),
        "no variable of the host leaks: {out:#}"
    );

    still_serves(&server, "an environment read").await;
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_to_an_ungranted_host_is_denied_with_advice_naming_the_policy() {
    let fixture = FixtureServer::start().await.expect("fixture server");
    // hostile holds an http grant, but for another host: the fixture's is not in it.
    let home = hostile_home(
        "[plugin.hostile]\n\n[plugin.hostile.http]\nhosts = [\"granted.example.com:443\"]\n",
    );
    let policy_file = home.path().join("policy.toml").display().to_string();
    let server = start(&home, &[]).await;

    let url = format!("{}/hello", fixture.base_url());
    let (is_error, out) = server
        .call("hostile", json!({"action": "http_ungranted", "url": url}))
        .await;
    let error = error_of(is_error, &out, "http to an ungranted host");
    assert_eq!(
        error["kind"], "denied",
        "a policy refusal is `denied`: {out:#}"
    );
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("[plugin.hostile.http]"),
        "the advice names the policy section to edit: {message}"
    );
    assert!(
        message.contains(&policy_file),
        "the advice names the policy file {policy_file}: {message}"
    );
    assert!(
        fixture.seen().is_empty(),
        "no request reached the server: {:?}",
        fixture.seen()
    );

    still_serves(&server, "a denied http call").await;
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_is_stopped_at_the_policy_deadline_and_the_server_keeps_serving() {
    let home = hostile_home("[plugin.hostile]\ntimeout_ms = 500\n");
    let server = start(&home, &[]).await;

    // The loop never ends by itself: the call returning at all, as a `timeout` naming 500 ms,
    // is the deadline holding (the harness bounds a hang).
    let (is_error, out) = server.call("hostile", json!({"action": "spin"})).await;
    let error = error_of(is_error, &out, "spin");
    assert_eq!(
        error["kind"], "timeout",
        "a stopped loop is a `timeout`: {out:#}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("500 ms"),
        "the message names the deadline: {out:#}"
    );

    still_serves(&server, "a runaway loop").await;
    // And a second runaway does not find the server worse off.
    let (is_error, out) = server.call("hostile", json!({"action": "spin"})).await;
    assert_eq!(
        error_of(is_error, &out, "a second spin")["kind"],
        "timeout",
        "{out:#}"
    );
    still_serves(&server, "a second runaway loop").await;
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_hits_the_memory_limit_and_the_server_keeps_serving() {
    let home = hostile_home("[plugin.hostile]\nmemory_mib = 32\n");
    let server = start(&home, &[]).await;

    let (is_error, out) = server
        .call("hostile", json!({"action": "memory_bomb"}))
        .await;
    let error = error_of(is_error, &out, "memory_bomb");
    let message = error["message"].as_str().unwrap_or_default();
    assert_eq!(
        error["kind"], "failed",
        "a plugin stopped for memory has `failed`: {out:#}"
    );
    assert!(
        message.contains("memory limit"),
        "the message says it was the memory limit: {message}"
    );
    assert!(
        message.contains("32 MiB"),
        "the message names the policy's memory_mib (32): {message}"
    );

    still_serves(&server, "a memory bomb").await;
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_flood_hits_the_output_cap_and_the_server_keeps_serving() {
    let home = hostile_home("[limits]\noutput_bytes = 1048576\n\n[plugin.hostile]\n");
    let server = start(&home, &[]).await;

    let (is_error, out) = server
        .call(
            "hostile",
            json!({"action": "output_flood", "bytes": 4 << 20}),
        )
        .await;
    let error = error_of(is_error, &out, "output_flood of 4 MiB");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("output cap") && message.contains("1048576"),
        "the message names the 1 MiB output cap: {message}"
    );
    assert!(
        out.to_string().len() < 64 * 1024,
        "none of the flood reaches the agent: {} bytes",
        out.to_string().len()
    );

    still_serves(&server, "an output flood").await;
    // Under the cap, a large result still comes back — spilled to an artifact with a preview.
    let (is_error, out) = server
        .call(
            "hostile",
            json!({"action": "output_flood", "bytes": 200_000}),
        )
        .await;
    assert!(!is_error, "a 200 kB result is under the 1 MiB cap: {out:#}");
    assert_eq!(
        out["truncated"], true,
        "over the inline cap it is stored as an artifact: {out:#}"
    );
    let links = out["artifacts"].as_array().cloned().unwrap_or_default();
    assert!(
        links
            .iter()
            .any(|l| l.as_str().is_some_and(|l| l.starts_with("artifact://"))),
        "the result links its artifact: {out:#}"
    );
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_importing_more_than_its_manifest_is_refused_at_load() {
    let fixture = FixtureServer::start().await.expect("fixture server");
    let home = hostile_home(
        "[plugin.hostile]\n\n[plugin.undeclared]\n\n[plugin.undeclared.http]\nhosts = [\"*\"]\n",
    );
    home.install_plugin(
        "undeclared",
        &test_plugin("undeclared"),
        UNDECLARED_MANIFEST,
    );

    // `infra plugins`: refused, with a reason naming the interface it hides.
    let out = home
        .command()
        .arg("plugins")
        .output()
        .expect("run infra plugins");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "infra plugins runs: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_str(&stdout).expect("infra plugins prints JSON");
    let refused = list["refused"].as_array().cloned().unwrap_or_default();
    let entry = refused
        .iter()
        .find(|r| r["plugin"] == "undeclared")
        .unwrap_or_else(|| panic!("undeclared is listed as refused: {list:#}"));
    let reason = entry["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("infra:host/http"),
        "the reason names the undeclared interface: {reason}"
    );
    assert!(
        entry["source"]
            .as_str()
            .unwrap_or_default()
            .ends_with("undeclared.wasm"),
        "the source names the file: {entry:#}"
    );
    let loaded: Vec<&str> = list["plugins"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        !loaded.contains(&"undeclared"),
        "undeclared is not loaded: {loaded:?}"
    );
    assert!(
        loaded.contains(&"hostile"),
        "an honest plugin beside it loads: {loaded:?}"
    );

    // Its tool is not callable, even with a policy that would grant its http.
    let (is_error, out, _) = home.call(
        "undeclared",
        &json!({"url": format!("{}/hello", fixture.base_url())}),
    );
    assert!(
        is_error,
        "the tool of a refused plugin does not exist: {out:#}"
    );
    assert!(
        fixture.seen().is_empty(),
        "no request reached the server: {:?}",
        fixture.seen()
    );

    // `plugins inspect` on the binary shows why, from the binary itself.
    let wasm = home.path().join("plugins").join("undeclared.wasm");
    let out = home
        .command()
        .args(["plugins", "inspect"])
        .arg(&wasm)
        .output()
        .expect("run infra plugins inspect");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "inspect exits non-zero on a mismatch: {stdout}"
    );
    let report: Value = serde_json::from_str(&stdout).expect("inspect prints JSON");
    assert_eq!(report["matches_manifest"], false, "{report:#}");
    assert_eq!(report["declared_imports"], json!(["types"]), "{report:#}");
    let actual: Vec<&str> = report["actual_imports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        actual.contains(&"http"),
        "the binary really imports http: {report:#}"
    );

    // Over MCP the tool is not listed either.
    let server = start(&home, &[]).await;
    let names = server.tool_names().await;
    assert!(
        names.iter().any(|n| n == "hostile") && !names.iter().any(|n| n == "undeclared"),
        "tools/list: {names:?}"
    );
    server.close().await;
}

/// The policy that grants hostile the canary secret and the log (where it leaks what it gets).
const SECRET_GRANT: &str = "[secrets]\ncanary = \"env:HOSTILE_CANARY\"\n\n[plugin.hostile]\n\n[plugin.hostile.secrets]\nnames = [\"canary\"]\n\n[plugin.hostile.log]\n";

#[test]
fn secrets_are_denied_without_the_export_flag_even_with_a_grant() {
    let secret = canary("secret-canary");
    let home = hostile_home(SECRET_GRANT);
    let (is_error, out, stderr) = home.call_with(
        "hostile",
        &json!({"action": "secrets_get", "name": "canary"}),
        |c| {
            c.env("HOSTILE_CANARY", &secret);
        },
    );
    let error = error_of(
        is_error,
        &out,
        "secrets_get without INFRA_ALLOW_SECRET_EXPORT",
    );
    assert_eq!(error["kind"], "denied", "{out:#}");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("INFRA_ALLOW_SECRET_EXPORT"),
        "the denial names the flag: {out:#}"
    );
    assert!(
        !out.to_string().contains(&secret),
        "the value is not in the output"
    );
    assert!(!stderr.contains(&secret), "the value is not on stderr");
    assert!(
        !contains(&home.all_bytes(), &secret),
        "the value is nowhere in the state directory"
    );
}

#[test]
fn secrets_with_the_flag_but_without_a_grant_are_denied() {
    let secret = canary("secret-canary");
    let home = hostile_home(
        "[secrets]\ncanary = \"env:HOSTILE_CANARY\"\nother = \"env:SOMETHING_ELSE\"\n\n[plugin.hostile]\n\n[plugin.hostile.secrets]\nnames = [\"other\"]\n",
    );
    let (is_error, out, stderr) = home.call_with(
        "hostile",
        &json!({"action": "secrets_get", "name": "canary"}),
        |c| {
            c.env("HOSTILE_CANARY", &secret)
                .env("INFRA_ALLOW_SECRET_EXPORT", "1");
        },
    );
    let error = error_of(is_error, &out, "secrets_get of an ungranted name");
    assert_eq!(error["kind"], "denied", "{out:#}");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("[plugin.hostile.secrets]"),
        "the denial names the policy section: {out:#}"
    );
    assert!(
        !out.to_string().contains(&secret) && !stderr.contains(&secret),
        "the value leaks nowhere"
    );
    assert!(
        !contains(&home.all_bytes(), &secret),
        "the value is nowhere in the state directory"
    );
}

#[test]
fn secrets_with_flag_and_grant_reach_the_plugin_and_are_scrubbed_everywhere() {
    let secret = canary("secret-canary");
    let home = hostile_home(SECRET_GRANT);
    let (is_error, out, stderr) = home.call_with(
        "hostile",
        &json!({"action": "secrets_get", "name": "canary"}),
        |c| {
            c.env("HOSTILE_CANARY", &secret)
                .env("INFRA_ALLOW_SECRET_EXPORT", "1");
        },
    );
    assert!(
        !is_error,
        "flag + grant: the read works: {out:#}\nstderr:\n{stderr}"
    );
    assert_eq!(out["escaped"], true, "{out:#}");
    assert_eq!(
        out["data"]["len"],
        secret.len(),
        "the plugin received the real value (its length matches): {out:#}"
    );
    let value = out["data"]["value"]
        .as_str()
        .expect("the plugin returned the value field");
    assert_ne!(value, secret, "the value the plugin returned was scrubbed");
    assert!(
        !out.to_string().contains(&secret),
        "the value is nowhere in the output: {out:#}"
    );
    assert!(
        stderr.contains("the secret canary is"),
        "the plugin's leaking log line reached stderr (so the next check is not vacuous): {stderr}"
    );
    assert!(
        !stderr.contains(&secret),
        "the log line was scrubbed: {stderr}"
    );
    let audit =
        std::fs::read_to_string(home.path().join("audit.jsonl")).expect("audit.jsonl written");
    assert!(
        audit.contains("secrets_get"),
        "the call was audited: {audit}"
    );
    assert!(
        !contains(&home.all_bytes(), &secret),
        "the value is nowhere in the state directory (audit, artifacts)"
    );
}

/// A grant names logical secrets; only the operator's `[secrets]` map turns a name into a file.
/// Before, grants were globs over raw references, so `file:<dir>/*` also matched
/// `file:<dir>/../outside` and handed the plugin a file outside the granted directory.
#[test]
fn secret_names_cannot_walk_out_of_a_granted_directory() {
    let outside = canary("outside-canary");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("secrets")).expect("secrets dir");
    std::fs::write(dir.path().join("secrets/a"), canary("granted")).expect("granted file");
    std::fs::write(dir.path().join("outside"), &outside).expect("outside file");
    let secrets = dir.path().join("secrets").display().to_string();

    // The old form of grant: a glob over file references. It is refused at load, with advice.
    let home = hostile_home(&format!(
        "[plugin.hostile]\n\n[plugin.hostile.secrets]\nnames = [\"file:{secrets}/*\"]\n"
    ));
    for name in [
        format!("file:{secrets}/../outside"),
        format!("file:{secrets}/a/../../outside"),
    ] {
        let (ok, text) = secret_call(&home, &name);
        assert!(!ok, "{name}: must fail: {text}");
        assert!(
            !text.contains("\"escaped\": true") && !text.contains("\"escaped\":true"),
            "{name}: the plugin got a value: {text}"
        );
        assert!(
            !text.contains(&outside),
            "{name}: the outside file leaked: {text}"
        );
        assert!(
            text.contains("grant logical names"),
            "{name}: the refusal says how to grant: {text}"
        );
    }

    // The new form: logical names. A guest's name that is a path or reference is refused, and a
    // `..` in the operator's own map is refused at load.
    let home = hostile_home(&format!(
        "[secrets]\na = \"file:{secrets}/a\"\n\n[plugin.hostile]\n\n[plugin.hostile.secrets]\nnames = [\"*\"]\n"
    ));
    for name in [
        format!("file:{secrets}/../outside"),
        "a/../../outside".to_string(),
        "../outside".to_string(),
        "env:HOME".to_string(),
    ] {
        let (is_error, out, stderr) = home.call_with(
            "hostile",
            &json!({"action": "secrets_get", "name": name}),
            |c| {
                c.env("INFRA_ALLOW_SECRET_EXPORT", "1");
            },
        );
        let error = error_of(is_error, &out, &name);
        assert_eq!(error["kind"], "denied", "{name}: {out:#}");
        assert!(
            !format!("{out:#}{stderr}").contains(&outside),
            "{name}: the outside file leaked"
        );
    }
    let home = hostile_home(&format!(
        "[secrets]\na = \"file:{secrets}/../outside\"\n\n[plugin.hostile]\n\n[plugin.hostile.secrets]\nnames = [\"a\"]\n"
    ));
    let (ok, text) = secret_call(&home, "a");
    assert!(
        !ok && !text.contains(&outside),
        "a '..' in [secrets] is refused: {text}"
    );
    assert!(
        text.contains("'..'"),
        "the refusal names the problem: {text}"
    );
}

/// `infra call hostile secrets_get NAME` with secret export on: (succeeded, stdout + stderr). Not
/// `call_with`: a refused policy prints its error on stderr, with no JSON.
fn secret_call(home: &Home, name: &str) -> (bool, String) {
    let out = home
        .command()
        .args([
            "call",
            "hostile",
            &json!({"action": "secrets_get", "name": name}).to_string(),
        ])
        .env("INFRA_ALLOW_SECRET_EXPORT", "1")
        .output()
        .expect("run infra call");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Spinning guests yield to the executor every epoch tick: with more spinners than the server
/// has worker threads, another call is still answered while they spin. Before, each spinning
/// guest held its worker thread until its deadline, so nothing else ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spinning_guests_do_not_starve_other_calls() {
    let home = hostile_home("[plugin.hostile]\ntimeout_ms = 6000\n");
    let server = start(&home, &[("TOKIO_WORKER_THREADS", "2")]).await;
    let spin = || async {
        let r = server.call("hostile", json!({"action": "spin"})).await;
        (Instant::now(), r)
    };
    let other = async {
        // Once the four spinning calls have begun (their begin records are written before
        // they run), they occupy the server's two workers; this barrier cannot make the fixed
        // server fail, and it makes the starving one fail.
        wait_for("the four spinning calls to begin", || {
            audit_records(home.path())
                .iter()
                .filter(|r| r["kind"] == "begin" && r["tool"] == "hostile")
                .count()
                >= 4
        })
        .await;
        let r = server.call("help", json!({})).await;
        (Instant::now(), r)
    };
    let (a, b, c, d, (helped, (help_error, help))) =
        tokio::join!(spin(), spin(), spin(), spin(), other);
    assert!(!help_error, "help answered: {help:#}");
    for (done, (is_error, out)) in [a, b, c, d] {
        assert_eq!(
            error_of(is_error, &out, "spin")["kind"],
            "timeout",
            "{out:#}"
        );
        assert!(
            helped < done,
            "help was answered while the spinners still ran, not after one of them ended"
        );
    }
    server.close().await;
}

/// Past `[limits] plugin_calls_in_flight`, a call is refused at once as `busy`, with advice,
/// and the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_past_the_in_flight_cap_are_refused_as_busy() {
    let home = hostile_home(
        "[limits]\nplugin_calls_in_flight = 2\n\n[plugin.hostile]\ntimeout_ms = 3000\n",
    );
    let server = start(&home, &[]).await;
    let spin = || server.call("hostile", json!({"action": "spin"}));
    let (a, b, c) = tokio::join!(spin(), spin(), spin());
    let kinds: Vec<String> = [&a, &b, &c]
        .iter()
        .map(|(e, out)| {
            error_of(*e, out, "spin")["kind"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "busy").count(),
        1,
        "exactly one of three spinners is refused as busy: {kinds:?}"
    );
    let busy = [&a, &b, &c]
        .into_iter()
        .find(|(_, out)| out["error"]["kind"] == "busy")
        .expect("a busy one");
    assert!(
        busy.1["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("plugin_calls_in_flight"),
        "the refusal names the limit: {:#}",
        busy.1
    );
    still_serves(&server, "a busy refusal").await;
    server.close().await;
}

/// An agent that makes large outputs cannot fill the disk: the artifact store keeps to its
/// quota by removing the oldest unpinned artifacts, and a result that cannot fit even then (the
/// rest is pinned) comes back as a preview with advice — never inline in full.
#[test]
fn large_outputs_keep_the_artifact_store_within_its_quota() {
    let home = hostile_home(
        "[limits]\noutput_bytes = 1048576\nartifacts_quota_bytes = 400000\n\n[plugin.hostile]\n",
    );
    let flood = json!({"action": "output_flood", "bytes": 150000});
    let mut uris = Vec::new();
    for _ in 0..4 {
        let (is_error, out, stderr) = home.call("hostile", &flood);
        assert!(!is_error, "{out:#}\n{stderr}");
        assert_eq!(out["truncated"], true, "spilled: {out:#}");
        uris.push(
            out["artifacts"][0]
                .as_str()
                .expect("an artifact")
                .to_string(),
        );
    }
    let (_, listed, _) = home.call("artifacts", &json!({"action": "list"}));
    let held: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["uri"].as_str())
        .collect();
    assert_eq!(held.len(), 2, "two of ~150 KB fit in 400 KB: {listed:#}");
    assert!(
        held.contains(&uris[3].as_str()) && held.contains(&uris[2].as_str()),
        "the newest stay"
    );
    assert!(
        listed["usage"]["bytes"].as_u64().unwrap() <= 400_000,
        "{listed:#}"
    );

    // Pin both: the next large result has nowhere to go.
    for uri in &held {
        let (is_error, out, _) = home.call("artifacts", &json!({"action": "pin", "uri": uri}));
        assert!(!is_error && out["pinned"] == true, "{out:#}");
    }
    let (is_error, out, _) = home.call("hostile", &flood);
    assert!(!is_error, "the call itself worked: {out:#}");
    let text = out.to_string();
    assert!(
        text.len() < 40_000,
        "only a preview came back ({} bytes)",
        text.len()
    );
    let note = out["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("could not be stored") && note.contains("artifacts_quota_bytes"),
        "the note says why and what to do: {out:#}"
    );

    // Delete frees the room.
    let (is_error, out, _) = home.call("artifacts", &json!({"action": "delete", "uri": held[0]}));
    assert!(!is_error && out["deleted"] == true, "{out:#}");
    let (_, out, _) = home.call("hostile", &flood);
    assert_eq!(
        out["artifacts"].as_array().map(Vec::len),
        Some(1),
        "{out:#}"
    );
}

/// Every escape, one after another, through one server: each is stopped, and after each the
/// same process answers a normal call. The deadline here comes from the call's own timeout_ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_long_lived_server_contains_every_escape_in_a_row() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let addr = listener.local_addr().expect("listener address").to_string();
    let fixture = FixtureServer::start().await.expect("fixture server");
    let secret = canary("env-canary");
    let home = hostile_home(
        "[limits]\noutput_bytes = 1048576\n\n[plugin.hostile]\nmemory_mib = 32\n\n\
         [plugin.hostile.http]\nhosts = [\"granted.example.com:443\"]\n",
    );
    let server = start(&home, &[("HOSTILE_CANARY", &secret)]).await;
    still_serves(&server, "the start").await;

    let (is_error, out) = server
        .call("hostile", json!({"action": "net_connect", "addr": addr}))
        .await;
    assert!(!is_error && out["escaped"] == false, "net_connect: {out:#}");
    assert_no_connection(&listener);
    still_serves(&server, "net_connect").await;

    let (is_error, out) = server.call("hostile", json!({"action": "env_read"})).await;
    assert!(
        !is_error && out["escaped"] == false && !out.to_string().contains(&secret),
        "env_read: {out:#}"
    );
    still_serves(&server, "env_read").await;

    let url = format!("{}/hello", fixture.base_url());
    let (is_error, out) = server
        .call("hostile", json!({"action": "http_ungranted", "url": url}))
        .await;
    assert_eq!(
        error_of(is_error, &out, "http_ungranted")["kind"],
        "denied",
        "{out:#}"
    );
    assert!(
        fixture.seen().is_empty(),
        "no request reached the fixture: {:?}",
        fixture.seen()
    );
    still_serves(&server, "http_ungranted").await;

    // An endless loop: returning at all, as a `timeout`, is the 500 ms deadline holding.
    let (is_error, out) = server
        .call("hostile", json!({"action": "spin", "timeout_ms": 500}))
        .await;
    assert_eq!(
        error_of(is_error, &out, "spin")["kind"],
        "timeout",
        "{out:#}"
    );
    still_serves(&server, "spin").await;

    let (is_error, out) = server
        .call("hostile", json!({"action": "memory_bomb"}))
        .await;
    let message = error_of(is_error, &out, "memory_bomb")["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("memory limit") && message.contains("32 MiB"),
        "memory_bomb: {out:#}"
    );
    still_serves(&server, "memory_bomb").await;

    let (is_error, out) = server
        .call(
            "hostile",
            json!({"action": "output_flood", "bytes": 4 << 20}),
        )
        .await;
    let message = error_of(is_error, &out, "output_flood")["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("output cap") && message.contains("1048576"),
        "output_flood: {out:#}"
    );
    still_serves(&server, "output_flood").await;

    let (is_error, out) = server
        .call(
            "hostile",
            json!({"action": "secrets_get", "name": "canary"}),
        )
        .await;
    assert_eq!(
        error_of(is_error, &out, "secrets_get")["kind"],
        "denied",
        "{out:#}"
    );
    assert!(!out.to_string().contains(&secret), "secrets_get: {out:#}");
    still_serves(&server, "secrets_get").await;

    // The host side is intact too: the audit chain of everything above verifies.
    let (is_error, out) = server.call("audit", json!({"action": "verify"})).await;
    assert!(
        !is_error && out["valid"] == true,
        "the audit chain verifies after the barrage: {out:#}"
    );
    assert!(
        !server.stderr().contains(&secret),
        "the canary never reached the server's log"
    );
    server.close().await;
    assert_listener_live(&listener);
}

/// The end record of the hostile plugin's last call.
fn last_end(home: &Home) -> Value {
    infra_tests::audit_records(home.path())
        .into_iter()
        .rfind(|r| r["kind"] == "end" && r["tool"] == "hostile")
        .expect("the end record of the hostile call")
}

#[tokio::test]
async fn a_stage_flood_leaves_a_bounded_audit_record_and_the_server_keeps_serving() {
    let home = hostile_home("[plugin.hostile]\n\n[plugin.hostile.log]\n");
    let server = start(&home, &[]).await;
    let (is_error, out) = server
        .call("hostile", json!({"action": "stage_flood", "bytes": 5000}))
        .await;
    assert!(!is_error, "{out:#}");
    let end = last_end(&home);
    let stages: Vec<&Value> = end["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["cap"] == "log")
        .collect();
    assert_eq!(stages.len(), 64, "at most 64 stages are kept per call");
    assert!(
        end.to_string().len() < 80 * 1024,
        "each stage is cut: the record is {} bytes",
        end.to_string().len()
    );
    still_serves(&server, "a stage flood").await;

    // Without the log grant nothing is marked; each attempt is a recorded denial, and a flood
    // of them is counted rather than kept: the record stays bounded and the count is exact.
    let home = hostile_home("[plugin.hostile]\n");
    let server = start(&home, &[]).await;
    let (is_error, out) = server
        .call("hostile", json!({"action": "stage_flood", "bytes": 5000}))
        .await;
    assert!(!is_error, "{out:#}");
    let end = last_end(&home);
    let events = end["events"].as_array().unwrap();
    assert!(events.len() <= 2001, "{} events kept", events.len());
    let denied = events
        .iter()
        .filter(|e| e["cap"] == "log" && e["decision"] == "deny")
        .count();
    let counted: usize = events
        .iter()
        .find(|e| e["cap"] == "audit")
        .and_then(|e| e["detail"].as_str())
        .and_then(|d| d.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("an event counts the events not kept");
    assert_eq!(denied + counted, 5000, "every attempt is kept or counted");
    assert_eq!(events.last().unwrap()["cap"], "log", "the latest are kept");
    still_serves(&server, "a flood of denied stages").await;
}

#[tokio::test]
async fn an_upload_body_uri_the_plugin_makes_up_reaches_nothing() {
    let data = infra_tests::data_server::DataServer::start(b"stored bytes".to_vec())
        .await
        .unwrap();
    let home = hostile_home(
        "[plugin.hostile]\n[plugin.hostile.http]\nhosts = [\"127.0.0.1\"]\n[plugin.hostile.artifacts]\n\
         [plugin.http.http]\nhosts = [\"127.0.0.1\"]\n[plugin.http.artifacts]\n",
    );
    std::fs::write(home.path().join("outside"), "not an artifact").unwrap();
    let server = start(&home, &[]).await;
    let url = format!("{}/upload", data.base_url());
    // The positive control: an artifact the store holds is uploaded, whole.
    let (is_error, out) = server
        .call(
            "http",
            json!({"action": "download", "url": format!("{}/data", data.base_url())}),
        )
        .await;
    assert!(!is_error, "{out}");
    let uri = out["artifact"]["uri"]
        .as_str()
        .expect("an artifact")
        .to_string();
    let (is_error, out) = server
        .call(
            "hostile",
            json!({"action": "http_upload", "url": url, "name": uri}),
        )
        .await;
    assert!(!is_error, "{out}");
    assert_eq!(
        data.uploads().pop().expect("the upload").body,
        b"stored bytes"
    );

    let id = uri.trim_start_matches("artifact://").to_string();
    for hostile in [
        "artifact://../outside".to_string(),
        "artifact://../../../../etc/passwd".to_string(),
        "artifact:///etc/passwd".to_string(),
        "file:///etc/passwd".to_string(),
        format!("artifact://{id}/../../outside"),
        format!("artifact://{id}%2f..%2f..%2foutside"),
        format!("artifact://{id}.json"),
        "/etc/passwd".to_string(),
    ] {
        let (is_error, out) = server
            .call(
                "hostile",
                json!({"action": "http_upload", "url": url, "name": hostile}),
            )
            .await;
        let error = error_of(is_error, &out, &hostile);
        assert_eq!(error["kind"], "not-found", "{hostile}: {out:#}");
        assert!(
            error["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("body: "),
            "{hostile}: names the field: {out:#}"
        );
    }
    assert_eq!(data.uploads().len(), 1, "{:?}", data.uploads());
    server.close().await;

    // Without the artifacts grant, not even a real artifact.
    home.policy("[plugin.hostile]\n[plugin.hostile.http]\nhosts = [\"127.0.0.1\"]\n");
    let server = start(&home, &[]).await;
    let (is_error, out) = server
        .call(
            "hostile",
            json!({"action": "http_upload", "url": url, "name": uri}),
        )
        .await;
    assert_eq!(
        error_of(is_error, &out, "no grant")["kind"],
        "denied",
        "{out:#}"
    );
    assert_eq!(
        data.uploads().len(),
        1,
        "only the control reached the server"
    );
    server.close().await;
}
