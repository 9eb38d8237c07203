//! The gitops plugin (cluster half) through the real binary over MCP, against the stand-in
//! Kubernetes API and the stand-in Argo CD (`infra_tests::kube`, `infra_tests::argo`): diffs
//! by server-side dry run, applies only with `apply: true` and the host guard's approval (each
//! refusal tried), prune by selector, rollout status moved by the test, Argo CD status, sync
//! and rollback, a Flux reconcile, verify's verdict, and hostile manifests.

use infra_tests::argo::ArgoApi;
use infra_tests::kube::KubeApi;
use infra_tests::{Home, Mcp, audit_records};
use serde_json::{Value, json};

/// A stand-in cluster and Argo CD, and a state directory whose profiles point at them
/// (`lab`: kubernetes through a kubeconfig; `argocd`: http with the bearer token).
struct Setup {
    api: KubeApi,
    argo: ArgoApi,
    home: Home,
    _dir: tempfile::TempDir,
}

/// The gitops grants of a test: http profiles and loopback hosts (Argo CD, HTTP checks), the
/// guard with `windows`, `write_namespaces` (TOML lists), artifacts, log.
fn policy(windows: &str, namespaces: &str) -> String {
    format!(
        r#"
[plugin.gitops.http]
profiles = ["*"]
hosts = ["127.0.0.1:*"]
[plugin.gitops.guard]
windows = {windows}
lock_ttl_secs = 600
[plugin.gitops.kubernetes]
write_namespaces = {namespaces}
[plugin.gitops.artifacts]
[plugin.gitops.log]
"#
    )
}

async fn setup_with(windows: &str, namespaces: &str, protected: bool) -> Setup {
    let api = KubeApi::start().await.expect("stand-in Kubernetes API");
    let argo = ArgoApi::start().await.expect("stand-in Argo CD");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    api.write_kubeconfig(&kubeconfig).unwrap();
    let token = dir.path().join("argo-token");
    std::fs::write(&token, argo.token()).unwrap();
    let home = Home::new();
    home.policy(&policy(windows, namespaces)).profiles(&json!({
        "lab": {"type": "kubernetes", "kubeconfig": format!("file:{}", kubeconfig.display()),
                "context": "standin", "protected": protected},
        "argocd": {"type": "http", "base_url": argo.url(),
                   "auth": {"type": "bearer", "token": format!("file:{}", token.display())}}
    }));
    Setup {
        api,
        argo,
        home,
        _dir: dir,
    }
}

/// Writes allowed in `apps-*` at any time; `lab` unprotected.
async fn setup() -> Setup {
    setup_with("[]", r#"["apps-*"]"#, false).await
}

async fn call(mcp: &Mcp, args: Value) -> (bool, Value) {
    mcp.call("gitops", args).await
}

async fn ok(mcp: &Mcp, args: Value) -> Value {
    let (err, out) = call(mcp, args.clone()).await;
    assert!(!err, "{args} failed: {out}");
    out
}

fn configmap(ns: &str, name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": ns, "labels": {"app.kubernetes.io/part-of": "shop"}},
           "data": data})
}

fn deployment(ns: &str, name: &str, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": name, "namespace": ns, "labels": {"app.kubernetes.io/part-of": "shop"}},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "app", "image": image}]}}}})
}

/// A multi-document YAML stream of `objs` (JSON is YAML).
fn yaml(objs: &[Value]) -> String {
    objs.iter()
        .map(|o| format!("---\n{o}\n"))
        .collect::<String>()
}

/// The writes (anything but GET and dry runs) the stand-in received since `from`.
fn writes_since(api: &KubeApi, from: usize) -> Vec<(String, String)> {
    api.requests()
        .into_iter()
        .skip(from)
        .filter(|(m, p)| m != "GET" && !p.contains("dryRun=All"))
        .collect()
}

/// The shop's manifests: its namespace, a ConfigMap and a Deployment.
fn shop() -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps-shop"}}),
        configmap("apps-shop", "settings", json!({"mode": "blue"})),
        deployment("apps-shop", "web", "shop/web:2"),
    ]
}

fn object<'a>(plan: &'a Value, label: &str) -> &'a Value {
    plan["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == label)
        .unwrap_or_else(|| panic!("no {label} in {plan}"))
}

