//! Guardrails for writes, through MCP: the `guardprobe` test plugin asks `guard.approve` for
//! whatever intent the test gives it (as a hostile plugin or a prompt-injected agent would) and
//! every refusal comes from the host — no `apply: true`, outside the change windows, a namespace
//! not granted, a lock held by another infra process, a protected target the user did not
//! approve or whose client cannot ask. Each outcome is checked in the answer, in the lock
//! directory and in the audit record.

use std::path::PathBuf;

use infra_tests::elicit::{self, Reply};
use infra_tests::kube::KubeApi;
use infra_tests::{Home, audit_records, test_plugin, text, wait_for};
use serde_json::{Value, json};

const MANIFEST: &str = include_str!("../plugins/guardprobe/plugin.toml");
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Today's weekday in UTC, Monday = 0 (1970-01-01 was a Thursday).
fn today() -> usize {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    ((secs / 86_400 + 3) % 7) as usize
}

/// A state directory with `guardprobe` installed and granted: `guard` with `windows` (TOML
/// list text), kubernetes `write_namespaces`, every http profile; `profiles` as profiles.json.
fn setup(windows: &str, namespaces: &str, profiles: Value) -> Home {
    let home = Home::new();
    home.policy(&format!(
        r#"
[plugin.guardprobe.guard]
windows = {windows}
lock_ttl_secs = 600
[plugin.guardprobe.kubernetes]
write_namespaces = {namespaces}
[plugin.guardprobe.http]
profiles = ["*"]
"#
    ))
    .profiles(&profiles)
    .install_plugin("guardprobe", &test_plugin("guardprobe"), MANIFEST);
    home
}

/// An always-open guard, namespaces `apps-*`, and one unprotected profile `lab`.
fn plain() -> Home {
    setup("[]", r#"["apps-*"]"#, json!({"lab": lab()}))
}

fn lab() -> Value {
    json!({"type": "http", "base_url": "http://127.0.0.1:9"})
}

/// A kubernetes intent for `target` touching `namespaces`.
fn intent(target: &str, namespaces: &[&str]) -> Value {
    json!({"kind": "kubernetes", "target": target, "namespaces": namespaces,
           "plan": format!("~ Deployment {}/web: replicas 2 -> 3", namespaces.first().unwrap_or(&""))})
}

fn message(out: &Value) -> String {
    text(out, "/error/message").to_string()
}

/// The `guard` events of every audited call, in order.
fn guard_events(home: &Home) -> Vec<Value> {
    audit_records(home.path())
        .into_iter()
        .flat_map(|r| r["events"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["cap"] == "guard")
        .collect()
}

fn lock_file(home: &Home, target: &str) -> PathBuf {
    home.path()
        .join("locks")
        .join(format!("kubernetes@{target}.lock"))
}

#[tokio::test]
async fn a_write_without_apply_true_is_refused_with_the_plan_advice() {
    let home = plain();
    let mcp = home.mcp().await;
    let (err, out) = mcp
        .call(
            "guardprobe",
            json!({"intents": [intent("lab", &["apps-a"])]}),
        )
        .await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "denied", "{out}");
    let m = message(&out);
    assert!(
        m.contains("\"apply\": true")
            && m.contains("answers with the plan")
            && m.contains("after the user has reviewed it"),
        "{m}"
    );
    // A plugin cannot fake it: `apply` is read from the call's arguments by the host.
    let (err, out) = mcp
        .call(
            "guardprobe",
            json!({"apply": false, "intents": [intent("lab", &["apps-a"])]}),
        )
        .await;
    assert!(err && message(&out).contains("apply"), "{out}");
    assert!(
        !lock_file(&home, "lab").exists(),
        "no lock is taken before the checks pass"
    );
    let events = guard_events(&home);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| e["decision"] == "deny" && e["target"] == "kubernetes:lab")
    );

    // With apply: true the same intent is approved by the policy, and the lock is released
    // when the call ends.
    let (err, out) = mcp
        .call(
            "guardprobe",
            json!({"apply": true, "intents": [intent("lab", &["apps-a"])]}),
        )
        .await;
    assert!(!err, "{out}");
    assert_eq!(out["approvals"][0]["approved_by"], "policy", "{out}");
    assert_eq!(out["approvals"][0]["lock"], "kubernetes@lab.lock", "{out}");
    assert!(
        !lock_file(&home, "lab").exists(),
        "released at the end of the call"
    );
    let details: Vec<String> = guard_events(&home)[2..]
        .iter()
        .map(|e| e["detail"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        details[0].contains("lock kubernetes@lab.lock taken"),
        "{details:?}"
    );
    assert!(details[1].contains("approved by policy"), "{details:?}");
    assert!(details[2].contains("released"), "{details:?}");
}

