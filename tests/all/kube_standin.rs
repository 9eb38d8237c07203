//! The stand-in Kubernetes API checked against the real `kubectl` (/usr/bin/kubectl): if the
//! stand-in drifted from the protocol, these fail. `--validate=false` on apply: the
//! stand-in serves no OpenAPI document for kubectl's client-side schema validation.

use std::path::{Path, PathBuf};

use infra_tests::kube::KubeApi;
use serde_json::{Value, json};

/// A stand-in with a kubeconfig for it, and a scratch HOME (kubectl caches discovery there).
struct Cluster {
    api: KubeApi,
    dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let api = KubeApi::start().await.expect("stand-in API server");
        let dir = tempfile::tempdir().unwrap();
        api.write_kubeconfig(&dir.path().join("kubeconfig"))
            .unwrap();
        Cluster { api, dir }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Runs kubectl with this kubeconfig: (exit code, stdout, stderr).
    async fn kubectl(&self, args: &[&str]) -> (i32, String, String) {
        self.kubectl_with(&self.kubeconfig(), args).await
    }

    async fn kubectl_with(&self, kubeconfig: &Path, args: &[&str]) -> (i32, String, String) {
        let out = tokio::process::Command::new("/usr/bin/kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            // A stand-in that stopped answering fails the test instead of hanging it.
            .arg("--request-timeout=60s")
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("KUBECONFIG")
            .env("KUBECTL_EXTERNAL_DIFF", "diff -u")
            .output()
            .await
            .expect("run /usr/bin/kubectl (scripts/test.sh installs it)");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn pod(ns: &str, name: &str, app: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
           "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]},
           "status": {"phase": "Running", "containerStatuses": [
               {"name": "main", "ready": true, "restartCount": 0, "state": {"running": {}}}]}})
}

#[tokio::test]
async fn kubectl_gets_namespaces_and_selects_pods_by_label() {
    let c = Cluster::start().await;
    c.api.put(pod("x", "web-1", "web"));
    c.api.put(pod("x", "web-2", "web"));
    c.api.put(pod("x", "db-1", "db"));
    c.api.put(pod("y", "web-9", "web"));

    let (code, out, err) = c.kubectl(&["get", "namespaces"]).await;
    assert_eq!(code, 0, "{err}");
    for ns in ["default", "kube-system", "x", "y"] {
        assert!(out.contains(ns), "{ns} missing from:\n{out}");
    }
    assert!(out.contains("Active"), "{out}");

    let (code, out, err) = c
        .kubectl(&["get", "pods", "-n", "x", "-l", "app=web"])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("web-1") && out.contains("web-2"), "{out}");
    assert!(!out.contains("db-1") && !out.contains("web-9"), "{out}");
    assert!(out.contains("1/1") && out.contains("Running"), "{out}");

    let (code, out, err) = c
        .kubectl(&[
            "get",
            "pods",
            "-A",
            "-l",
            "app in (web)",
            "-o",
            "json",
            "--chunk-size=2",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web-1", "web-2", "web-9"]);
    // Two pages: kubectl followed the continue token.
    assert!(
        c.api
            .requests()
            .iter()
            .any(|(_, p)| p.starts_with("/api/v1/pods?") && p.contains("continue=")),
        "{:?}",
        c.api.requests()
    );
    assert!(
        c.api.requests().iter().any(|(m, p)| m == "GET"
            && p.contains("/api/v1/namespaces/x/pods")
            && p.contains("labelSelector=app%3Dweb")),
        "{:?}",
        c.api.requests()
    );

    // kubectl logs reads the log subresource, tail and previous instance included.
    c.api
        .set_logs("x", "web-1", "main", "starting\nlistening on :8080\n");
    c.api
        .set_previous_logs("x", "web-1", "main", "panic: out of memory\n");
    let (code, out, err) = c.kubectl(&["logs", "-n", "x", "web-1", "--tail=1"]).await;
    assert_eq!((code, out.as_str()), (0, "listening on :8080\n"), "{err}");
    let (code, out, err) = c.kubectl(&["logs", "-n", "x", "web-1", "--previous"]).await;
    assert_eq!((code, out.as_str()), (0, "panic: out of memory\n"), "{err}");

    // A CRD kind by resource.group, as discovery lists it.
    c.api.put(
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                     "metadata": {"name": "shop", "namespace": "argocd"},
                     "spec": {"project": "default"}}),
    );
    let (code, out, err) = c
        .kubectl(&["get", "apps.argoproj.io", "-n", "argocd"])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("shop"), "{out}");

    // A pod that is not there is kubectl's NotFound, from the server's Status.
    let (code, _, err) = c.kubectl(&["get", "pod", "-n", "x", "nope"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("pods \"nope\" not found"), "{err}");
}