#[tokio::test]
async fn diff_counts_create_update_unchanged_and_ignores_server_fields() {
    let s = setup().await;
    s.api
        .put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps-shop"}}));
    s.api.put(configmap("apps-shop", "same", json!({"k": "v"})));
    s.api
        .put(configmap("apps-shop", "changed", json!({"k": "old"})));
    let mcp = s.home.mcp().await;
    let before = s.api.requests().len();
    let manifests = yaml(&[
        configmap("apps-shop", "same", json!({"k": "v"})),
        configmap("apps-shop", "changed", json!({"k": "new"})),
        configmap("apps-shop", "fresh", json!({"k": "v"})),
    ]);
    let out = ok(
        &mcp,
        json!({"action": "diff", "profile": "lab", "manifests": manifests}),
    )
    .await;
    let plan = &out["plan"];
    assert_eq!(plan["summary"]["create"], 1, "{out}");
    assert_eq!(plan["summary"]["update"], 1, "{out}");
    assert_eq!(plan["summary"]["unchanged"], 1, "{out}");
    assert_eq!(
        object(plan, "ConfigMap apps-shop/same")["action"],
        "unchanged"
    );
    let d = object(plan, "ConfigMap apps-shop/changed")["diff"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(d.starts_with("--- live\n+++ applied\n@@ "), "{d}");
    assert!(
        d.contains("-  k: old\n") && d.contains("+  k: new\n"),
        "{d}"
    );
    let created = object(plan, "ConfigMap apps-shop/fresh")["diff"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(created.contains("+  name: fresh"), "{created}");
    for field in [
        "managedFields",
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "generation",
    ] {
        assert!(!out.to_string().contains(field), "{field} in {out}");
    }
    // Only dry runs went out: server-side apply with dryRun=All and the field manager infra.
    assert!(
        writes_since(&s.api, before).is_empty(),
        "{:?}",
        s.api.requests()
    );
    assert!(s.api.requests().iter().any(|(m, p)| m == "PATCH"
        && p.contains("fieldManager=infra")
        && p.contains("dryRun=All")));
    assert!(
        s.api
            .get("v1", "ConfigMap", Some("apps-shop"), "fresh")
            .is_none()
    );
    assert_eq!(
        s.api
            .get("v1", "ConfigMap", Some("apps-shop"), "changed")
            .unwrap()["data"]["k"],
        "old"
    );
}

#[tokio::test]
async fn apply_without_apply_true_answers_the_plan_and_writes_nothing() {
    let s = setup().await;
    let mcp = s.home.mcp().await;
    let before = s.api.requests().len();
    let out = ok(
        &mcp,
        json!({"action": "apply", "profile": "lab", "manifests": yaml(&shop())}),
    )
    .await;
    assert_eq!(out["plan"]["summary"]["create"], 3, "{out}");
    assert!(out["results"].is_null(), "{out}");
    assert!(
        out["notes"][0].as_str().unwrap().contains("apply: true"),
        "{out}"
    );
    assert!(writes_since(&s.api, before).is_empty());
    assert!(s.api.get("v1", "Namespace", None, "apps-shop").is_none());
    // `apply: false` is the same.
    let (err, _) = call(
        &mcp,
        json!({"action": "apply", "apply": false, "profile": "lab",
                                     "manifests": yaml(&shop())}),
    )
    .await;
    assert!(!err);
    assert!(writes_since(&s.api, before).is_empty());
}

#[tokio::test]
async fn apply_with_everything_granted_applies_in_order_as_field_manager_infra() {
    let s = setup().await;
    s.api
        .put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps-shop"}}));
    s.api
        .put(configmap("apps-shop", "settings", json!({"mode": "green"})));
    let mcp = s.home.mcp().await;
    let before = s.api.requests().len();
    // The Deployment first and the Namespace last: the plugin reorders.
    let mut objs = shop();
    objs.reverse();
    let out = ok(
        &mcp,
        json!({"action": "apply", "apply": true, "profile": "lab",
                              "manifests": yaml(&objs)}),
    )
    .await;
    let results = out["results"].as_array().unwrap();
    let result = |label: &str| {
        results
            .iter()
            .find(|r| r["object"] == label)
            .unwrap_or_else(|| panic!("{label}: {out}"))["result"]
            .clone()
    };
    assert_eq!(result("Namespace apps-shop"), "unchanged", "{out}");
    assert_eq!(
        result("ConfigMap apps-shop/settings"),
        "configured",
        "{out}"
    );
    assert_eq!(result("Deployment apps-shop/web"), "created", "{out}");
    assert_eq!(out["approval"]["approved_by"], "policy", "{out}");
    let writes = writes_since(&s.api, before);
    assert_eq!(writes.len(), 3, "{writes:?}");
    assert!(
        writes[0].1.starts_with("/api/v1/namespaces/apps-shop?"),
        "{writes:?}"
    );
    assert!(
        writes
            .iter()
            .all(|(m, p)| m == "PATCH" && p.contains("fieldManager=infra"))
    );
    let web = s
        .api
        .get("apps/v1", "Deployment", Some("apps-shop"), "web")
        .expect("created");
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["image"],
        "shop/web:2"
    );
    assert!(
        web["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["manager"] == "infra")
    );
    assert_eq!(
        s.api
            .get("v1", "ConfigMap", Some("apps-shop"), "settings")
            .unwrap()["data"]["mode"],
        "blue"
    );
    // Applied again: nothing changes.
    let out = ok(
        &mcp,
        json!({"action": "diff", "profile": "lab", "manifests": yaml(&shop())}),
    )
    .await;
    assert_eq!(out["plan"]["summary"]["unchanged"], 3, "{out}");
    // The guard's approval and lock are in the audit record.
    let audit = audit_records(s.home.path())
        .into_iter()
        .map(|r| r.to_string())
        .collect::<String>();
    assert!(
        audit.contains("approved by policy") && audit.contains("kubernetes@lab.lock"),
        "{audit}"
    );
}

#[tokio::test]
async fn writes_outside_the_granted_namespaces_are_refused_before_anything_is_written() {
    let s = setup().await;
    let mcp = s.home.mcp().await;
    let before = s.api.requests().len();
    let (err, out) = call(
        &mcp,
        json!({"action": "apply", "apply": true, "profile": "lab",
        "manifests": yaml(&[configmap("kube-system", "evil", json!({}))])}),
    )
    .await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "denied", "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("kube-system"),
        "{out}"
    );
    assert!(writes_since(&s.api, before).is_empty());
    // Hidden in a multi-document stream among granted objects: still refused, nothing applied.
    let mut objs = shop();
    objs.insert(2, configmap("kube-system", "evil", json!({"x": "1"})));
    let (err, out) = call(
        &mcp,
        json!({"action": "apply", "apply": true, "profile": "lab",
        "manifests": yaml(&objs)}),
    )
    .await;
    assert!(err && out["error"]["kind"] == "denied", "{out}");
    assert!(
        writes_since(&s.api, before).is_empty(),
        "{:?}",
        writes_since(&s.api, before)
    );
    assert!(
        s.api
            .get("v1", "ConfigMap", Some("kube-system"), "evil")
            .is_none()
    );
    assert!(s.api.get("v1", "Namespace", None, "apps-shop").is_none());
}

#[tokio::test]
async fn writes_outside_the_change_windows_are_refused() {
    // A window three days from today never contains now.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let day =
        ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][((secs / 86_400 + 3 + 3) % 7) as usize];
    let s = setup_with(
        &format!(r#"["{day} 00:00-24:00 UTC"]"#),
        r#"["apps-*"]"#,
        false,
    )
    .await;
    let mcp = s.home.mcp().await;
    let before = s.api.requests().len();
    let (err, out) = call(
        &mcp,
        json!({"action": "apply", "apply": true, "profile": "lab",
        "manifests": yaml(&shop())}),
    )
    .await;
    assert!(err, "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("outside the change windows"),
        "{out}"
    );
    assert!(writes_since(&s.api, before).is_empty());
}

#[tokio::test]
async fn writes_while_another_process_holds_the_lock_are_refused_naming_it() {
    let s = setup().await;
    let locks = s.home.path().join("locks");
    std::fs::create_dir_all(&locks).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    std::fs::write(
        locks.join("kubernetes@lab.lock"),
        json!({"id": "l-1", "kind": "kubernetes",
        "target": "lab", "trace_id": "t-other-agent", "plugin": "gitops", "tool": "gitops",
        "pid": std::process::id(), "host": host.trim(), "started": now - 10, "expires": now + 600})
        .to_string(),
    )
    .unwrap();
    let mcp = s.home.mcp().await;
    let before = s.api.requests().len();
    let (err, out) = call(
        &mcp,
        json!({"action": "apply", "apply": true, "profile": "lab",
        "manifests": yaml(&shop())}),
    )
    .await;
    assert!(err, "{out}");
    let m = out["error"]["message"].as_str().unwrap();
    assert!(m.contains("locked") && m.contains("t-other-agent"), "{m}");
    assert!(writes_since(&s.api, before).is_empty());
}

#[tokio::test]
async fn a_protected_profile_is_refused_when_the_client_cannot_ask_the_user() {
    let s = setup_with("[]", r#"["apps-*"]"#, true).await;
    let mcp = s.home.mcp().await;
    let before = s.api.requests().len();
    let (err, out) = call(
        &mcp,
        json!({"action": "apply", "apply": true, "profile": "lab",
        "manifests": yaml(&shop())}),
    )
    .await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "denied", "{out}");
    assert!(writes_since(&s.api, before).is_empty());
    assert!(
        !s.home
            .path()
            .join("locks")
            .join("kubernetes@lab.lock")
            .exists()
    );
}

#[tokio::test]
async fn prune_deletes_only_labelled_objects_the_set_no_longer_has() {
    let s = setup().await;
    s.api
        .put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps-shop"}}));
    s.api
        .put(configmap("apps-shop", "settings", json!({"mode": "blue"})));
    s.api
        .put(configmap("apps-shop", "leftover", json!({"old": "1"})));
    // Not carrying the label: never pruned.
    s.api.put(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "foreign", "namespace": "apps-shop"}, "data": {}}));
    let mcp = s.home.mcp().await;
    let manifests = yaml(&[configmap("apps-shop", "settings", json!({"mode": "blue"}))]);
    let sel = "app.kubernetes.io/part-of=shop";
    let out = ok(
        &mcp,
        json!({"action": "diff", "profile": "lab", "manifests": manifests,
                              "prune_selector": sel}),
    )
    .await;
    assert_eq!(out["plan"]["summary"]["prune"], 1, "{out}");
    assert_eq!(
        out["plan"]["prune"][0]["object"], "ConfigMap apps-shop/leftover",
        "{out}"
    );
    // prune without a selector is refused naming the field.
    let (err, out) = call(
        &mcp,
        json!({"action": "apply", "apply": true, "prune": true,
        "profile": "lab", "manifests": manifests}),
    )
    .await;
    assert!(err && out["error"]["field"] == "prune", "{out}");
    let out = ok(
        &mcp,
        json!({"action": "apply", "apply": true, "prune": true, "profile": "lab",
        "manifests": manifests, "prune_selector": sel}),
    )
    .await;
    let pruned: Vec<&Value> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["result"] == "pruned")
        .collect();
    assert_eq!(pruned.len(), 1, "{out}");
    assert!(
        s.api
            .get("v1", "ConfigMap", Some("apps-shop"), "leftover")
            .is_none()
    );
    assert!(
        s.api
            .get("v1", "ConfigMap", Some("apps-shop"), "foreign")
            .is_some()
    );
    assert!(
        s.api
            .get("v1", "ConfigMap", Some("apps-shop"), "settings")
            .is_some()
    );
}

