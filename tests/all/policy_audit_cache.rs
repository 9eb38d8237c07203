//! The policy (refused when malformed, deny by default, host patterns checked on resolved
//! addresses, sha256 pins), the hash-chained audit log (tampering and torn tails told apart) and
//! the compile cache (a warm start compiles nothing) — all through the real `infra` binary.

use std::process::Output;

use infra_tests::fixture_server::FixtureServer;
use std::sync::Arc;

use infra_tests::{Home, audit_records, test_plugin, wait_for};
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

// ---------------------------------------------------------------------------------------------
// Audit: begin and end records, describe, cancellation, faults
// ---------------------------------------------------------------------------------------------

/// The records of `kind` for `trace_id`.
fn records_of<'a>(records: &'a [Value], kind: &str, trace_id: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["kind"] == kind && r["trace_id"] == trace_id)
        .collect()
}

/// `infra audit verify` on the state directory at `dir`: (success, stdout + stderr).
fn verify_dir(home: &Home, dir: &std::path::Path) -> (bool, String) {
    let out = home
        .command()
        .env("INFRA_HOME", dir)
        .args(["audit", "verify"])
        .output()
        .expect("run infra audit verify");
    (
        out.status.success(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

/// A call leaves a begin record before it runs and an end record after, paired by `call_id`;
/// `audit list` shows them as one entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_bracketed_by_a_begin_and_an_end_record() {
    let fixture = FixtureServer::start().await.expect("fixture server");
    let home = Home::new();
    home.policy("[plugin.http.http]\nhosts = [\"*\"]\n");
    let url = format!("{}/hello", fixture.base_url());
    let (is_error, out, stderr) = home.call(
        "http",
        &json!({"action": "request", "url": url, "trace_id": "bracketed"}),
    );
    assert!(!is_error, "{out:#}\n{stderr}");
    let records = audit_records(home.path());
    let begin = records_of(&records, "begin", "bracketed");
    let end = records_of(&records, "end", "bracketed");
    assert_eq!((begin.len(), end.len()), (1, 1), "{records:#?}");
    let (begin, end) = (begin[0], end[0]);
    assert_eq!(begin["call_id"], end["call_id"]);
    assert!(begin["seq"].as_u64() < end["seq"].as_u64());
    assert_eq!(begin["args"]["url"], url, "the begin holds the arguments");
    assert!(begin["plugin_sha256"].is_string());
    assert_eq!(end["outcome"], "ok");
    assert_eq!(end["events"][0]["cap"], "http", "the end holds the events");

    let (_, listed, _) = home.call("audit", &json!({"action": "list", "trace": "bracketed"}));
    let calls = listed["records"].as_array().expect("records");
    assert_eq!(calls.len(), 1, "one entry per call: {listed:#}");
    assert_eq!(calls[0]["outcome"], "ok");
    assert_eq!(calls[0]["args"]["url"], url);
    assert_eq!(calls[0]["events"][0]["cap"], "http");
}

/// A plugin's `describe` runs at every start. The hostile plugin's tries to log, to reach an
/// http host and to read a secret, all of which its policy grants to its calls: each attempt is
/// denied, and the attempts are in the audit log.
#[test]
fn describe_runs_with_no_grants_and_its_attempts_are_audited() {
    let home = Home::new();
    home.policy(
        "[secrets]\ndescribe-canary = \"env:HOSTILE_DESCRIBE_CANARY\"\n\n\
         [plugin.hostile.log]\n\n[plugin.hostile.http]\nhosts = [\"*\"]\n\n\
         [plugin.hostile.secrets]\nnames = [\"describe-canary\"]\n",
    )
    .install_plugin("hostile", &test_plugin("hostile"), HOSTILE_MANIFEST);
    let out = home
        .command()
        .env("INFRA_ALLOW_SECRET_EXPORT", "1")
        .env("HOSTILE_DESCRIBE_CANARY", "describe-canary-value")
        .arg("plugins")
        .output()
        .expect("run infra plugins");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{}\n{stderr}", text(&out.stdout));
    let listed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(
        listed.to_string().contains("\"hostile\""),
        "the plugin still loads: {listed:#}"
    );
    assert!(
        !stderr.contains("describe used the log capability")
            && !stderr.contains("describe read a secret"),
        "describe must not log nor read a secret: {stderr}"
    );
    let records = audit_records(home.path());
    let described: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "describe" && r["plugin"] == "hostile")
        .collect();
    assert_eq!(
        described.len(),
        1,
        "one record of what describe tried: {records:#?}"
    );
    let events = described[0]["events"].as_array().expect("events");
    for cap in ["log", "http", "secrets"] {
        let ev = events
            .iter()
            .find(|e| e["cap"] == cap)
            .unwrap_or_else(|| panic!("no {cap} event in {events:#?}"));
        assert_eq!(ev["decision"], "deny", "{cap} is denied: {ev}");
    }
    assert_eq!(described[0]["outcome"], "denied");
    assert!(
        !String::from_utf8_lossy(&home.all_bytes()).contains("describe-canary-value"),
        "the secret is nowhere in the state directory"
    );
    let (ok, report) = verify_dir(&home, home.path());
    assert!(ok, "{report}");
}

/// A loopback HTTP server that holds requests to `/held` until released: `arrived` fires
/// when one comes in, `release` lets every held request have its answer. Any other path answers
/// at once with a `Link` to `/held` (a first page whose next page hangs).
struct HeldServer {
    base: String,
    arrived: tokio::sync::mpsc::UnboundedReceiver<()>,
    release: Arc<tokio::sync::Notify>,
}

impl HeldServer {
    async fn start() -> HeldServer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, arrived) = tokio::sync::mpsc::unbounded_channel();
        let release = Arc::new(tokio::sync::Notify::new());
        let link = format!("<{base}/held>; rel=\"next\"");
        let gate = release.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (tx, link, gate) = (tx.clone(), link.clone(), gate.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let held = String::from_utf8_lossy(&head).starts_with("GET /held");
                    if held {
                        let released = gate.notified();
                        let _ = tx.send(());
                        released.await;
                    }
                    let body = "[1,2]";
                    let link = if held {
                        String::new()
                    } else {
                        format!("link: {link}\r\n")
                    };
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{link}\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                });
            }
        });
        HeldServer {
            base,
            arrived,
            release,
        }
    }
}

