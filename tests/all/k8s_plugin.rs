//! The k8s plugin through the real binary over MCP, against the stand-in Kubernetes API
//! (`infra_tests::kube`, loopback HTTPS with its own CA): a kubeconfig profile, every action,
//! selectors and paging, logs, diagnose's evidence, a CRD found by discovery, and hostile
//! arguments that must never produce a request outside the API's paths.

use infra_tests::kube::KubeApi;
use infra_tests::{Home, Mcp};
use serde_json::{Value, json};

/// A stand-in cluster, a state directory whose profiles.json points at it through a
/// kubeconfig (profile `lab`: token; `lab-cert`: client certificate), and an MCP session.
struct Setup {
    api: KubeApi,
    home: Home,
    mcp: Mcp,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let api = KubeApi::start().await.expect("stand-in Kubernetes API");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    api.write_kubeconfig(&kubeconfig).unwrap();
    let home = Home::new();
    let bad = dir.path().join("bad-token");
    std::fs::write(&bad, "not-the-token").unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, api.ca_pem()).unwrap();
    home.profiles(&json!({
        "lab": {"type": "kubernetes", "kubeconfig": format!("file:{}", kubeconfig.display()),
                "context": "standin"},
        "lab-cert": {"type": "kubernetes", "kubeconfig": format!("file:{}", kubeconfig.display()),
                     "context": "standin-cert"},
        "wrong": {"type": "kubernetes", "server": api.url(), "ca": format!("file:{}", ca.display()),
                  "token": format!("file:{}", bad.display())}
    }));
    let mcp = home.mcp().await;
    Setup {
        api,
        home,
        mcp,
        _dir: dir,
    }
}

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn pod(ns: &str, name: &str, labels: Value, phase: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": ns, "labels": labels},
           "spec": {"containers": [{"name": "app", "image": "shop/app:1"}]},
           "status": {"phase": phase}})
}

impl Setup {
    async fn ok(&self, args: Value) -> Value {
        let (err, out) = self.mcp.call("k8s", args.clone()).await;
        assert!(!err, "{args} failed: {out}");
        self.home.whole(out)
    }

    async fn err(&self, args: Value) -> Value {
        let (err, out) = self.mcp.call("k8s", args.clone()).await;
        assert!(err, "{args} should have failed: {out}");
        out["error"].clone()
    }

    /// The paths the stand-in was asked for since `from`.
    fn paths_since(&self, from: usize) -> Vec<(String, String)> {
        self.api.requests().into_iter().skip(from).collect()
    }
}