const MANIFEST: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: apps
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.27
";

#[tokio::test]
async fn kubectl_server_side_apply_dry_run_stores_nothing_then_apply_and_diff() {
    let c = Cluster::start().await;
    c.api
        .put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}));
    let manifest = c.file("manifest.yaml", MANIFEST);
    let manifest = manifest.to_str().unwrap();

    let (code, out, err) = c
        .kubectl(&[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--validate=false",
            "-f",
            manifest,
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("deployment.apps/web serverside-applied (server dry run)"),
        "{out}"
    );
    assert!(
        c.api
            .get("apps/v1", "Deployment", Some("apps"), "web")
            .is_none()
    );
    let (code, _, err) = c.kubectl(&["get", "deployment", "-n", "apps", "web"]).await;
    assert_ne!(code, 0, "the dry run stored the deployment");
    assert!(err.contains("not found"), "{err}");

    let (code, out, err) = c
        .kubectl(&["apply", "--server-side", "--validate=false", "-f", manifest])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    let live = c
        .api
        .get("apps/v1", "Deployment", Some("apps"), "web")
        .expect("stored");
    assert_eq!(live["spec"]["replicas"], 2);
    assert_eq!(live["metadata"]["generation"], 1);
    assert_eq!(live["metadata"]["managedFields"][0]["manager"], "kubectl");
    assert_eq!(live["metadata"]["managedFields"][0]["operation"], "Apply");

    // Unchanged: no difference, exit 0.
    let (code, out, err) = c.kubectl(&["diff", "--server-side", "-f", manifest]).await;
    assert_eq!(code, 0, "diff of the applied manifest: {out}{err}");

    // Changed: exit 1, the field in the unified diff; nothing stored.
    let changed = c.file(
        "changed.yaml",
        &MANIFEST.replace("replicas: 2", "replicas: 5"),
    );
    let (code, out, err) = c
        .kubectl(&["diff", "--server-side", "-f", changed.to_str().unwrap()])
        .await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("-  replicas: 2") && out.contains("+  replicas: 5"),
        "{out}"
    );
    // The client-side diff (a dry-run patch) sees the same change.
    let (code, out, err) = c.kubectl(&["diff", "-f", changed.to_str().unwrap()]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("+  replicas: 5"), "{out}");
    let live = c
        .api
        .get("apps/v1", "Deployment", Some("apps"), "web")
        .unwrap();
    assert_eq!(live["spec"]["replicas"], 2, "diff changed the live object");
}

