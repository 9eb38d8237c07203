//! The policy (refused when malformed, deny by default, host patterns checked on resolved
//! addresses, sha256 pins), the hash-chained audit log (tampering and torn tails told apart) and
//! the compile cache (a warm start compiles nothing) — all through the real `infra` binary.

use std::process::Output;

use infra::fixture_server::FixtureServer;
use infra_tests::{Home, test_plugin};
use serde_json::{Value, json};

/// The hostile plugin's manifest, as shipped beside its source.
const HOSTILE_MANIFEST: &str = include_str!("../plugins/hostile/plugin.toml");

/// Runs `infra ARGS…` on `home`.
fn infra(home: &Home, args: &[&str]) -> Output {
    home.command().args(args).output().expect("run infra")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `infra plugins` as JSON (it must succeed).
fn plugins(home: &Home) -> Value {
    plugins_with(home, |_| {})
}

/// `infra plugins` as JSON, with a chance to change the command (it must succeed).
fn plugins_with(home: &Home, tweak: impl FnOnce(&mut std::process::Command)) -> Value {
    let mut cmd = home.command();
    cmd.arg("plugins");
    tweak(&mut cmd);
    let out = cmd.output().expect("run infra plugins");
    assert!(
        out.status.success(),
        "infra plugins fails: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_str(&text(&out.stdout)).expect("infra plugins prints JSON")
}

// ---------------------------------------------------------------------------------------------
// Policy
// ---------------------------------------------------------------------------------------------

/// A policy key infra does not know stops it from starting, naming the key and the file.
#[test]
fn an_unknown_policy_key_refuses_to_start_naming_the_key_and_the_file() {
    let cases = [
        (
            "[limits]\ntimeout_ms = 1000\ntimeout_msec = 5\n",
            "timeout_msec",
        ),
        (
            "[plugin.http.http]\nhosts = [\"*\"]\nallow_all_hosts = true\n",
            "allow_all_hosts",
        ),
        ("[plugin.http]\nmemory_mb = 64\n", "memory_mb"),
    ];
    for (policy, key) in cases {
        let home = Home::new();
        home.policy(policy);
        let file = home.path().join("policy.toml").display().to_string();
        let out = infra(&home, &["plugins"]);
        let stderr = text(&out.stderr);
        assert!(
            !out.status.success(),
            "infra must refuse to start with `{key}` in the policy; stdout: {}",
            text(&out.stdout)
        );
        assert!(
            stderr.contains(key),
            "the error names the unknown key `{key}`: {stderr}"
        );
        assert!(
            stderr.contains(&file),
            "the error names the policy file {file}: {stderr}"
        );
        // A server does not start either.
        let out = home
            .command()
            .arg("serve")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run infra serve");
        assert!(
            !out.status.success(),
            "infra serve refuses the same policy: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(key),
            "infra serve names `{key}`: {}",
            text(&out.stderr)
        );
    }
}

/// A plugin with no section in the policy gets nothing: its http call is denied, while the same
/// URL is reachable for a plugin that holds a grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_without_a_policy_section_is_denied_by_default() {
    let fixture = FixtureServer::start().await.expect("fixture server");
    let home = Home::new();
    home.policy("[plugin.http.http]\nhosts = [\"*\"]\n")
        .install_plugin("hostile", &test_plugin("hostile"), HOSTILE_MANIFEST);
    let url = format!("{}/hello", fixture.base_url());

    let listed = plugins(&home);
    assert!(
        listed["plugins"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["name"] == "hostile"),
        "hostile loads (it is only granted nothing): {listed:#}"
    );

    let (is_error, out, _) = home.call("hostile", &json!({"action": "http_ungranted", "url": url}));
    assert!(is_error, "no section, no http: {out:#}");
    assert_eq!(out["error"]["kind"], "denied", "{out:#}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("[plugin.hostile"),
        "the advice names the section to add: {out:#}"
    );
    assert!(
        fixture.seen().is_empty(),
        "no request reached the server: {:?}",
        fixture.seen()
    );

    // The URL itself is reachable: the built-in http plugin, which holds a grant, gets through.
    let (is_error, out, stderr) = home.call("http", &json!({"action": "request", "url": url}));
    assert!(
        !is_error && out["status"] == 200,
        "the granted plugin reaches the same URL: {out:#}\n{stderr}"
    );
    assert_eq!(
        fixture.seen().len(),
        1,
        "exactly the granted request reached the server"
    );
}

/// `deny_hosts` entries that are addresses are checked against what a name resolves to:
/// `hosts = ["*"]` with `127.0.0.0/8` denied refuses `http://localhost:PORT/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_resolves_to_a_denied_address_is_denied() {
    let fixture = FixtureServer::start().await.expect("fixture server");
    let port = fixture
        .base_url()
        .rsplit(':')
        .next()
        .expect("port")
        .to_string();
    let by_name = format!("http://localhost:{port}/hello");
    let by_address = format!("http://127.0.0.1:{port}/hello");

    // Control: without the deny entry, `localhost` reaches the fixture.
    let open = Home::new();
    open.policy("[plugin.http.http]\nhosts = [\"*\"]\n");
    let (is_error, out, stderr) = open.call("http", &json!({"action": "request", "url": by_name}));
    assert!(
        !is_error && out["status"] == 200,
        "localhost is reachable when nothing denies it: {out:#}\n{stderr}"
    );
    assert_eq!(fixture.seen().len(), 1);

    // `::1` is denied too, so the test holds where localhost also resolves to IPv6.
    let home = Home::new();
    home.policy("[plugin.http.http]\nhosts = [\"*\"]\ndeny_hosts = [\"127.0.0.0/8\", \"::1\"]\n");
    for url in [&by_name, &by_address] {
        let (is_error, out, _) = home.call("http", &json!({"action": "request", "url": url}));
        assert!(is_error, "{url} must be denied: {out:#}");
        assert_eq!(out["error"]["kind"], "denied", "{url}: {out:#}");
        let message = out["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("127.0.0.1"),
            "the denial of {url} names the denied address: {message}"
        );
    }
    assert_eq!(
        fixture.seen().len(),
        1,
        "no denied request reached the server: {:?}",
        fixture.seen()
    );
}

/// A host pattern with a port grants that port only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_pattern_with_a_port_grants_only_that_port() {
    let granted = FixtureServer::start().await.expect("fixture server");
    let other = FixtureServer::start().await.expect("second fixture server");
    let host_port = granted.base_url().trim_start_matches("http://").to_string();
    let home = Home::new();
    home.policy(&format!("[plugin.http.http]\nhosts = [\"{host_port}\"]\n"));

    let (is_error, out, stderr) = home.call(
        "http",
        &json!({"action": "request", "url": format!("{}/hello", granted.base_url())}),
    );
    assert!(
        !is_error && out["status"] == 200,
        "{host_port} is granted: {out:#}\n{stderr}"
    );
    let (is_error, out, _) = home.call(
        "http",
        &json!({"action": "request", "url": format!("{}/hello", other.base_url())}),
    );
    assert!(
        is_error && out["error"]["kind"] == "denied",
        "another port of the same address is not: {out:#}"
    );
    assert!(
        other.seen().is_empty(),
        "nothing reached the ungranted port"
    );
}

