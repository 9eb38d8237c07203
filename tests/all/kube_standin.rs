//! The stand-in Kubernetes API checked against the real `kubectl` (/usr/bin/kubectl): if the
//! stand-in drifted from the protocol, these fail. `--validate=false` on apply and diff: the
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
        .kubectl(&["get", "pods", "-A", "-l", "app in (web)", "-o", "json"])
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
    assert!(
        c.api.requests().iter().any(|(m, p)| m == "GET"
            && p.contains("/api/v1/namespaces/x/pods")
            && p.contains("labelSelector=app%3Dweb")),
        "{:?}",
        c.api.requests()
    );

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
    let client = reqwest::Client::new();
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
}