#[tokio::test]
async fn outside_the_change_windows_is_refused_naming_the_next_opening() {
    // A window three days from today never contains now.
    let later = DAYS[(today() + 3) % 7];
    let home = setup(
        &format!(r#"["{later} 00:00-24:00 UTC"]"#),
        r#"["apps-*"]"#,
        json!({"lab": lab()}),
    );
    let mcp = home.mcp().await;
    let (err, out) = mcp
        .call(
            "guardprobe",
            json!({"apply": true, "intents": [intent("lab", &["apps-a"])]}),
        )
        .await;
    assert!(err, "{out}");
    let m = message(&out);
    assert!(m.contains("outside the change windows"), "{m}");
    assert!(m.contains(&format!("the next opens {later} ")), "{m}");
    assert!(m.contains("[plugin.guardprobe.guard]"), "{m}");
    assert!(guard_events(&home).iter().any(|e| {
        e["decision"] == "deny"
            && e["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("outside the change windows")
    }));

    // Today's whole day is open.
    let now = DAYS[today()];
    let home = setup(
        &format!(r#"["{now} 00:00-24:00 UTC"]"#),
        r#"["apps-*"]"#,
        json!({"lab": lab()}),
    );
    let (err, out) = home
        .mcp()
        .await
        .call(
            "guardprobe",
            json!({"apply": true, "intents": [intent("lab", &["apps-a"])]}),
        )
        .await;
    assert!(!err, "{out}");
}

#[tokio::test]
async fn a_malformed_window_stops_the_server_at_start_naming_the_line() {
    let home = setup(
        r#"["weekdays 9-5"]"#,
        r#"["apps-*"]"#,
        json!({"lab": lab()}),
    );
    let out = home.command().arg("plugins").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("windows")
            && stderr.contains("'weekdays 9-5'")
            && stderr.contains("line 3")
            && stderr.contains("Mon-Fri 09:00-17:00 UTC"),
        "{stderr}"
    );
}

#[tokio::test]
async fn namespaces_outside_write_namespaces_are_refused() {
    let home = plain();
    let mcp = home.mcp().await;
    for (ns, needle) in [
        (vec!["apps-a", "kube-system"], "namespace 'kube-system'"),
        (vec![""], "cluster-scoped"),
    ] {
        let (err, out) = mcp
            .call(
                "guardprobe",
                json!({"apply": true, "intents": [intent("lab", &ns)]}),
            )
            .await;
        assert!(err, "{out}");
        let m = message(&out);
        assert!(
            m.contains(needle) && m.contains("[plugin.guardprobe.kubernetes] write_namespaces"),
            "{m}"
        );
    }
    // A profile the plugin is not granted is no target either.
    let home = setup("[]", r#"["*"]"#, json!({"lab": lab()}));
    home.policy(
        &std::fs::read_to_string(home.path().join("policy.toml"))
            .unwrap()
            .replace(r#"profiles = ["*"]"#, r#"profiles = ["lab"]"#),
    );
    let mcp = home.mcp().await;
    let (err, out) = mcp
        .call(
            "guardprobe",
            json!({"apply": true, "intents": [intent("prod", &["apps-a"])]}),
        )
        .await;
    assert!(
        err && message(&out).contains("http profile 'prod'"),
        "{out}"
    );
    // "*" grants cluster-scoped writes too.
    let (err, out) = mcp
        .call(
            "guardprobe",
            json!({"apply": true, "intents": [intent("lab", &["", "kube-system"])]}),
        )
        .await;
    assert!(!err, "{out}");
}

#[tokio::test]
async fn a_malformed_intent_is_invalid_naming_the_field() {
    let home = plain();
    let mcp = home.mcp().await;
    for (i, field) in [
        (
            json!({"kind": "kubernetes", "target": "lab", "namespaces": []}),
            "namespaces",
        ),
        (
            json!({"kind": "kubernetes", "target": "lab", "namespaces": ["Apps_A"]}),
            "namespaces",
        ),
        (json!({"kind": "Kube rnetes", "target": "lab"}), "kind"),
        (json!({"kind": "git", "target": ""}), "target"),
        (
            json!({"kind": "git", "target": "origin", "namespaces": ["a"]}),
            "namespaces",
        ),
    ] {
        let (err, out) = mcp
            .call("guardprobe", json!({"apply": true, "intents": [i]}))
            .await;
        assert!(err, "{out}");
        assert_eq!(out["error"]["kind"], "invalid", "{out}");
        assert!(message(&out).starts_with(&format!("{field}:")), "{out}");
    }
}

#[tokio::test]
async fn a_lock_held_by_another_infra_process_refuses_naming_the_holder() {
    let home = plain();
    // Two servers on one state directory, as an editor and a terminal would start them.
    let holder = home.mcp().await;
    let other = home.mcp().await;
    let lock = lock_file(&home, "lab");
    let hold = holder.call(
        "guardprobe",
        json!({"apply": true, "trace_id": "t-holder", "hold_ms": 8000,
               "intents": [intent("lab", &["apps-a"])]}),
    );
    let contend = async {
        wait_for("the holder's lock", || lock.exists()).await;
        other
            .call(
                "guardprobe",
                json!({"apply": true, "intents": [intent("lab", &["apps-b"])]}),
            )
            .await
    };
    let ((held_err, held), (err, out)) = tokio::join!(hold, contend);
    assert!(!held_err, "{held}");
    assert!(err, "{out}");
    let m = message(&out);
    assert!(
        m.contains("is locked by plugin 'guardprobe'")
            && m.contains("trace t-holder")
            && m.contains("until"),
        "{m}"
    );
    assert!(
        !lock.exists(),
        "the holder released it at the end of its call"
    );
    // Free again: the second process gets it now.
    let (err, out) = other
        .call(
            "guardprobe",
            json!({"apply": true, "intents": [intent("lab", &["apps-b"])]}),
        )
        .await;
    assert!(!err, "{out}");
    assert!(guard_events(&home).iter().any(|e| {
        e["decision"] == "deny"
            && e["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("t-holder")
    }));
}

#[tokio::test]
async fn a_stale_lock_is_taken_over_and_the_audit_names_its_holder() {
    let home = plain();
    std::fs::create_dir_all(home.path().join("locks")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let write = |id: &str, pid: u32, expires: u64| {
        let holder = json!({"id": id, "kind": "kubernetes", "target": "lab", "trace_id": format!("t-{id}"),
            "plugin": "k8s", "tool": "k8s", "pid": pid, "host": host_name(), "started": now - 100,
            "expires": expires});
        std::fs::write(lock_file(&home, "lab"), holder.to_string()).unwrap();
    };
    let mcp = home.mcp().await;
    // A live holder (this test process) whose lock has not expired: refused.
    write("live", std::process::id(), now + 600);
    let (err, out) = mcp
        .call(
            "guardprobe",
            json!({"apply": true, "intents": [intent("lab", &["apps-a"])]}),
        )
        .await;
    assert!(err && message(&out).contains("trace t-live"), "{out}");
    // Its process gone (no pid this high exists): taken over.
    write("dead", 999_999_999, now + 600);
    let (err, out) = mcp
        .call(
            "guardprobe",
            json!({"apply": true, "intents": [intent("lab", &["apps-a"])]}),
        )
        .await;
    assert!(!err, "{out}");
    // Expired, though its process lives: taken over.
    write("expired", std::process::id(), now - 1);
    let (err, out) = mcp
        .call(
            "guardprobe",
            json!({"apply": true, "intents": [intent("lab", &["apps-a"])]}),
        )
        .await;
    assert!(!err, "{out}");
    let details: Vec<String> = guard_events(&home)
        .iter()
        .filter_map(|e| e["detail"].as_str().map(str::to_string))
        .filter(|d| d.contains("taken over"))
        .collect();
    assert_eq!(details.len(), 2, "{details:?}");
    assert!(
        details[0].contains("trace t-dead") && details[0].contains("process 999999999 is gone"),
        "{details:?}"
    );
    assert!(
        details[1].contains("trace t-expired") && details[1].contains("expired"),
        "{details:?}"
    );
    assert!(!lock_file(&home, "lab").exists());
}

/// This machine's name, as the host records it in lock files.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A state directory whose profile `prod` is protected.
fn protected() -> Home {
    let mut prod = lab();
    prod["protected"] = json!(true);
    setup("[]", r#"["apps-*"]"#, json!({"lab": lab(), "prod": prod}))
}

#[tokio::test]
async fn a_protected_target_is_approved_by_the_user_typing_its_name() {
    let home = protected();
    let (mcp, asked) = elicit::connect(&home, Some(Reply::Accept("prod".into()))).await;
    let (err, out) = mcp
        .call(
            "guardprobe",
            json!({"apply": true, "intents": [intent("prod", &["apps-a"])]}),
        )
        .await;
    assert!(!err, "{out}");
    assert_eq!(out["approvals"][0]["approved_by"], "user", "{out}");
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    let q = &asked[0];
    for part in [
        "kind: kubernetes",
        "target: prod",
        "namespaces: apps-a",
        "replicas 2 -> 3",
        "type the target's name (prod)",
    ] {
        assert!(q.message.contains(part), "{part}: {}", q.message);
    }
    assert_eq!(q.schema["required"], json!(["confirm"]), "{}", q.schema);
    assert_eq!(
        q.schema["properties"]["confirm"]["type"], "string",
        "{}",
        q.schema
    );
    // An unprotected target is not asked about.
    let (err, out) = mcp
        .call(
            "guardprobe",
            json!({"apply": true, "intents": [intent("lab", &["apps-a"])]}),
        )
        .await;
    assert!(
        !err && out["approvals"][0]["approved_by"] == "policy",
        "{out}"
    );
    assert!(guard_events(&home).iter().any(|e| {
        e["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("approved by user")
    }));
}

#[tokio::test]
async fn a_protected_target_is_refused_unless_the_user_approves() {
    let home = protected();
    for (reply, needle) in [
        (Some(Reply::Decline), "declined"),
        (Some(Reply::Cancel), "dismissed"),
        (
            Some(Reply::Accept("yes".into())),
            "not the target's name 'prod'",
        ),
        (None, "cannot ask you for approval"),
    ] {
        let (mcp, asked) = elicit::connect(&home, reply.clone()).await;
        let (err, out) = mcp
            .call(
                "guardprobe",
                json!({"apply": true, "intents": [intent("prod", &["apps-a"])]}),
            )
            .await;
        assert!(err, "{reply:?}: {out}");
        assert_eq!(out["error"]["kind"], "denied", "{out}");
        let m = message(&out);
        assert!(m.contains(needle), "{reply:?}: {m}");
        assert_eq!(
            asked.lock().unwrap().len(),
            usize::from(reply.is_some()),
            "{reply:?}"
        );
        assert!(
            !lock_file(&home, "prod").exists(),
            "{reply:?}: the lock is released"
        );
        assert!(guard_events(&home).iter().any(|e| e["decision"] == "deny"
            && e["reason"].as_str().unwrap_or_default().contains(needle)));
    }
    // `infra call` cannot ask anyone either.
    let (err, out, _) = home.call(
        "guardprobe",
        &json!({"apply": true, "intents": [intent("prod", &["apps-a"])]}),
    );
    assert!(
        err && message(&out).contains("cannot ask you for approval"),
        "{out}"
    );
}

/// A ConfigMap `name` in namespace `ns`, as a POST body.
fn config_map(ns: &str, name: &str) -> String {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
           "data": {"k": "v"}})
    .to_string()
}

fn post(profile: &str, url: &str, body: String) -> Value {
    json!({"method": "POST", "url": url, "profile": profile, "body": body})
}

#[tokio::test]
async fn a_kubernetes_write_without_this_calls_approval_never_reaches_the_cluster() {
    let api = KubeApi::start().await.expect("stand-in API");
    for ns in ["apps-a", "apps-b", "kube-system"] {
        api.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), api.ca_pem()).unwrap();
    std::fs::write(dir.path().join("token"), api.token()).unwrap();
    let cluster = |protected: bool| {
        json!({"type": "kubernetes", "server": api.url(), "protected": protected,
               "ca": format!("file:{}", dir.path().join("ca.pem").display()),
               "token": format!("file:{}", dir.path().join("token").display())})
    };
    let home = setup(
        "[]",
        r#"["apps-*"]"#,
        json!({"lab": cluster(false), "lab2": cluster(false)}),
    );
    let mcp = home.mcp().await;
    let writes = |api: &KubeApi| {
        api.requests()
            .into_iter()
            .filter(|(m, q)| m != "GET" && !q.contains("dryRun=All"))
            .count()
    };
    let cm = "/api/v1/namespaces/apps-a/configmaps";
    // A hostile plugin skips the guard: refused before anything is sent.
    let (err, out) = mcp
        .call(
            "guardprobe",
            json!({"apply": true, "send": [post("lab", cm, config_map("apps-a", "x"))]}),
        )
        .await;
    assert!(!err, "{out}");
    let refused = out["sent"][0]["refused"].as_str().unwrap_or_default();
    assert!(
        refused.contains("holds no approval to write to namespace 'apps-a'"),
        "{out}"
    );
    // A dry run needs no approval and reaches the cluster.
    let (err, out) = mcp
        .call(
            "guardprobe",
            json!({"send": [post("lab", &format!("{cm}?dryRun=All"), config_map("apps-a", "x"))]}),
        )
        .await;
    assert!(!err && out["sent"][0]["status"] == 201, "{out}");
    assert_eq!(writes(&api), 0, "{:?}", api.requests());

    // Approved for apps-a on lab: that write goes through; another namespace, a cluster-scoped
    // object, another profile, a DELETE elsewhere do not.
    let (err, out) = mcp
        .call(
            "guardprobe",
            json!({"apply": true, "intents": [intent("lab", &["apps-a"])], "send": [
                post("lab", cm, config_map("apps-a", "x")),
                post("lab", "/api/v1/namespaces/apps-b/configmaps", config_map("apps-b", "y")),
                post("lab", "/api/v1/namespaces", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "evil"}}).to_string()),
                post("lab2", cm, config_map("apps-a", "z")),
                {"method": "DELETE", "url": "/api/v1/namespaces/kube-system/configmaps/x", "profile": "lab"},
                {"method": "delete", "url": "/api/v1/namespaces/apps-a/../kube-system/configmaps/x", "profile": "lab"},
            ]}),
        )
        .await;
    assert!(!err, "{out}");
    assert_eq!(out["sent"][0]["status"], 201, "{out}");
    for (i, needle) in [
        (1, "namespace 'apps-b'"),
        (2, "cluster-scoped objects"),
        (3, "kubernetes profile 'lab2'"),
        (4, "namespace 'kube-system'"),
        (5, "namespace 'kube-system'"),
    ] {
        let refused = out["sent"][i]["refused"].as_str().unwrap_or_default();
        assert!(refused.contains(needle), "{i}: {out}");
    }
    assert_eq!(
        writes(&api),
        1,
        "only the approved write reached the cluster: {:?}",
        api.requests()
    );
    assert!(api.get("v1", "ConfigMap", Some("apps-a"), "x").is_some());
    assert!(api.get("v1", "ConfigMap", Some("apps-b"), "y").is_none());
    // The approval ended with its call.
    let (_, out) = mcp
        .call(
            "guardprobe",
            json!({"apply": true, "send": [post("lab", cm, config_map("apps-a", "w"))]}),
        )
        .await;
    assert!(
        out["sent"][0]["refused"]
            .as_str()
            .unwrap_or_default()
            .contains("holds no approval"),
        "{out}"
    );
    assert!(
        guard_events(&home)
            .iter()
            .filter(|e| e["decision"] == "deny")
            .count()
            >= 6
    );
}