#[tokio::test]
async fn kubectl_authenticates_by_token_or_client_cert_and_rejects_a_wrong_token() {
    let c = Cluster::start().await;
    let (code, out, err) = c
        .kubectl(&["--context", "standin-cert", "get", "namespaces"])
        .await;
    assert_eq!(code, 0, "client certificate: {err}");
    assert!(out.contains("kube-system"), "{out}");

    let text = std::fs::read_to_string(c.kubeconfig()).unwrap();
    let wrong = c.file("wrong", &text.replace(&c.api.token(), "not-the-token"));
    let (code, out, err) = c.kubectl_with(&wrong, &["get", "namespaces"]).await;
    assert_ne!(code, 0, "a wrong token was accepted: {out}");
    assert!(
        err.contains("Unauthorized") || err.contains("must be logged in"),
        "{err}"
    );

    // kubectl prompts for a password when a user has no credentials, so the anonymous and
    // stranger cases go through reqwest, trusting only the stand-in's CA.
    let client = |identity: Option<reqwest::Identity>| {
        let mut b = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .tls_certs_only([reqwest::Certificate::from_pem(c.api.ca_pem().as_bytes()).unwrap()]);
        if let Some(i) = identity {
            b = b.identity(i);
        }
        b.build().unwrap()
    };
    let url = format!("{}/api/v1/namespaces", c.api.url());
    let resp = client(None)
        .get(&url)
        .send()
        .await
        .expect("TLS without a certificate");
    assert_eq!(resp.status().as_u16(), 401);
    let status: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(
        (status["kind"].as_str(), status["reason"].as_str()),
        (Some("Status"), Some("Unauthorized"))
    );

    let own = format!("{}{}", c.api.client_cert_pem(), c.api.client_key_pem());
    let resp = client(Some(reqwest::Identity::from_pem(own.as_bytes()).unwrap()))
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    // A client certificate from another CA is refused in the handshake, never taken as a user.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "standin-admin");
    let stranger = params.self_signed(&key).unwrap();
    let pem = format!("{}{}", stranger.pem(), key.serialize_pem());
    let got = client(Some(reqwest::Identity::from_pem(pem.as_bytes()).unwrap()))
        .get(&url)
        .send()
        .await;
    match got {
        Err(_) => {}
        Ok(r) => panic!("a stranger's certificate got {}", r.status()),
    }
}