#[tokio::test]
async fn rollout_status_waits_for_the_new_generation_and_explains_a_stuck_one() {
    let s = setup().await;
    s.api
        .put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps-shop"}}));
    s.api.put(deployment("apps-shop", "web", "shop/web:3"));
    let generation = s
        .api
        .get("apps/v1", "Deployment", Some("apps-shop"), "web")
        .unwrap()["metadata"]["generation"]
        .clone();
    s.api.patch_status("apps/v1", "Deployment", Some("apps-shop"), "web", json!({
        "observedGeneration": generation, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1}));
    let mcp = s.home.mcp().await;
    // The rollout finishes two seconds into the wait.
    let api = &s.api;
    let (res, ()) = tokio::join!(
        ok(
            &mcp,
            json!({"action": "rollout_status", "profile": "lab", "namespace": "apps-shop",
                         "workloads": ["deployment/web"], "timeout_secs": 20, "timeout_ms": 30000})
        ),
        async {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            api.patch_status(
                "apps/v1",
                "Deployment",
                Some("apps-shop"),
                "web",
                json!({
                "observedGeneration": generation, "replicas": 2, "updatedReplicas": 2,
                "readyReplicas": 2, "availableReplicas": 2}),
            );
        }
    );
    assert_eq!(res["rollouts"][0]["done"], true, "{res}");
    assert!(
        res["rollouts"][0]["message"]
            .as_str()
            .unwrap()
            .contains("successfully rolled out"),
        "{res}"
    );

    // A stuck one: a crash-looping pod, the Progressing condition still true; timeout with both.
    s.api.patch_status("apps/v1", "Deployment", Some("apps-shop"), "web", json!({
        "observedGeneration": generation, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1,
        "conditions": [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                        "message": "Deployment does not have minimum availability."}]}));
    s.api.put(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "apps-shop", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "shop/web:3"}]}}));
    s.api.patch_status(
        "v1",
        "Pod",
        Some("apps-shop"),
        "web-1",
        json!({"phase": "Running",
        "containerStatuses": [{"name": "app", "ready": false, "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}}}]}),
    );
    let (err, out) = call(
        &mcp,
        json!({"action": "rollout_status", "profile": "lab",
        "namespace": "apps-shop", "workloads": ["deployment/web"], "timeout_secs": 2}),
    )
    .await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "timeout", "{out}");
    let m = out["error"]["message"].as_str().unwrap();
    assert!(m.contains("1 out of 2 new replicas"), "{m}");
    assert!(
        m.contains("CrashLoopBackOff") && m.contains("MinimumReplicasUnavailable"),
        "{m}"
    );
}

#[tokio::test]
async fn argo_status_sync_and_rollback_through_the_http_profile() {
    let s = setup().await;
    s.argo
        .add_app("shop", "https://git.example/shop.git", "deploy", "v1");
    s.argo.set_resources("shop", vec![json!({"group": "apps", "version": "v1", "kind": "Deployment",
        "namespace": "apps-shop", "name": "web", "status": "Synced", "health": {"status": "Healthy"}})]);
    let mcp = s.home.mcp().await;
    let out = ok(
        &mcp,
        json!({"action": "status", "argocd_profile": "argocd", "app": "shop"}),
    )
    .await;
    assert_eq!(out["apps"][0]["sync"], "Synced", "{out}");
    assert_eq!(
        out["apps"][0]["resources"][0]["object"], "Deployment apps-shop/web",
        "{out}"
    );
    assert_eq!(out["apps"][0]["resources"][0]["health"], "Healthy", "{out}");
    let out = ok(
        &mcp,
        json!({"action": "status", "argocd_profile": "argocd"}),
    )
    .await;
    assert_eq!(out["apps"].as_array().unwrap().len(), 1, "{out}");
    // A hard refresh reaches Argo CD as `?refresh=hard`; an unknown mode names the field.
    ok(
        &mcp,
        json!({"action": "refresh", "argocd_profile": "argocd", "app": "shop", "mode": "hard"}),
    )
    .await;
    assert!(
        s.argo
            .requests()
            .iter()
            .any(|(m, p)| m == "GET" && p == "/api/v1/applications/shop?refresh=hard")
    );
    let (err, out) = call(
        &mcp,
        json!({"action": "refresh", "argocd_profile": "argocd", "app": "shop", "mode": "x&y"}),
    )
    .await;
    assert!(
        err && out["error"]["kind"] == "invalid" && out["error"]["field"] == "mode",
        "{out}"
    );
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("use `normal` or `hard`"),
        "{out}"
    );

    // Without apply: the plan only; no POST reached Argo CD.
    let out = ok(
        &mcp,
        json!({"action": "sync", "argocd_profile": "argocd", "app": "shop",
                              "revision": "v2"}),
    )
    .await;
    assert!(
        out["operation"]["plan"]
            .as_str()
            .unwrap()
            .contains("sync Argo CD application shop to v2"),
        "{out}"
    );
    assert!(!s.argo.requests().iter().any(|(m, _)| m == "POST"));
    // A dry run needs no approval and changes nothing.
    ok(
        &mcp,
        json!({"action": "sync", "argocd_profile": "argocd", "app": "shop",
                    "revision": "v2", "dry_run": true}),
    )
    .await;
    assert_eq!(s.argo.app("shop")["status"]["sync"]["revision"], "v1");
    // With apply: guarded, synced, waited for.
    let out = ok(
        &mcp,
        json!({"action": "sync", "apply": true, "argocd_profile": "argocd",
                              "app": "shop", "revision": "v2", "wait": true, "timeout_secs": 10}),
    )
    .await;
    assert_eq!(
        out["operation"]["approval"]["approved_by"], "policy",
        "{out}"
    );
    assert_eq!(out["operation"]["done"], true, "{out}");
    assert_eq!(s.argo.app("shop")["status"]["sync"]["revision"], "v2");
    let out = ok(
        &mcp,
        json!({"action": "history", "argocd_profile": "argocd", "app": "shop"}),
    )
    .await;
    assert_eq!(
        out["apps"][0]["history"].as_array().unwrap().len(),
        2,
        "{out}"
    );
    // A rollback to an id that does not exist names the ids there are.
    let (err, out) = call(
        &mcp,
        json!({"action": "rollback", "apply": true,
        "argocd_profile": "argocd", "app": "shop", "id": 7}),
    )
    .await;
    assert!(err && out["error"]["field"] == "id", "{out}");
    assert!(
        out["error"]["message"].as_str().unwrap().contains("0, 1"),
        "{out}"
    );
    let out = ok(
        &mcp,
        json!({"action": "rollback", "apply": true, "argocd_profile": "argocd",
                              "app": "shop", "id": 0, "wait": true, "timeout_secs": 10}),
    )
    .await;
    assert_eq!(out["operation"]["done"], true, "{out}");
    assert_eq!(s.argo.app("shop")["status"]["sync"]["revision"], "v1");
    // A sync that fails ends Degraded, reported with its message.
    s.argo
        .fail_syncs("shop", "one or more objects failed to apply");
    let out = ok(
        &mcp,
        json!({"action": "sync", "apply": true, "argocd_profile": "argocd",
                              "app": "shop", "wait": true, "timeout_secs": 10}),
    )
    .await;
    assert_eq!(out["operation"]["done"], false, "{out}");
    assert!(out.to_string().contains("failed to apply"), "{out}");
    // The token never reaches the answer or the audit record.
    assert!(!infra_tests::contains(&s.home.all_bytes(), &s.argo.token()));
}

#[tokio::test]
async fn flux_reconcile_annotates_and_waits_for_ready() {
    let s = setup().await;
    s.api
        .put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps-flux"}}));
    s.api.put(json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "shop", "namespace": "apps-flux"},
        "spec": {"interval": "10m", "path": "./deploy", "sourceRef": {"kind": "GitRepository", "name": "shop"}}}));
    let mcp = s.home.mcp().await;
    // Without apply: the Ready condition now, nothing written.
    let out = ok(
        &mcp,
        json!({"action": "reconcile", "profile": "lab", "kind": "Kustomization",
                              "name": "shop", "namespace": "apps-flux"}),
    )
    .await;
    assert_eq!(out["reconcile"]["status"]["ready"], "Unknown", "{out}");
    // The stand-in Flux controller handles the request and reports Ready.
    let before = s.api.requests().len();
    let out = ok(
        &mcp,
        json!({"action": "reconcile", "apply": true, "profile": "lab",
        "kind": "Kustomization", "name": "shop", "namespace": "apps-flux", "timeout_secs": 10}),
    )
    .await;
    assert_eq!(out["reconcile"]["done"], true, "{out}");
    assert_eq!(out["reconcile"]["status"]["ready"], "True", "{out}");
    assert_eq!(
        out["reconcile"]["status"]["reason"], "ReconciliationSucceeded",
        "{out}"
    );
    assert!(
        out["approval"].is_null() && out["reconcile"]["approval"]["approved_by"] == "policy",
        "{out}"
    );
    let k = s
        .api
        .get(
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            Some("apps-flux"),
            "shop",
        )
        .unwrap();
    assert_eq!(
        k["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"],
        out["reconcile"]["requested_at"]
    );
    let writes = writes_since(&s.api, before);
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].0, "PATCH");
    // A failing build: not done, the condition's reason and message reported.
    s.api.set_flux_outcome(
        "Kustomization",
        "apps-flux",
        "shop",
        false,
        "BuildFailed",
        "kustomize build failed: missing resource deploy/web.yaml",
    );
    let out = ok(
        &mcp,
        json!({"action": "reconcile", "apply": true, "profile": "lab",
        "kind": "Kustomization", "name": "shop", "namespace": "apps-flux", "timeout_secs": 10}),
    )
    .await;
    assert_eq!(out["reconcile"]["done"], false, "{out}");
    assert_eq!(out["reconcile"]["status"]["reason"], "BuildFailed", "{out}");
    assert!(
        out["reconcile"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("missing resource"),
        "{out}"
    );
    // Outside the granted namespaces: refused, nothing written.
    s.api.put(
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "infra", "namespace": "flux-system"}, "spec": {"interval": "10m"}}),
    );
    let before = s.api.requests().len();
    let (err, out) = call(
        &mcp,
        json!({"action": "reconcile", "apply": true, "profile": "lab",
        "kind": "Kustomization", "name": "infra"}),
    )
    .await;
    assert!(err && out["error"]["kind"] == "denied", "{out}");
    assert!(writes_since(&s.api, before).is_empty());
}