/// A call the client cancels after it used a capability: its end record says so and keeps
/// the capability events that already happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_keeps_its_capability_events() {
    use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest};
    let mut held = HeldServer::start().await;
    let home = Home::new();
    home.policy("[plugin.http.http]\nhosts = [\"*\"]\n");
    let server = home.mcp().await;
    let args = json!({"action": "paginate", "url": format!("{}/page1", held.base),
                      "trace_id": "cancel-me", "timeout_ms": 120000});
    let params = CallToolRequestParams::new("http")
        .with_arguments(args.as_object().expect("object").clone());
    let handle = server
        .client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(CallToolRequest::new(params)),
            rmcp::service::PeerRequestOptions::no_options(),
        )
        .await
        .expect("send the call");
    held.arrived
        .recv()
        .await
        .expect("the second page is asked for");
    handle
        .cancel(Some("the test cancels".into()))
        .await
        .expect("cancel");
    // The record that says how the call ended (whatever its kind) names the cancellation.
    let says_cancelled = |r: &&Value| {
        r["trace_id"] == "cancel-me" && r["error"].as_str().is_some_and(|e| e.contains("cancelled"))
    };
    wait_for("the record of the cancelled call's end", || {
        audit_records(home.path())
            .iter()
            .any(|r| says_cancelled(&r))
    })
    .await;
    let records = audit_records(home.path());
    let end = records
        .iter()
        .find(says_cancelled)
        .expect("found above")
        .clone();
    let events = end["events"].as_array().expect("events");
    let page1 = held.base.trim_start_matches("http://");
    assert!(
        events
            .iter()
            .any(|e| e["cap"] == "http" && e["decision"] == "allow" && e["target"] == page1),
        "the first page's request is in the end record: {end:#}"
    );
    assert_eq!(end["kind"], "end", "{end:#}");
    let (is_error, report) = server.call("audit", json!({"action": "verify"})).await;
    assert!(!is_error && report["valid"] == true, "{report:#}");
    // The cancelled call ended (with its events); the verify call itself, still under way, is
    // not reported as cut short either.
    let unended = report["detail"]["unended"].as_array().expect("unended");
    assert!(unended.is_empty(), "{report:#}");
    server.close().await;
}

/// A raw MCP session over stdio, so that the test holds the server's process.
struct RawServer {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
}

impl RawServer {
    fn start(home: &Home) -> RawServer {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;
        let mut child = home
            .command()
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn infra serve");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut server = RawServer {
            child,
            stdin,
            lines,
        };
        server.send(
            &json!({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}}),
        );
        let answer = server.next().expect("an answer to initialize");
        assert!(answer["result"].is_object(), "{answer}");
        server.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        server
    }

    fn send(&mut self, message: &Value) {
        use std::io::Write;
        writeln!(self.stdin, "{message}").expect("write to infra serve");
    }

    /// The next message, or `None` once the server's stdout is closed.
    fn next(&self) -> Option<Value> {
        let line = self
            .lines
            .recv_timeout(std::time::Duration::from_secs(120))
            .ok()?;
        Some(serde_json::from_str(&line).expect("JSON-RPC line"))
    }
}