/// The stand-in Argo CD through plain HTTP with its token: (status, body).
async fn argo(
    api: &infra_tests::argo::ArgoApi,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (u16, Value) {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    let mut req = client.request(method.parse().unwrap(), format!("{}{path}", api.url()));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.expect("stand-in Argo CD answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

#[tokio::test]
async fn argo_standin_syncs_reports_health_and_rolls_back() {
    let api = infra_tests::argo::ArgoApi::start().await.unwrap();
    api.add_app("shop", "https://git.example/shop.git", "deploy/prod", "v1");
    let t = api.token();
    let t = Some(t.as_str());

    let (code, body) = argo(&api, "GET", "/api/v1/applications", None, None).await;
    assert_eq!((code, body["code"].as_u64()), (401, Some(16)), "{body}");
    let (code, _) = argo(
        &api,
        "GET",
        "/api/v1/applications",
        None,
        Some("not-the-token"),
    )
    .await;
    assert_eq!(code, 401);
    let (code, body) = argo(&api, "GET", "/api/v1/applications", None, t).await;
    assert_eq!(code, 200);
    assert_eq!(body["items"][0]["metadata"]["name"], "shop");
    let (code, body) = argo(&api, "GET", "/api/v1/applications/nope", None, t).await;
    assert_eq!(code, 404);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("\"nope\" not found"),
        "{body}"
    );

    // A dry run changes nothing; a sync deploys the revision and records it.
    api.set_sync_status("shop", "OutOfSync");
    let (code, _) = argo(
        &api,
        "POST",
        "/api/v1/applications/shop/sync",
        Some(json!({"revision": "v2", "dryRun": true})),
        t,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        api.app("shop")["status"]["history"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (code, app) = argo(
        &api,
        "POST",
        "/api/v1/applications/shop/sync",
        Some(json!({"revision": "v2", "prune": true})),
        t,
    )
    .await;
    assert_eq!(code, 200, "{app}");
    assert_eq!(app["status"]["sync"]["status"], "Synced");
    assert_eq!(app["status"]["sync"]["revision"], "v2");
    assert_eq!(app["status"]["health"]["status"], "Healthy");
    assert_eq!(app["status"]["history"][1]["id"], 1);

    // A failing sync leaves the app Degraded with the operation's message.
    api.fail_syncs("shop", "one or more objects failed to apply");
    let (_, app) = argo(
        &api,
        "POST",
        "/api/v1/applications/shop/sync",
        Some(json!({"revision": "v3"})),
        t,
    )
    .await;
    assert_eq!(app["status"]["health"]["status"], "Degraded");
    assert_eq!(app["status"]["operationState"]["phase"], "Failed");

    // Rollback to history id 1 redeploys v2; an unknown id is refused.
    let (code, body) = argo(
        &api,
        "POST",
        "/api/v1/applications/shop/rollback",
        Some(json!({"id": 42})),
        t,
    )
    .await;
    assert_eq!(code, 400);
    assert!(body["message"].as_str().unwrap().contains("42"), "{body}");
    let (code, app) = argo(
        &api,
        "POST",
        "/api/v1/applications/shop/rollback",
        Some(json!({"id": 1})),
        t,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(app["status"]["sync"]["revision"], "v2");
    api.set_health("shop", "Healthy");
    let (_, app) = argo(
        &api,
        "GET",
        "/api/v1/applications/shop?refresh=hard",
        None,
        t,
    )
    .await;
    assert_eq!(app["status"]["health"]["status"], "Healthy");
    assert!(
        api.requests()
            .iter()
            .any(|(m, p)| m == "GET" && p.ends_with("?refresh=hard"))
    );

    // A slow sync: Progressing and Running for two reads, then the outcome.
    api.succeed_syncs("shop");
    api.slow_syncs("shop", 2);
    let (_, app) = argo(
        &api,
        "POST",
        "/api/v1/applications/shop/sync",
        Some(json!({})),
        t,
    )
    .await;
    assert_eq!(app["status"]["health"]["status"], "Progressing");
    assert_eq!(
        app["status"]["sync"]["revision"], "v1",
        "the target revision by default"
    );
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (_, app) = argo(&api, "GET", "/api/v1/applications/shop", None, t).await;
        seen.push((
            app["status"]["health"]["status"]
                .as_str()
                .unwrap()
                .to_string(),
            app["status"]["operationState"]["phase"]
                .as_str()
                .unwrap()
                .to_string(),
        ));
    }
    let s = |h: &str, p: &str| (h.to_string(), p.to_string());
    assert_eq!(
        seen,
        [
            s("Progressing", "Running"),
            s("Healthy", "Succeeded"),
            s("Healthy", "Succeeded")
        ]
    );
}

/// One request to the stand-in with its token: (status, body as JSON, or as a string).
async fn kube(
    api: &KubeApi,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, Value) {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .tls_certs_only([reqwest::Certificate::from_pem(api.ca_pem().as_bytes()).unwrap()])
        .build()
        .unwrap();
    let mut req = client
        .request(method.parse().unwrap(), format!("{}{path}", api.url()))
        .bearer_auth(api.token());
    if !body.is_empty() {
        req = req
            .header("content-type", content_type)
            .body(body.to_string());
    }
    let resp = req.send().await.expect("stand-in answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn standin_pages_selects_and_serves_logs_and_events() {
    let api = KubeApi::start().await.unwrap();
    for i in 0..5 {
        let mut p = pod("p", &format!("pod-{i}"), "web");
        if i == 3 {
            p["status"]["phase"] = json!("Pending");
        }
        api.put(p);
    }
    // Pages of two, in name order, until no continue token.
    let (mut seen, mut cont, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let (code, page) = kube(
            &api,
            "GET",
            &format!("/api/v1/namespaces/p/pods?limit=2&continue={cont}"),
            "",
            "",
        )
        .await;
        assert_eq!(code, 200, "{page}");
        pages += 1;
        if pages == 1 {
            assert_eq!(page["metadata"]["remainingItemCount"], 3);
        }
        seen.extend(names(&page));
        match page["metadata"]["continue"].as_str() {
            Some(c) => cont = c.to_string(),
            None => break,
        }
    }
    assert_eq!((pages, seen.len()), (3, 5));
    assert_eq!(seen, ["pod-0", "pod-1", "pod-2", "pod-3", "pod-4"]);
    let (code, body) = kube(
        &api,
        "GET",
        "/api/v1/namespaces/p/pods?continue=garbage!",
        "",
        "",
    )
    .await;
    assert_eq!(code, 400, "{body}");

    let (_, list) = kube(
        &api,
        "GET",
        "/api/v1/pods?fieldSelector=status.phase%3DPending",
        "",
        "",
    )
    .await;
    assert_eq!(names(&list), ["pod-3"]);
    let (code, body) = kube(
        &api,
        "GET",
        "/api/v1/pods?fieldSelector=spec.replicas%3D1",
        "",
        "",
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        body["message"].as_str().unwrap().contains("spec.replicas"),
        "{body}"
    );

    // Logs: tail, since, previous, and the container checks.
    api.set_logs("p", "pod-0", "main", "one\ntwo\nthree\n");
    let (code, text) = kube(
        &api,
        "GET",
        "/api/v1/namespaces/p/pods/pod-0/log?tailLines=2",
        "",
        "",
    )
    .await;
    assert_eq!((code, text), (200, json!("two\nthree\n")));
    api.push_log_line(
        "p",
        "pod-1",
        "main",
        "old",
        std::time::Duration::from_secs(600),
    );
    api.push_log_line("p", "pod-1", "main", "new", std::time::Duration::ZERO);
    let (_, text) = kube(
        &api,
        "GET",
        "/api/v1/namespaces/p/pods/pod-1/log?container=main&sinceSeconds=60",
        "",
        "",
    )
    .await;
    assert_eq!(text, json!("new\n"));
    let (code, body) = kube(
        &api,
        "GET",
        "/api/v1/namespaces/p/pods/pod-0/log?previous=true",
        "",
        "",
    )
    .await;
    assert_eq!(code, 400, "{body}");
    api.set_previous_logs("p", "pod-0", "main", "panic: boom\n");
    let (_, text) = kube(
        &api,
        "GET",
        "/api/v1/namespaces/p/pods/pod-0/log?previous=true",
        "",
        "",
    )
    .await;
    assert_eq!(text, json!("panic: boom\n"));
    let (code, body) = kube(
        &api,
        "GET",
        "/api/v1/namespaces/p/pods/pod-0/log?container=sidecar",
        "",
        "",
    )
    .await;
    assert_eq!(code, 400);
    assert!(body["message"].as_str().unwrap().contains("main"), "{body}");

    // Events about one pod, by involvedObject.
    api.add_event(
        "Pod",
        "p",
        "pod-3",
        "Warning",
        "FailedScheduling",
        "0/3 nodes are available",
    );
    api.add_event("Pod", "p", "pod-0", "Normal", "Pulled", "image pulled");
    let (_, list) = kube(
        &api,
        "GET",
        "/api/v1/namespaces/p/events?fieldSelector=involvedObject.name%3Dpod-3",
        "",
        "",
    )
    .await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["reason"], "FailedScheduling");
    assert_eq!(
        items[0]["involvedObject"]["uid"],
        api.get("v1", "Pod", Some("p"), "pod-3").unwrap()["metadata"]["uid"]
    );
}

#[tokio::test]
async fn standin_writes_keep_metadata_and_refuse_as_the_api_server_does() {
    let api = KubeApi::start().await.unwrap();
    api.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}));
    let cm = |name: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}).to_string()
    };
    let (code, created) = kube(
        &api,
        "POST",
        "/api/v1/namespaces/apps/configmaps",
        "application/json",
        &cm("conf"),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    assert!(
        created["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty())
    );
    assert!(created["metadata"]["creationTimestamp"].is_string());
    let (code, body) = kube(
        &api,
        "POST",
        "/api/v1/namespaces/apps/configmaps",
        "application/json",
        &cm("conf"),
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (409, Some("AlreadyExists"))
    );
    let (code, body) = kube(
        &api,
        "POST",
        "/api/v1/namespaces/apps/configmaps",
        "application/json",
        &cm("Bad_Name"),
    )
    .await;
    assert_eq!((code, body["reason"].as_str()), (422, Some("Invalid")));
    assert!(
        body["message"].as_str().unwrap().contains("metadata.name"),
        "{body}"
    );
    let (code, body) = kube(
        &api,
        "POST",
        "/api/v1/namespaces/nope/configmaps",
        "application/json",
        &cm("c"),
    )
    .await;
    assert_eq!(code, 404);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("namespaces \"nope\" not found"),
        "{body}"
    );
    let mut stale = created.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    let (code, body) = kube(
        &api,
        "PUT",
        "/api/v1/namespaces/apps/configmaps/conf",
        "application/json",
        &stale.to_string(),
    )
    .await;
    assert_eq!((code, body["reason"].as_str()), (409, Some("Conflict")));

    // Server-side apply: ownership, conflicts, force, dry run, generation.
    let deploy = |replicas: u32| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "apps"},
               "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
        .to_string()
    };
    let path = "/apis/apps/v1/namespaces/apps/deployments/web";
    let ssa = "application/apply-patch+yaml";
    let (code, body) = kube(&api, "PATCH", path, ssa, &deploy(1)).await;
    assert_eq!(code, 400, "apply without fieldManager: {body}");
    let (code, first) = kube(
        &api,
        "PATCH",
        &format!("{path}?fieldManager=infra"),
        ssa,
        &deploy(1),
    )
    .await;
    assert_eq!(code, 201, "{first}");
    let (code, body) = kube(
        &api,
        "PATCH",
        &format!("{path}?fieldManager=other"),
        ssa,
        &deploy(2),
    )
    .await;
    assert_eq!(code, 409, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("conflict with \"infra\""),
        "{body}"
    );
    let (code, dry) = kube(
        &api,
        "PATCH",
        &format!("{path}?fieldManager=infra&dryRun=All"),
        ssa,
        &deploy(4),
    )
    .await;
    assert_eq!((code, &dry["spec"]["replicas"]), (200, &json!(4)));
    assert_eq!(
        api.get("apps/v1", "Deployment", Some("apps"), "web")
            .unwrap()["spec"]["replicas"],
        1
    );
    let (code, forced) = kube(
        &api,
        "PATCH",
        &format!("{path}?fieldManager=other&force=true"),
        ssa,
        &deploy(2),
    )
    .await;
    assert_eq!(code, 200, "{forced}");
    assert_eq!(forced["metadata"]["generation"], 2);
    assert_ne!(
        forced["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
    // Status moves the resourceVersion, not the generation; a main-resource write keeps status.
    api.patch_status(
        "apps/v1",
        "Deployment",
        Some("apps"),
        "web",
        json!({"readyReplicas": 2}),
    );
    let live = api
        .get("apps/v1", "Deployment", Some("apps"), "web")
        .unwrap();
    assert_eq!(
        (
            live["metadata"]["generation"].as_i64(),
            live["status"]["readyReplicas"].as_i64()
        ),
        (Some(2), Some(2))
    );
    let (code, patched) = kube(
        &api,
        "PATCH",
        path,
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"team":"a"}},"status":{"readyReplicas":0}}"#,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        (
            patched["metadata"]["labels"]["team"].as_str(),
            patched["status"]["readyReplicas"].as_i64()
        ),
        (Some("a"), Some(2))
    );

    // A CRD joins discovery; its objects are served.
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true}]}});
    let (code, _) = kube(
        &api,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        "application/json",
        &crd.to_string(),
    )
    .await;
    assert_eq!(code, 201);
    let (_, groups) = kube(&api, "GET", "/apis", "", "").await;
    assert!(
        groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "example.com"),
        "{groups}"
    );
    let (_, res) = kube(&api, "GET", "/apis/example.com/v1", "", "").await;
    assert_eq!(res["resources"][0]["kind"], "Widget");
    let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}});
    let (code, _) = kube(
        &api,
        "POST",
        "/apis/example.com/v1/namespaces/apps/widgets",
        "application/json",
        &w.to_string(),
    )
    .await;
    assert_eq!(code, 201);

    // RBAC as the test sets it; metrics served once given, read-only, switchable.
    let (code, _) = kube(&api, "GET", "/apis/metrics.k8s.io/v1beta1", "", "").await;
    assert_eq!(
        code, 404,
        "metrics.k8s.io served before the test gave metrics"
    );
    api.forbid("secrets");
    let (code, body) = kube(&api, "GET", "/api/v1/namespaces/apps/secrets", "", "").await;
    assert_eq!((code, body["reason"].as_str()), (403, Some("Forbidden")));
    api.set_pod_metrics("apps", "web-1", &[("web", "250m", "64Mi")]);
    let (code, list) = kube(
        &api,
        "GET",
        "/apis/metrics.k8s.io/v1beta1/namespaces/apps/pods",
        "",
        "",
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(list["items"][0]["containers"][0]["usage"]["cpu"], "250m");
    let (code, _) = kube(
        &api,
        "DELETE",
        "/apis/metrics.k8s.io/v1beta1/namespaces/apps/pods/web-1",
        "",
        "",
    )
    .await;
    assert_eq!(code, 405);
    api.set_metrics_available(false);
    let (code, _) = kube(
        &api,
        "GET",
        "/apis/metrics.k8s.io/v1beta1/namespaces/apps/pods",
        "",
        "",
    )
    .await;
    assert_eq!(code, 404);

    // Deleting a namespace takes its objects with it.
    let (code, _) = kube(&api, "DELETE", "/api/v1/namespaces/apps", "", "").await;
    assert_eq!(code, 200);
    assert!(api.get("v1", "ConfigMap", Some("apps"), "conf").is_none());
}