#[tokio::test]
async fn verify_gives_one_verdict_with_evidence() {
    let s = setup().await;
    s.api
        .put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps-shop"}}));
    s.api.put(deployment("apps-shop", "web", "shop/web:3"));
    let generation = s
        .api
        .get("apps/v1", "Deployment", Some("apps-shop"), "web")
        .unwrap()["metadata"]["generation"]
        .clone();
    s.api.patch_status(
        "apps/v1",
        "Deployment",
        Some("apps-shop"),
        "web",
        json!({
        "observedGeneration": generation, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
        "availableReplicas": 2}),
    );
    s.argo
        .add_app("shop", "https://git.example/shop.git", "deploy", "v3");
    let mcp = s.home.mcp().await;
    let health = format!("{}/api/v1/applications", s.argo.url());
    let args = json!({"action": "verify", "profile": "lab", "namespace": "apps-shop",
        "workloads": ["deployment/web"], "argocd_profile": "argocd", "app": "shop",
        "http_checks": [{"url": health, "expect_status": 401}], "timeout_secs": 5});
    let out = ok(&mcp, args.clone()).await;
    assert_eq!(out["verify"]["verdict"], "pass", "{out}");
    assert_eq!(
        out["verify"]["checks"].as_array().unwrap().len(),
        3,
        "{out}"
    );
    // The app turns Degraded: fail, and the evidence says so.
    s.argo.set_health("shop", "Degraded");
    let out = ok(&mcp, args).await;
    assert_eq!(out["verify"]["verdict"], "fail", "{out}");
    let argo = out["verify"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "argocd app shop")
        .unwrap()
        .clone();
    assert_eq!(argo["ok"], false);
    assert!(
        argo["evidence"].as_str().unwrap().contains("Degraded"),
        "{out}"
    );
}