/// A policy pin on the plugin's sha256: a different binary is refused, the pinned one loads.
#[test]
fn a_sha256_pin_refuses_any_other_binary() {
    let wasm = test_plugin("hostile");
    let sum = std::process::Command::new("sha256sum")
        .arg(&wasm)
        .output()
        .expect("run sha256sum");
    let sha = text(&sum.stdout)
        .split_whitespace()
        .next()
        .expect("sha256sum prints the sum")
        .to_string();
    assert_eq!(sha.len(), 64);

    let wrong = "0".repeat(64);
    let home = Home::new();
    home.policy(&format!("[plugin.hostile]\nsha256 = \"{wrong}\"\n"))
        .install_plugin("hostile", &wasm, HOSTILE_MANIFEST);
    let listed = plugins(&home);
    let refused = listed["refused"].as_array().cloned().unwrap_or_default();
    let entry = refused
        .iter()
        .find(|r| r["plugin"] == "hostile")
        .unwrap_or_else(|| panic!("hostile refused: {listed:#}"));
    let reason = entry["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&sha) && reason.contains(&wrong),
        "the reason shows both hashes: {reason}"
    );
    let (is_error, _, _) = home.call("hostile", &json!({"action": "fs_read"}));
    assert!(is_error, "a refused plugin cannot be called");

    let home = Home::new();
    home.policy(&format!("[plugin.hostile]\nsha256 = \"{sha}\"\n"))
        .install_plugin("hostile", &wasm, HOSTILE_MANIFEST);
    let listed = plugins(&home);
    let loaded = listed["plugins"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "hostile");
    let loaded = loaded.unwrap_or_else(|| panic!("the pinned binary loads: {listed:#}"));
    assert_eq!(
        loaded["sha256"],
        sha.as_str(),
        "infra reports the same sha256 as sha256sum"
    );
    assert_eq!(
        loaded["declared_imports"],
        json!(["types", "http", "secrets", "log"]),
        "declared imports come from plugin.toml: {loaded:#}"
    );
    let mut actual: Vec<&str> = loaded["actual_imports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    actual.sort_unstable();
    assert_eq!(
        actual,
        ["http", "log", "secrets", "types"],
        "actual imports are read from the binary: {loaded:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// Audit
// ---------------------------------------------------------------------------------------------

/// A state directory with a real audit log of several calls, and its lines.
async fn audited_home() -> (Home, Vec<String>) {
    let fixture = FixtureServer::start().await.expect("fixture server");
    let home = Home::new();
    home.policy("[plugin.http.http]\nhosts = [\"*\"]\ndeny_hosts = [\"169.254.169.254\"]\n\n[plugin.hostile]\n")
        .install_plugin("hostile", &test_plugin("hostile"), HOSTILE_MANIFEST);
    let calls = [
        (
            "http",
            json!({"action": "request", "url": format!("{}/hello", fixture.base_url())}),
        ),
        (
            "http",
            json!({"action": "request", "url": "http://169.254.169.254/latest/meta-data/"}),
        ),
        ("hostile", json!({"action": "env_read"})),
        ("plugins", json!({"action": "list"})),
        (
            "http",
            json!({"action": "check", "url": format!("{}/status/200", fixture.base_url())}),
        ),
    ];
    for (tool, args) in &calls {
        home.call(tool, args);
    }
    let log =
        std::fs::read_to_string(home.path().join("audit.jsonl")).expect("audit.jsonl written");
    let lines: Vec<String> = log.lines().map(str::to_string).collect();
    assert!(
        lines.len() >= calls.len(),
        "at least one record per call: {} lines\n{log}",
        lines.len()
    );
    for l in &lines {
        let r: Value = serde_json::from_str(l)
            .unwrap_or_else(|e| panic!("each line is one JSON record ({e}): {l}"));
        assert!(
            r["hash"].is_string() && r.get("prev").is_some() && r.get("seq").is_some(),
            "chained record: {l}"
        );
    }
    (home, lines)
}

/// `infra audit verify` on a copy of an audit log: (success, stdout + stderr).
fn verify(lines_text: &str) -> (bool, String) {
    verify_in(&Home::new(), lines_text)
}

/// `infra audit verify` on `home` after writing `lines_text` as its audit log.
fn verify_in(home: &Home, lines_text: &str) -> (bool, String) {
    std::fs::write(home.path().join("audit.jsonl"), lines_text).expect("write audit.jsonl");
    let out = infra(home, &["audit", "verify"]);
    (
        out.status.success(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

/// Does `report` name the record with `seq` (on 1-based `line`)?
fn names_record(report: &str, seq: &Value, line: usize) -> bool {
    let seq = seq.to_string();
    [
        format!("seq {seq}"),
        format!("seq={seq}"),
        format!("record {seq}"),
        format!("#{seq}"),
        format!("line {line}"),
    ]
    .iter()
    .any(|needle| report.contains(needle.as_str()))
}

fn join(lines: &[String]) -> String {
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_chain_of_real_calls_verifies() {
    let (home, lines) = audited_home().await;
    let out = infra(&home, &["audit", "verify"]);
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "an untouched log verifies: {report}");
    let count = format!("{} records", lines.len());
    assert!(
        report.contains(&count),
        "the report counts the records ({count}): {report}"
    );
    let (ok, again) = verify(&join(&lines));
    assert!(
        ok,
        "a byte-identical copy verifies too (the chain has no hidden state): {again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_one_field_of_one_record_is_detected_and_named() {
    let (_home, mut lines) = audited_home().await;
    let idx = 1;
    let record: Value = serde_json::from_str(&lines[idx]).expect("record");
    let tool = record["tool"].as_str().expect("tool field").to_string();
    // Change the value of `tool` in place, touching nothing else on the line.
    let line = &lines[idx];
    let key_at = line.find("\"tool\"").expect("a tool key");
    let value_at = key_at
        + line[key_at..]
            .find(&format!("\"{tool}\""))
            .expect("its value")
        + 1;
    let forged = format!(
        "{}{}{}",
        &line[..value_at],
        tool.to_uppercase(),
        &line[value_at + tool.len()..]
    );
    assert_ne!(&forged, line);
    let forged_record: Value = serde_json::from_str(&forged).expect("still valid JSON");
    assert_eq!(forged_record["tool"], tool.to_uppercase());
    lines[idx] = forged;

    let (ok, report) = verify(&join(&lines));
    assert!(!ok, "a forged field must fail verification: {report}");
    assert!(
        names_record(&report, &record["seq"], idx + 1),
        "the report names record seq {} (line {}): {report}",
        record["seq"],
        idx + 1
    );
    assert!(
        !report.to_lowercase().contains("torn"),
        "an edit in the middle is not a torn tail: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_record_is_detected_and_the_gap_named() {
    let (_home, mut lines) = audited_home().await;
    let removed: Value = serde_json::from_str(&lines.remove(1)).expect("record");
    let next: Value = serde_json::from_str(&lines[1]).expect("record");
    let (ok, report) = verify(&join(&lines));
    assert!(!ok, "a deleted record must fail verification: {report}");
    assert!(
        names_record(&report, &next["seq"], 2),
        "the report names record {} where the gap is: {report}",
        next["seq"]
    );
    assert!(
        report.contains(&format!("record {} is missing", removed["seq"])),
        "the report names the deleted record {}: {report}",
        removed["seq"]
    );
    assert!(
        !report.to_lowercase().contains("torn"),
        "a deletion is not a torn tail: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_two_records_is_detected_and_named() {
    let (_home, mut lines) = audited_home().await;
    lines.swap(1, 2);
    let early: Value = serde_json::from_str(&lines[1]).expect("record");
    let (ok, report) = verify(&join(&lines));
    assert!(!ok, "reordered records must fail verification: {report}");
    assert!(
        names_record(&report, &early["seq"], 2),
        "the report names record {} on line 2: {report}",
        early["seq"]
    );
    assert!(
        !report.to_lowercase().contains("torn"),
        "a swap is not a torn tail: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_last_line_is_reported_as_a_torn_tail_not_as_tampering() {
    let (_home, lines) = audited_home().await;
    let mut log = lines[..lines.len() - 1].join("\n");
    log.push('\n');
    let last = &lines[lines.len() - 1];
    log.push_str(&last[..last.len() / 2]); // a crash mid-append: half a line, no newline
    let home = Home::new();
    let (_, report) = verify_in(&home, &log);
    let lower = report.to_lowercase();
    assert!(
        lower.contains("torn"),
        "the report calls it a torn tail: {report}"
    );
    assert!(
        lower.contains("not tampering"),
        "the report says a torn tail is not tampering: {report}"
    );
    for claim in ["altered", "was edited", "deleted", "reordered", "inserted"] {
        assert!(
            !lower.contains(claim),
            "a torn tail is not reported as tampering (`{claim}`): {report}"
        );
    }
    let complete = lines.len() - 1;
    assert!(
        report.contains(&format!("{complete} records")),
        "the {complete} complete records before it are still counted: {report}"
    );

    // The next start appends after the complete records, keeping the torn bytes aside.
    let (is_error, out, stderr) = home.call("plugins", &json!({"action": "list"}));
    assert!(
        !is_error,
        "infra keeps working on a log with a torn tail: {out:#}\n{stderr}"
    );
    let after = infra(&home, &["audit", "verify"]);
    let report = text(&after.stdout);
    assert!(
        after.status.success(),
        "the repaired chain verifies: {report}{}",
        text(&after.stderr)
    );
    assert!(
        !report.to_lowercase().contains("torn"),
        "no torn tail is left in the log: {report}"
    );
    let kept_aside = std::fs::read_dir(home.path())
        .expect("state dir")
        .flatten()
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("audit.jsonl.torn")
        });
    assert!(kept_aside, "the torn bytes were kept aside, not dropped");
}

// ---------------------------------------------------------------------------------------------
// Compile cache
// ---------------------------------------------------------------------------------------------

/// The first start compiles every plugin; the second loads all of them from the cache. The
/// cache here is the state directory's own (the harness's shared test cache is switched off).
#[test]
fn a_warm_start_compiles_nothing() {
    let home = Home::new();
    home.install_plugin("hostile", &test_plugin("hostile"), HOSTILE_MANIFEST);
    let own_cache = |c: &mut std::process::Command| {
        c.env_remove("INFRA_CACHE_DIR");
    };

    let cold = plugins_with(&home, own_cache);
    let names: Vec<&str> = cold["plugins"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"hostile") && names.contains(&"http"),
        "built-in and third-party plugins load: {cold:#}"
    );
    assert!(
        cold["compile_cache"]["misses"].as_u64().unwrap_or(0) >= 1,
        "a cold start compiles: {:#}",
        cold["compile_cache"]
    );
    assert!(
        cold["plugins"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|p| p["compiled_from_cache"] == false),
        "nothing came from an empty cache: {cold:#}"
    );

    let cached = std::fs::read_dir(home.path().join("cache"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(
        cached >= 2,
        "the cold start stored the compiled plugins in <state>/cache ({cached} files)"
    );

    let warm = plugins_with(&home, own_cache);
    assert!(
        warm["compile_cache"]["hits"].as_u64().unwrap_or(0) >= 1,
        "a warm start hits the cache: {:#}",
        warm["compile_cache"]
    );
    assert_eq!(
        warm["compile_cache"]["misses"], 0,
        "a warm start compiles nothing: {:#}",
        warm["compile_cache"]
    );
    assert!(
        warm["plugins"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|p| p["compiled_from_cache"] == true),
        "every plugin came from the cache: {warm:#}"
    );
    assert_eq!(
        warm["plugins"].as_array().map(Vec::len),
        cold["plugins"].as_array().map(Vec::len),
        "the same plugins load warm as cold"
    );
}

#[test]
fn a_plugin_whose_tool_name_is_taken_is_refused_not_shadowed() {
    let home = Home::new();
    let wasm = test_plugin("hostile");
    // The same component under a second name exports the same tool `hostile`; and a plugin
    // whose tool would shadow the built-in `http` tool is refused the same way.
    home.install_plugin("hostile", &wasm, HOSTILE_MANIFEST)
        .install_plugin(
            "hostile2",
            &wasm,
            &HOSTILE_MANIFEST.replace("name = \"hostile\"", "name = \"hostile2\""),
        )
        .install_plugin(
            "httpish",
            &infra_tests::builtin_plugin("http"),
            "name = \"httpish\"\nversion = \"1\"\nimports = [\"types\", \"http\", \"log\"]\n",
        );
    let listed = plugins(&home);
    let loaded: Vec<&str> = listed["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        loaded.contains(&"hostile") && loaded.contains(&"http"),
        "{listed:#}"
    );
    assert!(
        !loaded.contains(&"hostile2") && !loaded.contains(&"httpish"),
        "{listed:#}"
    );
    let reason = |name: &str| {
        listed["refused"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["plugin"] == name)
            .map(|r| r["reason"].as_str().unwrap().to_string())
    };
    let r = reason("hostile2").expect("hostile2 is refused");
    assert!(r.contains("'hostile'") && r.contains("rename"), "{r}");
    let r = reason("httpish").expect("httpish is refused");
    assert!(r.contains("'http'") && r.contains("plugin 'http'"), "{r}");
}