#[tokio::test]
async fn kubectl_shows_what_the_controller_helpers_set() {
    let c = Cluster::start().await;
    c.api.put(pod("shop", "api-1", "api"));
    c.api.crash_loop("shop", "api-1", "main", 4, "OOMKilled");
    let (code, out, err) = c.kubectl(&["get", "pods", "-n", "shop"]).await;
    assert_eq!(code, 0, "{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("api-1"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        row.contains("0/1") && row.contains("CrashLoopBackOff") && row.contains(" 4 "),
        "{row}"
    );
    let (_, out, _) = c
        .kubectl(&[
            "get",
            "events",
            "-n",
            "shop",
            "--field-selector",
            "involvedObject.name=api-1",
            "-o",
            "json",
        ])
        .await;
    let events: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(events["items"][0]["reason"], "BackOff", "{events}");
    let p = c.api.get("v1", "Pod", Some("shop"), "api-1").unwrap();
    assert_eq!(
        p["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"],
        137
    );

    c.api
        .put(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                     "metadata": {"name": "api", "namespace": "shop"}, "spec": {"replicas": 3}}));
    c.api.complete_rollout("Deployment", "shop", "api");
    let (code, out, err) = c.kubectl(&["get", "deployments", "-n", "shop"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("api") && l.contains("3/3")),
        "{out}"
    );
    c.api.stall_rollout(
        "shop",
        "api",
        "ReplicaSet \"api-2\" has timed out progressing.",
    );
    let d = c
        .api
        .get("apps/v1", "Deployment", Some("shop"), "api")
        .unwrap();
    assert_eq!(
        d["status"]["conditions"][1]["reason"],
        "ProgressDeadlineExceeded"
    );
    assert_eq!(d["status"]["availableReplicas"], 0);
}