#[tokio::test]
async fn hostile_manifests_never_reach_a_path_outside_the_api() {
    let s = setup().await;
    let mcp = s.home.mcp().await;
    let before = s.api.requests().len();
    for (bad, field_text) in [
        (
            json!({"apiVersion": "v1", "kind": "../../x", "metadata": {"name": "a", "namespace": "apps-a"}}),
            "kind",
        ),
        (
            json!({"apiVersion": "../../api/v1", "kind": "Pod", "metadata": {"name": "a"}}),
            "apiVersion",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "../secrets/x", "namespace": "apps-a"}}),
            "metadata.name",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "apps-a/../kube-system"}}),
            "metadata.namespace",
        ),
    ] {
        let (err, out) = call(
            &mcp,
            json!({"action": "apply", "apply": true, "profile": "lab",
            "manifests": yaml(&[configmap("apps-a", "ok", json!({})), bad])}),
        )
        .await;
        assert!(err, "{out}");
        assert_eq!(out["error"]["kind"], "invalid", "{out}");
        let m = format!("{} {}", out["error"]["field"], out["error"]["message"]);
        assert!(
            m.contains("manifests") && m.contains(field_text) && m.contains("object 2"),
            "{m}"
        );
    }
    // Nothing was written, and no request left the API's paths.
    assert!(writes_since(&s.api, before).is_empty());
    for (_, p) in s.api.requests().into_iter().skip(before) {
        assert!(
            !p.contains("..") && !p.contains("secrets") && !p.contains("kube-system"),
            "{p}"
        );
    }
    // A cluster-scoped object needs the widest grant ("*"), which apps-* is not.
    let (err, out) = call(
        &mcp,
        json!({"action": "apply", "apply": true, "profile": "lab",
        "manifests": yaml(&[json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "evil-node", "labels": {"role": "control-plane"}}})])}),
    )
    .await;
    assert!(err && out["error"]["kind"] == "denied", "{out}");
    assert!(writes_since(&s.api, before).is_empty());
}