/// infra killed with SIGKILL in the middle of a burst of calls: the log verifies (a torn last
/// line is named, not called tampering), every call whose answer the client got is in it with
/// its end, and the calls cut off are named by trace id as begun and never ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_leaves_a_log_that_verifies_and_names_the_cut_calls() {
    let fixture = FixtureServer::start().await.expect("fixture server");
    let home = Home::new();
    home.policy("[plugin.http.http]\nhosts = [\"*\"]\n");
    let mut server = RawServer::start(&home);
    let url = format!("{}/hello", fixture.base_url());
    const CALLS: usize = 60;
    for i in 0..CALLS {
        server.send(
            &json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {
            "name": "http", "arguments": {"action": "request", "url": url,
                                          "trace_id": format!("burst-{i}")}}}),
        );
    }
    let mut answered = Vec::new();
    while answered.len() < 8 {
        let msg = server.next().expect("answers before the kill");
        if let Some(id) = msg["id"].as_u64() {
            answered.push(id);
        }
    }
    server.child.kill().expect("SIGKILL infra serve");
    server.child.wait().expect("reap");
    // Answers already in the pipe were received too.
    while let Some(msg) = server.next() {
        if let Some(id) = msg["id"].as_u64() {
            answered.push(id);
        }
    }
    assert!(
        answered.len() < CALLS,
        "the kill came before the burst ended"
    );

    let (ok, report) = verify_dir(&home, home.path());
    eprintln!("after SIGKILL, {} answers: {report}", answered.len());
    assert!(ok, "a killed server leaves a log that verifies: {report}");
    let records = audit_records(home.path());
    for id in &answered {
        let trace = format!("burst-{id}");
        assert_eq!(
            (
                records_of(&records, "begin", &trace).len(),
                records_of(&records, "end", &trace).len()
            ),
            (1, 1),
            "the answered call {trace} is in the log with its end: {report}"
        );
    }
    let ended: Vec<&Value> = records.iter().filter(|r| r["kind"] == "end").collect();
    let unended: Vec<&str> = records
        .iter()
        .filter(|r| r["kind"] == "begin")
        .filter(|b| !ended.iter().any(|e| e["call_id"] == b["call_id"]))
        .map(|b| b["trace_id"].as_str().expect("trace id"))
        .collect();
    if let Some(first) = unended.first() {
        assert!(
            report.contains(&format!("{} call", unended.len()))
                && report.contains("began and never ended")
                && report.contains(first),
            "the cut calls are named ({unended:?}): {report}"
        );
    }
    assert!(
        !report.contains("altered") && !report.contains("deleted"),
        "{report}"
    );
    // The next start continues the chain.
    let (is_error, out, stderr) = home.call("plugins", &json!({"action": "list"}));
    assert!(!is_error, "{out:#}\n{stderr}");
    let (ok, report) = verify_dir(&home, home.path());
    assert!(ok && !report.contains("torn"), "{report}");
}

/// Two servers appending to one log at once: one intact chain with every call's two records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_appending_to_one_log_keep_one_chain() {
    let home = Home::new();
    let (a, b) = (home.mcp().await, home.mcp().await);
    const EACH: usize = 20;
    let mut tasks = tokio::task::JoinSet::new();
    for (server, tag) in [(&a, "a"), (&b, "b")] {
        for i in 0..EACH {
            let peer = server.client.peer().clone();
            let args = json!({"action": "list", "trace_id": format!("{tag}-{i}")});
            tasks.spawn(async move { infra_tests::call_tool(&peer, "plugins", args).await });
        }
    }
    while let Some(result) = tasks.join_next().await {
        let result = result.expect("call task");
        assert_ne!(result.is_error, Some(true), "{result:?}");
    }
    a.close().await;
    b.close().await;
    let (ok, report) = verify_dir(&home, home.path());
    assert!(ok && !report.contains("never ended"), "{report}");
    let records = audit_records(home.path());
    for tag in ["a", "b"] {
        for i in 0..EACH {
            let trace = format!("{tag}-{i}");
            assert_eq!(
                (
                    records_of(&records, "begin", &trace).len(),
                    records_of(&records, "end", &trace).len()
                ),
                (1, 1),
                "{trace}: {report}"
            );
        }
    }
}