/// A shop: a Deployment owning a ReplicaSet owning a crash-looping pod, a pod the scheduler
/// cannot place (with its FailedScheduling event), a healthy pod.
fn shop(api: &KubeApi) {
    api.put(namespace("shop"));
    api.put(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}},
                 "template": {"metadata": {"labels": {"app": "api"}},
                              "spec": {"containers": [{"name": "app", "image": "shop/api:2"}]}}}}));
    let deploy = api
        .get("apps/v1", "Deployment", Some("shop"), "api")
        .expect("deployment stored");
    api.patch_status(
        "apps/v1",
        "Deployment",
        Some("shop"),
        "api",
        json!({
        "replicas": 2, "updatedReplicas": 2, "readyReplicas": 1, "availableReplicas": 1,
        "conditions": [{"type": "Progressing", "status": "False",
                        "reason": "ProgressDeadlineExceeded",
                        "message": "ReplicaSet \"api-7d9\" has timed out progressing."}]}),
    );
    api.put(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "api-7d9", "namespace": "shop", "labels": {"app": "api"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                        "name": "api", "uid": deploy["metadata"]["uid"], "controller": true}]},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}}}}));
    let rs = api
        .get("apps/v1", "ReplicaSet", Some("shop"), "api-7d9")
        .expect("replicaset stored");
    let mut crash = pod("shop", "api-7d9-x1", json!({"app": "api"}), "Running");
    crash["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "name": "api-7d9", "uid": rs["metadata"]["uid"], "controller": true}]);
    crash["spec"]["containers"][0]["resources"] = json!({"limits": {"memory": "64Mi"}});
    api.put(crash);
    api.patch_status(
        "v1",
        "Pod",
        Some("shop"),
        "api-7d9-x1",
        json!({"phase": "Running",
        "containerStatuses": [{"name": "app", "ready": false, "restartCount": 9,
            "image": "shop/api:2",
            "state": {"waiting": {"reason": "CrashLoopBackOff",
                                  "message": "back-off 5m0s restarting failed container=app"}},
            "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}),
    );
    api.put(pod("shop", "big-batch", json!({"app": "batch"}), "Pending"));
    api.patch_status(
        "v1",
        "Pod",
        Some("shop"),
        "big-batch",
        json!({"phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient cpu."}]}),
    );
    let pending = api.get("v1", "Pod", Some("shop"), "big-batch").unwrap();
    api.put(json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "big-batch.1", "namespace": "shop"},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "big-batch",
                           "namespace": "shop", "uid": pending["metadata"]["uid"]},
        "type": "Warning", "reason": "FailedScheduling", "count": 4,
        "message": "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available.",
        "lastTimestamp": "2026-01-01T10:00:00Z"}));
    api.put(json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "api-7d9-x1.1", "namespace": "shop"},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "api-7d9-x1",
                           "namespace": "shop"},
        "type": "Warning", "reason": "BackOff", "count": 40,
        "message": "Back-off restarting failed container app",
        "lastTimestamp": "2026-01-01T11:00:00Z"}));
    api.put(pod("shop", "web-1", json!({"app": "web"}), "Running"));
    api.patch_status(
        "v1",
        "Pod",
        Some("shop"),
        "web-1",
        json!({"phase": "Running",
        "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0,
                               "state": {"running": {"startedAt": "2026-01-01T09:00:00Z"}}}]}),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_answers_through_mcp() {
    let s = setup().await;
    shop(&s.api);

    // contexts: the kubernetes profiles, with their server, never a credential.
    let out = s.ok(json!({"action": "contexts"})).await;
    let names: Vec<&str> = out["contexts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["lab", "lab-cert", "wrong"], "{out}");
    assert_eq!(out["contexts"][0]["server"], s.api.url().as_str(), "{out}");
    assert!(!out.to_string().contains(&s.api.token()), "{out}");

    let out = s
        .ok(json!({"action": "namespaces", "profile": "lab"}))
        .await;
    let names: Vec<&str> = out["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(names.contains(&"shop"), "{out}");

    let out = s
        .ok(json!({"action": "list", "profile": "lab", "namespace": "shop", "kind": "po"}))
        .await;
    assert_eq!(out["resource"]["kind"], "Pod", "{out}");
    let rows = out["items"].as_array().unwrap();
    let crash = rows
        .iter()
        .find(|r| r["name"] == "api-7d9-x1")
        .expect("the crashing pod");
    assert_eq!(crash["status"], "CrashLoopBackOff", "{out}");
    assert_eq!(crash["restarts"], 9);
    assert_eq!(crash["ready"], "0/1");
    assert!(crash.get("spec").is_none(), "rows are compact: {crash}");

    let out = s
        .ok(
            json!({"action": "get", "profile": "lab", "namespace": "shop",
                          "kind": "Deployment", "name": "api"}),
        )
        .await;
    assert_eq!(out["object"]["spec"]["replicas"], 2, "{out}");
    assert!(
        out["object"]["metadata"].get("managedFields").is_none(),
        "{out}"
    );
    assert_eq!(out["resource"]["group"], "apps");

    // describe: the object, its events, and the chain Pod → ReplicaSet → Deployment.
    let out = s
        .ok(
            json!({"action": "describe", "profile": "lab", "namespace": "shop",
                          "kind": "pods", "name": "api-7d9-x1"}),
        )
        .await;
    assert_eq!(out["summary"]["status"], "CrashLoopBackOff", "{out}");
    assert_eq!(out["events"][0]["reason"], "BackOff", "{out}");
    let owners: Vec<(&str, &str)> = out["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["kind"].as_str().unwrap(), o["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        owners,
        [("ReplicaSet", "api-7d9"), ("Deployment", "api")],
        "{out}"
    );
    assert_eq!(
        out["owners"][1]["summary"]["status"], "ProgressDeadlineExceeded",
        "{out}"
    );

    // events: newest first.
    let out = s
        .ok(json!({"action": "events", "profile": "lab", "namespace": "shop"}))
        .await;
    let reasons: Vec<&str> = out["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert_eq!(reasons, ["BackOff", "FailedScheduling"], "{out}");
    let out = s
        .ok(
            json!({"action": "events", "profile": "lab", "namespace": "shop",
                          "kind": "pod", "name": "big-batch"}),
        )
        .await;
    assert_eq!(out["events"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(out["events"][0]["count"], 4);

    // top: from metrics.k8s.io, busiest first; a cluster without it gets a clear answer.
    s.api.set_pod_metrics(
        "shop",
        "web-1",
        &[("app", "250m", "128Mi"), ("proxy", "50m", "32Mi")],
    );
    s.api
        .set_pod_metrics("shop", "big-batch", &[("app", "1", "1Gi")]);
    let out = s
        .ok(json!({"action": "top", "profile": "lab", "namespace": "shop"}))
        .await;
    let usage = out["usage"].as_array().unwrap();
    assert_eq!(usage[0]["name"], "big-batch", "{out}");
    assert_eq!(
        (
            usage[0]["cpu_millicores"].as_u64(),
            usage[0]["memory_mib"].as_u64()
        ),
        (Some(1000), Some(1024))
    );
    assert_eq!(
        (
            usage[1]["cpu_millicores"].as_u64(),
            usage[1]["memory_mib"].as_u64()
        ),
        (Some(300), Some(160))
    );
    s.api.set_metrics_available(false);
    let e = s.err(json!({"action": "top", "profile": "lab"})).await;
    assert_eq!(e["kind"], "not-found", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("metrics API (metrics.k8s.io) is not available"),
        "{e}"
    );

    // The client-certificate context reads the same cluster.
    let out = s
        .ok(
            json!({"action": "get", "profile": "lab-cert", "namespace": "shop",
                          "kind": "pods", "name": "web-1"}),
        )
        .await;
    assert_eq!(out["object"]["metadata"]["name"], "web-1");

    // Every request was a GET under the API's paths.
    for (method, path) in s.api.requests() {
        assert_eq!(method, "GET", "{path}");
        assert!(
            path.starts_with("/api/") || path.starts_with("/apis"),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_the_profile_and_the_object() {
    let s = setup().await;
    shop(&s.api);
    let e = s
        .err(
            json!({"action": "get", "profile": "lab", "namespace": "shop",
                         "kind": "pods", "name": "nope"}),
        )
        .await;
    assert_eq!(e["kind"], "not-found", "{e}");
    let m = e["message"].as_str().unwrap();
    assert!(
        m.contains("pods \"nope\" in namespace \"shop\" not found") && m.contains("\"lab\""),
        "{e}"
    );

    let e = s
        .err(json!({"action": "namespaces", "profile": "wrong"}))
        .await;
    assert_eq!(e["kind"], "denied", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("profile \"wrong\" rejected its credentials"),
        "{e}"
    );

    // RBAC: a 403 names the profile, the verb and the resource to grant.
    s.api.forbid("secrets");
    let e = s
        .err(json!({"action": "list", "profile": "lab", "namespace": "shop", "kind": "secrets"}))
        .await;
    assert_eq!(e["kind"], "denied", "{e}");
    let m = e["message"].as_str().unwrap();
    assert!(
        m.contains("profile \"lab\" may not list secrets in namespace \"shop\"")
            && m.contains("RBAC verb \"list\""),
        "{e}"
    );

    let e = s.err(json!({"action": "list", "kind": "pods"})).await;
    assert_eq!(e["field"], "profile", "{e}");

    let e = s
        .err(json!({"action": "list", "profile": "lab", "kind": "widgets"}))
        .await;
    assert_eq!(e["kind"], "not-found", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("deployments.apps"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_and_pagination() {
    let s = setup().await;
    s.api.put(namespace("load"));
    for i in 0..15 {
        s.api.put(pod(
            "load",
            &format!("a-{i:02}"),
            json!({"app": "a"}),
            "Running",
        ));
    }
    for i in 0..10 {
        s.api.put(pod(
            "load",
            &format!("b-{i:02}"),
            json!({"app": "b"}),
            "Pending",
        ));
    }
    let page = |cont: Option<&str>| {
        let mut a = json!({"action": "list", "profile": "lab", "namespace": "load",
                           "kind": "pods", "label_selector": "app=a", "limit": 10});
        if let Some(c) = cont {
            a["continue"] = json!(c);
        }
        a
    };
    let first = s.ok(page(None)).await;
    assert_eq!(first["count"], 10, "{first}");
    let token = first["continue"]
        .as_str()
        .expect("a continue token")
        .to_string();
    let second = s.ok(page(Some(&token))).await;
    assert_eq!(second["count"], 5, "{second}");
    assert!(second.get("continue").is_none(), "{second}");
    let mut names: Vec<String> = [&first, &second]
        .iter()
        .flat_map(|o| {
            o["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 15, "every a-pod once: {names:?}");
    assert!(names.iter().all(|n| n.starts_with("a-")));

    let out = s
        .ok(
            json!({"action": "list", "profile": "lab", "namespace": "load", "kind": "pods",
                          "field_selector": "status.phase=Pending"}),
        )
        .await;
    assert_eq!(out["count"], 10, "{out}");

    // More than one API page: the plugin pages by 500 and stops at `limit`.
    for i in 0..560 {
        s.api.put(pod(
            "load",
            &format!("c-{i:03}"),
            json!({"app": "c"}),
            "Running",
        ));
    }
    let before = s.api.requests().len();
    let out = s
        .ok(
            json!({"action": "list", "profile": "lab", "namespace": "load", "kind": "pods",
                          "label_selector": "app=c", "limit": 550}),
        )
        .await;
    assert_eq!(out["count"], 550, "count");
    assert!(out["continue"].is_string(), "10 more remain");
    let lists: Vec<String> = s
        .paths_since(before)
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| p.starts_with("/api/v1/namespaces/load/pods?"))
        .collect();
    assert_eq!(lists.len(), 2, "{lists:?}");
    assert!(
        lists[0].contains("limit=500") && lists[1].contains("limit=50"),
        "{lists:?}"
    );
    assert!(lists[1].contains("continue="), "{lists:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_tail_previous_and_long_logs() {
    let s = setup().await;
    s.api.put(namespace("logs"));
    let mut two = pod("logs", "multi", json!({}), "Running");
    two["spec"]["containers"] = json!([{"name": "app"}, {"name": "proxy"}]);
    s.api.put(two);
    let text: String = (1..=50).map(|i| format!("line {i}\n")).collect();
    s.api.set_logs("logs", "multi", "app", &text);
    s.api
        .set_previous_logs("logs", "multi", "app", "panic: out of memory\n");

    let e = s
        .err(json!({"action": "logs", "profile": "lab", "namespace": "logs", "name": "multi"}))
        .await;
    assert_eq!(e["field"], "container", "{e}");
    assert!(e["message"].as_str().unwrap().contains("app, proxy"), "{e}");

    let out = s
        .ok(
            json!({"action": "logs", "profile": "lab", "namespace": "logs", "name": "multi",
                          "container": "app", "tail": 3}),
        )
        .await;
    assert_eq!(out["logs"]["text"], "line 48\nline 49\nline 50\n", "{out}");
    assert_eq!(out["logs"]["truncated"], false);

    let out = s
        .ok(
            json!({"action": "logs", "profile": "lab", "namespace": "logs", "name": "multi",
                          "container": "app", "previous": true}),
        )
        .await;
    assert_eq!(out["logs"]["text"], "panic: out of memory\n", "{out}");
    assert_eq!(out["logs"]["previous"], true);

    let e = s
        .err(
            json!({"action": "logs", "profile": "lab", "namespace": "logs", "name": "multi",
                         "container": "sidecar"}),
        )
        .await;
    assert_eq!(e["field"], "container", "{e}");

    // A long log: the end inline, the whole in an artifact.
    let long: String = (1..=5000)
        .map(|i| format!("request {i} served in 3ms by worker 7\n"))
        .collect();
    s.api.set_logs("logs", "multi", "proxy", &long);
    let out = s
        .ok(
            json!({"action": "logs", "profile": "lab", "namespace": "logs", "name": "multi",
                          "container": "proxy", "tail": 5000}),
        )
        .await;
    let logs = &out["logs"];
    assert_eq!(logs["truncated"], true, "{logs}");
    assert!(
        logs["text"]
            .as_str()
            .unwrap()
            .ends_with("request 5000 served in 3ms by worker 7\n")
    );
    assert!(logs["text"].as_str().unwrap().len() <= 64 * 1024);
    let uri = logs["artifact"]["uri"].as_str().unwrap();
    let stored = std::fs::read(
        s.home
            .path()
            .join("artifacts")
            .join(uri.trim_start_matches("artifact://")),
    )
    .unwrap();
    assert_eq!(stored, long.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnose_finds_the_crash_loop_and_the_pending_pod_with_evidence() {
    let s = setup().await;
    shop(&s.api);
    let out = s
        .ok(json!({"action": "diagnose", "profile": "lab", "namespace": "shop"}))
        .await;
    let findings = out["findings"].as_array().unwrap();
    let find = |problem: &str| {
        findings
            .iter()
            .find(|f| f["problem"] == problem)
            .unwrap_or_else(|| panic!("no {problem} in {out}"))
    };
    let crash = find("CrashLoopBackOff");
    assert_eq!(crash["object"], "Pod/shop/api-7d9-x1");
    assert_eq!(crash["container"], "app");
    assert_eq!(crash["restarts"], 9);
    assert_eq!(crash["reason"], "OOMKilled");
    assert_eq!(crash["exit_code"], 137);
    let oom = find("OOMKilled");
    assert!(oom["message"].as_str().unwrap().contains("64Mi"), "{oom}");
    let pending = find("Pending");
    assert_eq!(pending["object"], "Pod/shop/big-batch");
    assert_eq!(pending["reason"], "Unschedulable");
    assert!(
        pending["event"]
            .as_str()
            .unwrap()
            .starts_with("FailedScheduling: 0/3 nodes are available: 3 Insufficient cpu"),
        "{pending}"
    );
    let stuck = find("RolloutStuck");
    assert_eq!(stuck["object"], "Deployment/shop/api");
    assert_eq!(stuck["reason"], "ProgressDeadlineExceeded");
    assert!(
        findings.iter().all(|f| f["object"] != "Pod/shop/web-1"),
        "the healthy pod: {out}"
    );
    assert_eq!(out["checked"]["pods"], 3, "{out}");

    // A whole-cluster run also looks at the nodes.
    s.api
        .put(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n9"}}));
    s.api.patch_status(
        "v1",
        "Node",
        None,
        "n9",
        json!({"conditions": [{"type": "Ready",
        "status": "False", "reason": "KubeletNotReady", "message": "container runtime is down"}]}),
    );
    let out = s.ok(json!({"action": "diagnose", "profile": "lab"})).await;
    let node = out["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["object"] == "Node/n9")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(node["problem"], "NodeNotReady");
    assert_eq!(node["message"], "container runtime is down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_are_found_by_discovery() {
    let s = setup().await;
    s.api.put(namespace("argocd"));
    s.api.put(json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "shop", "namespace": "argocd"},
        "spec": {"project": "default", "source": {"repoURL": "https://git.example/shop", "path": "k8s"}},
        "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}}));
    for kind in ["applications.argoproj.io", "Application", "applications"] {
        let out = s
            .ok(json!({"action": "list", "profile": "lab", "namespace": "argocd", "kind": kind}))
            .await;
        assert_eq!(out["resource"]["group"], "argoproj.io", "{kind}: {out}");
        assert_eq!(out["items"][0]["name"], "shop", "{kind}: {out}");
        assert_eq!(out["items"][0]["status"], "Synced/Healthy", "{kind}: {out}");
    }
    let out = s
        .ok(
            json!({"action": "get", "profile": "lab", "namespace": "argocd",
                          "kind": "applications.argoproj.io", "name": "shop"}),
        )
        .await;
    assert_eq!(out["object"]["spec"]["source"]["path"], "k8s");
}

/// Discovery is read once per profile, not once per call; a CRD installed after that is still
/// found (a kind missing from the kept documents is looked up in fresh ones), and a profile
/// the plugin is not granted gets nothing from what another call kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_is_kept_per_profile_and_a_new_crd_is_still_found() {
    let s = setup().await;
    s.api.put(namespace("shop"));
    s.api
        .put(pod("shop", "web-1", json!({"app": "web"}), "Running"));
    let discovery = |from: usize| {
        s.paths_since(from)
            .into_iter()
            .filter(|(m, p)| {
                m == "GET"
                    && (p == "/api/v1"
                        || p == "/apis"
                        || p.starts_with("/apis/") && p.matches('/').count() == 3)
            })
            .map(|(_, p)| p)
            .collect::<Vec<_>>()
    };
    let list =
        |kind: &str| json!({"action": "list", "profile": "lab", "namespace": "shop", "kind": kind});
    let before = s.api.requests().len();
    s.ok(list("deployments")).await;
    let first = discovery(before);
    assert!(first.contains(&"/apis/apps/v1".to_string()), "{first:?}");
    let before = s.api.requests().len();
    for kind in ["deployments", "pods", "deploy"] {
        s.ok(list(kind)).await;
    }
    assert!(
        discovery(before).is_empty(),
        "read again: {:?}",
        discovery(before)
    );
    // Another profile has its own documents.
    let before = s.api.requests().len();
    s.ok(json!({"action": "list", "profile": "lab-cert", "namespace": "shop", "kind": "deployments"}))
        .await;
    assert!(
        !discovery(before).is_empty(),
        "lab-cert used lab's documents"
    );

    // A CRD installed now: its kind is in no kept document, and is found anyway.
    s.api.put(
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true}]}}),
    );
    s.api
        .put(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "shop"}, "spec": {"size": 3}}));
    for kind in ["widgets", "widgets.example.com"] {
        let out = s.ok(list(kind)).await;
        assert_eq!(out["items"][0]["name"], "w1", "{kind}: {out}");
    }
    // An unknown kind still says so, after one fresh look.
    let err = s.err(list("gizmos")).await;
    assert!(
        err.to_string().contains("no resource type \\\"gizmos\\\""),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_arguments_get_clear_errors_and_no_request_leaves_the_api() {
    let s = setup().await;
    shop(&s.api);
    let before = s.api.requests().len();
    let cases = [
        (json!({"kind": "pods/log", "name": "x"}), "kind"),
        (json!({"kind": "../../secrets", "name": "x"}), "kind"),
        (json!({"kind": "pods", "name": "../secrets/db"}), "name"),
        (json!({"kind": "pods", "name": ".."}), "name"),
        (json!({"kind": "pods", "name": "web-1?watch=true"}), "name"),
        (json!({"kind": "pods", "name": "web-1#x"}), "name"),
        (
            json!({"kind": "pods", "name": "web-1", "namespace": "../kube-system"}),
            "namespace",
        ),
        (
            json!({"kind": "pods", "name": "web-1", "namespace": "shop/pods"}),
            "namespace",
        ),
    ];
    for (args, field) in cases {
        let mut a = args.clone();
        a["action"] = json!("get");
        a["profile"] = json!("lab");
        let e = s.err(a).await;
        assert_eq!(e["kind"], "invalid", "{args}: {e}");
        assert_eq!(e["field"], field, "{args}: {e}");
    }
    let e = s.err(json!({"action": "list", "profile": "lab", "kind": "pods", "limit": 1_000_000_000_000u64})).await;
    assert_eq!(
        (e["kind"].as_str(), e["field"].as_str()),
        (Some("invalid"), Some("limit")),
        "{e}"
    );
    assert!(e["message"].as_str().unwrap().contains("1 to 5000"), "{e}");
    let e = s
        .err(
            json!({"action": "logs", "profile": "lab", "namespace": "shop", "name": "web-1",
                         "container": "app", "tail": 10_000_000}),
        )
        .await;
    assert_eq!(e["field"], "tail", "{e}");

    // A selector cannot add query parameters of its own: it arrives encoded, as one value.
    // (The stand-in may refuse the odd selector or match nothing: either way, one value.)
    let _ = s
        .mcp
        .call(
            "k8s",
            json!({"action": "list", "profile": "lab", "namespace": "shop",
        "kind": "pods", "label_selector": "app=web&watch=true&limit=1"}),
        )
        .await;
    for (method, path) in s.paths_since(before) {
        assert_eq!(method, "GET", "{path}");
        assert!(
            path.starts_with("/api/") || path.starts_with("/apis"),
            "{path}"
        );
        assert!(
            !path.contains("..") && !path.contains("watch=true") && !path.contains("secrets"),
            "{path}"
        );
    }
}