#[tokio::test]
async fn standin_flux_controller_reconciles_on_request() {
    let api = KubeApi::start().await.unwrap();
    let ks = |name: &str| {
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
               "metadata": {"name": name, "namespace": "flux-system"},
               "spec": {"path": "./apps", "sourceRef": {"kind": "GitRepository", "name": "repo"}}})
    };
    api.put(ks("apps"));
    api.put(ks("broken"));
    api.set_flux_outcome(
        "Kustomization",
        "flux-system",
        "broken",
        false,
        "BuildFailed",
        "kustomize build failed",
    );
    let path = |n: &str| {
        format!("/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/{n}")
    };
    let patch = r#"{"metadata":{"annotations":{"reconcile.fluxcd.io/requestedAt":"2026-12-02T20:00:00Z"}}}"#;

    // Nothing happens without a request.
    assert!(
        api.get(
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            Some("flux-system"),
            "apps"
        )
        .unwrap()["status"]
            .is_null()
    );
    let (code, _) = kube(
        &api,
        "PATCH",
        &path("apps"),
        "application/merge-patch+json",
        patch,
    )
    .await;
    assert_eq!(code, 200);
    let (_, live) = kube(&api, "GET", &path("apps"), "", "").await;
    assert_eq!(
        live["status"]["lastHandledReconcileAt"], "2026-12-02T20:00:00Z",
        "{live}"
    );
    assert_eq!(live["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(live["status"]["conditions"][0]["status"], "True");

    let (_, _) = kube(
        &api,
        "PATCH",
        &path("broken"),
        "application/merge-patch+json",
        patch,
    )
    .await;
    let (_, live) = kube(&api, "GET", &path("broken"), "", "").await;
    assert_eq!(live["status"]["conditions"][0]["status"], "False");
    assert_eq!(live["status"]["conditions"][0]["reason"], "BuildFailed");
}