/// A tmpfs of 1 MiB mounted for the test, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` when this user may not mount (the test says so and checks nothing).
    fn mount() -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status();
        match status {
            Ok(s) if s.success() => Some(SmallDisk { dir }),
            _ => None,
        }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Writes a filler file until the disk is full, to the last byte.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path().join("filler")).expect("filler");
        for chunk in [64 * 1024, 1] {
            let bytes = vec![0u8; chunk];
            while f.write_all(&bytes).and_then(|()| f.flush()).is_ok() {}
        }
    }

    fn free(&self) {
        std::fs::remove_file(self.path().join("filler")).expect("remove filler");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The state directory on a full disk: a call is refused before it does anything, saying the
/// disk is full and where; a call whose end cannot be written is not reported as a success;
/// the log is not corrupted and verifies once space is freed, naming the call left unended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_calls_before_they_act_and_never_reports_an_unrecorded_success() {
    let Some(disk) = SmallDisk::mount() else {
        eprintln!(
            "SKIPPED: mounting a tmpfs needs root (mount -t tmpfs); run the suite as root to check a full disk"
        );
        return;
    };
    let state = disk.path().to_path_buf();
    let fixture = FixtureServer::start().await.expect("fixture server");
    let home = Home::new();
    std::fs::write(
        state.join("policy.toml"),
        "[plugin.http.http]\nhosts = [\"*\"]\n",
    )
    .expect("policy");
    let in_state = |c: &mut std::process::Command| {
        c.env("INFRA_HOME", &state);
    };
    let hello = |trace: &str| json!({"action": "request", "url": format!("{}/hello", fixture.base_url()), "trace_id": trace});
    let (is_error, out, stderr) = home.call_with("http", &hello("warm"), in_state);
    assert!(!is_error, "{out:#}\n{stderr}");

    // A call begun while there is space, ending after the disk filled up. Its trace id is
    // long, so that its end record is larger than any begin refused below.
    let long_trace = format!("ends-on-a-full-disk-{}", "x".repeat(400));
    let mut held = HeldServer::start().await;
    let server = home
        .mcp_with(|c| {
            c.env("INFRA_HOME", &state);
        })
        .await;
    let held_call = {
        let peer = server.client.peer().clone();
        let args = json!({"action": "request", "url": format!("{}/held", held.base),
                          "trace_id": long_trace});
        tokio::spawn(async move { infra_tests::call_tool(&peer, "http", args).await })
    };
    held.arrived.recv().await.expect("the held request arrives");
    disk.fill();

    // The log's last page may still have room for a record or two: calls go on until one is
    // refused. That one did nothing.
    let log = state.join("audit.jsonl").display().to_string();
    let mut refused = None;
    for i in 0..50 {
        let trace = format!("p{i}");
        let before = fixture.seen().len();
        let (is_error, out, _) = home.call_with("http", &hello(&trace), in_state);
        match out["error"]["detail"]["audit"].as_str() {
            Some("begin-not-written") => {
                assert!(is_error);
                assert_eq!(
                    fixture.seen().len(),
                    before,
                    "the refused call sent nothing"
                );
                refused = Some((trace, out));
                break;
            }
            Some("end-not-written") => assert!(is_error, "{out:#}"),
            _ => assert!(!is_error, "{out:#}"),
        }
    }
    let (refused, out) = refused.expect("a call on a full disk is refused");
    let message = infra_tests::text(&out, "/error/message");
    assert!(
        message.contains("not run") && message.contains("full") && message.contains(&log),
        "the refusal says why and where: {message}"
    );
    assert_eq!(out["error"]["detail"]["cause"], "disk-full", "{out:#}");
    let (ok, report) = verify_dir(&home, &state);
    assert!(ok, "a full disk does not corrupt the log: {report}");

    // The held call now ends: its end record cannot be written, so it is no success.
    held.release.notify_waiters();
    let result = held_call.await.expect("the held call answers");
    let out = result.structured_content.clone().expect("structured");
    assert_eq!(
        result.is_error,
        Some(true),
        "an unrecorded end is not a success: {out:#}"
    );
    assert_eq!(
        out["error"]["detail"]["audit"], "end-not-written",
        "{out:#}"
    );
    let message = infra_tests::text(&out, "/error/message");
    assert!(
        message.contains("the call ran") && message.contains("full"),
        "it says the effect happened and why it is not recorded: {message}"
    );
    server.close().await;

    disk.free();
    let (ok, report) = verify_dir(&home, &state);
    assert!(ok, "the log verifies after space is freed: {report}");
    assert!(
        report.contains(&long_trace) && report.contains("began and never ended"),
        "verify names the call whose end was lost: {report}"
    );
    let (is_error, out, stderr) = home.call_with("http", &hello("after"), in_state);
    assert!(!is_error, "calls work again: {out:#}\n{stderr}");
    let records = audit_records(&state);
    assert!(records_of(&records, "begin", &refused).is_empty());
    assert_eq!(records_of(&records, "end", "after").len(), 1);
}
