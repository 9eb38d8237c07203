//! `kubernetes` profiles through the real binary over MCP: the built-in `http` plugin names a
//! profile and a path, and the host pins the cluster's CA, injects the token or presents the
//! client certificate, keeps the credentials on that one API server and scrubs them from
//! everything. The cluster is the tests' stand-in API server ([`KubeApi`]: a loopback HTTPS
//! server with its own CA that accepts one token and one client certificate).

use base64::Engine as _;
use infra_tests::fixture_server::FixtureServer;
use infra_tests::kube::KubeApi;
use infra_tests::{Home, contains};
use serde_json::{Value, json};

/// The stand-in's credentials as files outside the state directory (as a user keeps them),
/// and a kubeconfig naming them inline (contexts `standin` and `standin-cert`).
struct Creds {
    dir: tempfile::TempDir,
}

impl Creds {
    fn new(api: &KubeApi) -> Creds {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("ca.pem"), api.ca_pem()).unwrap();
        std::fs::write(p.join("token"), api.token()).unwrap();
        std::fs::write(p.join("client.crt"), api.client_cert_pem()).unwrap();
        std::fs::write(p.join("client.key"), api.client_key_pem()).unwrap();
        api.write_kubeconfig(&p.join("kubeconfig")).unwrap();
        Creds { dir }
    }

    fn file(&self, name: &str) -> String {
        format!("file:{}", self.dir.path().join(name).display())
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

/// The four ways to name the stand-in: inline token, inline client cert, and a kubeconfig
/// context of each kind.
fn profiles(api: &KubeApi, c: &Creds) -> Value {
    json!({
        "lab": {"type": "kubernetes", "server": api.url(), "ca": c.file("ca.pem"), "token": c.file("token")},
        "lab-cert": {"type": "kubernetes", "server": api.url(), "ca": c.file("ca.pem"),
                     "client_cert": c.file("client.crt"), "client_key": c.file("client.key")},
        "kc": {"type": "kubernetes", "kubeconfig": c.file("kubeconfig"), "context": "standin", "protected": true},
        "kc-cert": {"type": "kubernetes", "kubeconfig": c.file("kubeconfig"), "context": "standin-cert"},
    })
}

fn message(out: &Value) -> &str {
    out["error"]["message"].as_str().unwrap_or_default()
}

/// A policy whose http plugin may reach no host by name at all, only its profiles: the
/// cluster server is reachable because the profile names it.
const PROFILES_ONLY: &str = "[plugin.http.http]\nhosts = [\"no-such-host.invalid\"]\nprofiles = [\"*\"]\n[plugin.http.artifacts]\n[plugin.http.log]\n";

#[tokio::test]
async fn token_and_client_cert_profiles_reach_the_cluster_by_relative_path() {
    let api = KubeApi::start().await.expect("stand-in API");
    api.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}));
    let creds = Creds::new(&api);
    let home = Home::new();
    home.policy(PROFILES_ONLY).profiles(&profiles(&api, &creds));
    let mcp = home.mcp().await;
    for profile in ["lab", "lab-cert", "kc", "kc-cert"] {
        let (err, out) = mcp
            .call(
                "http",
                json!({"action": "request", "profile": profile, "url": "/api/v1/namespaces/apps"}),
            )
            .await;
        assert!(!err, "{profile}: {out}");
        assert_eq!(out["status"], 200, "{profile}: {out}");
        assert_eq!(out["json"]["metadata"]["name"], "apps", "{profile}: {out}");
    }
    // A path without the leading slash, and a query, join the same way.
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "profile": "lab", "url": "api/v1/namespaces", "query": {"limit": 1}}),
        )
        .await;
    assert!(!err, "{out}");
    assert_eq!(out["json"]["kind"], "NamespaceList", "{out}");
    let seen = api.requests();
    assert!(
        seen.iter().any(|(m, p)| m == "GET"
            && p.starts_with("/api/v1/namespaces?")
            && p.contains("limit=1")),
        "{seen:?}"
    );
    // The same URL with no profile: the policy grants no such host.
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "url": format!("{}/api/v1/namespaces", api.url())}),
        )
        .await;
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "denied", "{out}");
    mcp.close().await;
}

#[tokio::test]
async fn a_wrong_ca_fails_closed_and_says_which_profile() {
    let api = KubeApi::start().await.expect("stand-in API");
    let other = KubeApi::start()
        .await
        .expect("a second stand-in, for its CA");
    let creds = Creds::new(&api);
    std::fs::write(creds.path("other-ca.pem"), other.ca_pem()).unwrap();
    let home = Home::new();
    home.profiles(&json!({
        "wrong-ca": {"type": "kubernetes", "server": api.url(), "ca": creds.file("other-ca.pem"), "token": creds.file("token")},
    }));
    let before = api.requests().len();
    let mcp = home.mcp().await;
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "profile": "wrong-ca", "url": "/api/v1/namespaces"}),
        )
        .await;
    mcp.close().await;
    assert!(err, "{out}");
    assert_eq!(
        out["error"]["kind"], "failed",
        "a refusal, not a timeout: {out}"
    );
    let msg = message(&out);
    assert!(
        msg.contains("certificate") && msg.contains("wrong-ca") && msg.contains("`ca`"),
        "{out}"
    );
    assert!(!msg.contains(&api.token()), "{out}");
    assert_eq!(
        api.requests().len(),
        before,
        "no request may reach a server the CA does not pin"
    );
}

#[tokio::test]
async fn an_exec_kubeconfig_is_refused_and_runs_nothing() {
    let api = KubeApi::start().await.expect("stand-in API");
    let creds = Creds::new(&api);
    let marker = creds.path("exec-ran");
    let ca = base64::engine::general_purpose::STANDARD.encode(api.ca_pem());
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: eks\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\n\
         users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      args: [\"-c\", \"touch {}\"]\n\
         contexts:\n- name: eks\n  context:\n    cluster: c\n    user: u\n",
        api.url(),
        marker.display()
    );
    std::fs::write(creds.path("exec-kubeconfig"), kubeconfig).unwrap();
    let insecure = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\nclusters:\n- name: c\n  cluster:\n    server: {}\n    insecure-skip-tls-verify: true\n\
         users:\n- name: u\n  user:\n    token: {}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n",
        api.url(),
        api.token()
    );
    std::fs::write(creds.path("insecure-kubeconfig"), insecure).unwrap();
    let home = Home::new();
    home.profiles(&json!({
        "eks": {"type": "kubernetes", "kubeconfig": creds.file("exec-kubeconfig")},
        "insecure": {"type": "kubernetes", "kubeconfig": creds.file("insecure-kubeconfig")},
    }));
    let mcp = home.mcp().await;
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "profile": "eks", "url": "/api/v1/namespaces"}),
        )
        .await;
    assert!(err, "{out}");
    let msg = message(&out);
    assert!(
        msg.contains("profile 'eks'")
            && msg.contains("`exec`")
            && msg.contains("kubectl create token"),
        "{out}"
    );
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "profile": "insecure", "url": "/api/v1/namespaces"}),
        )
        .await;
    assert!(err, "{out}");
    assert!(
        message(&out).contains("insecure-skip-tls-verify: true is refused"),
        "{out}"
    );
    assert!(
        !out.to_string().contains(&api.token()),
        "the refusal quotes no token: {out}"
    );
    // Still serving after both refusals.
    let (err, _) = mcp.call("help", json!({})).await;
    assert!(!err);
    mcp.close().await;
    assert!(!marker.exists(), "the exec command ran");
    assert!(
        api.requests().is_empty(),
        "a refused profile sent requests: {:?}",
        api.requests()
    );
}

#[tokio::test]
async fn an_absolute_url_off_the_cluster_is_denied_and_the_credentials_stay_home() {
    let api = KubeApi::start().await.expect("stand-in API");
    let elsewhere = FixtureServer::start().await.expect("fixture server");
    let creds = Creds::new(&api);
    let home = Home::new();
    home.profiles(&profiles(&api, &creds));
    let mcp = home.mcp().await;
    // On the server's own origin an absolute URL is fine.
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "profile": "lab", "url": format!("{}/api/v1/namespaces", api.url())}),
        )
        .await;
    assert!(!err, "{out}");
    let port = api.url().rsplit(':').next().unwrap().to_string();
    for url in [
        format!("{}/echo", elsewhere.base_url()),
        format!("https://localhost:{port}/api/v1/namespaces"),
        format!(
            "https://127.0.0.1:{port}@{}/echo",
            elsewhere.base_url().trim_start_matches("http://")
        ),
    ] {
        for profile in ["lab", "kc-cert"] {
            let (err, out) = mcp
                .call(
                    "http",
                    json!({"action": "request", "profile": profile, "url": url}),
                )
                .await;
            assert!(err, "{profile} {url}: {out}");
            assert_eq!(out["error"]["kind"], "denied", "{out}");
            let msg = message(&out);
            assert!(
                msg.contains("url:") && msg.contains(profile) && msg.contains("relative"),
                "{out}"
            );
        }
    }
    // The agent may not set the Authorization header the profile sets.
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "request", "profile": "lab", "url": "/api", "headers": {"Authorization": "Bearer mine"}}),
        )
        .await;
    assert!(err, "{out}");
    mcp.close().await;
    assert!(
        elsewhere.seen().is_empty(),
        "the other server was contacted"
    );
    let audit = std::fs::read_to_string(home.path().join("audit.jsonl")).unwrap();
    assert!(
        audit.contains("is not on the API server"),
        "the denial is audited"
    );
}

#[tokio::test]
async fn tokens_and_client_keys_never_leave_the_host() {
    let api = KubeApi::start().await.expect("stand-in API");
    let creds = Creds::new(&api);
    let token = api.token();
    let key = api.client_key_pem();
    let key_b64 = base64::engine::general_purpose::STANDARD.encode(&key);
    let key_line = key
        .lines()
        .find(|l| !l.starts_with("-----") && l.len() > 40)
        .expect("a key body line")
        .to_string();
    // A user who stored the credentials in the cluster: reading them back echoes every form.
    api.put(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "leak", "namespace": "default"},
        "data": {"token": token, "key": key, "key_b64": key_b64}}));
    let home = Home::new();
    home.profiles(&profiles(&api, &creds));
    let mcp = home.mcp().await;
    let mut outputs = Vec::new();
    for profile in ["lab", "lab-cert", "kc", "kc-cert"] {
        let (err, out) = mcp
            .call(
                "http",
                json!({"action": "request", "profile": profile, "url": "/api/v1/namespaces/default/configmaps/leak"}),
            )
            .await;
        assert!(!err, "{profile}: {out}");
        assert_eq!(out["json"]["data"]["token"], "[REDACTED]", "{out}");
        outputs.push(out);
    }
    // The token in a path: the server's 404 message quotes it.
    outputs.push(
        mcp.call(
            "http",
            json!({"action": "request", "profile": "kc", "url": format!("/api/v1/namespaces/{token}")}),
        )
        .await
        .1,
    );
    // Into an artifact.
    let (err, out) = mcp
        .call(
            "http",
            json!({"action": "download", "profile": "kc-cert", "url": "/api/v1/namespaces/default/configmaps/leak"}),
        )
        .await;
    assert!(!err, "{out}");
    outputs.push(out);
    let stderr = mcp.close().await;
    for out in &outputs {
        let text = out.to_string();
        for (what, secret) in [
            ("token", token.as_str()),
            ("key line", key_line.as_str()),
            ("base64 key", key_b64.as_str()),
        ] {
            assert!(!text.contains(secret), "the {what} leaked: {text}");
        }
    }
    let everything = home.all_bytes();
    for secret in [&token, &key_line, &key_b64] {
        assert!(
            !contains(&everything, secret),
            "a state file holds a secret"
        );
        assert!(!stderr.contains(secret.as_str()), "stderr holds a secret");
    }
    assert!(
        contains(&everything, "[REDACTED]"),
        "the scrubbed download was stored"
    );
}

// `infra call` blocks a thread while the stand-in serves: two workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granted_profiles_are_listed_without_secrets() {
    let api = KubeApi::start().await.expect("stand-in API");
    let creds = Creds::new(&api);
    let home = Home::new();
    let mut all = profiles(&api, &creds);
    all["api"] = json!({"type": "http", "base_url": "https://api.example", "auth": {"type": "bearer", "token": creds.file("token")}});
    all["db"] = json!({"type": "postgres", "host": "127.0.0.1", "user": "u", "database": "d"});
    home.profiles(&all);
    home.install_plugin(
        "hostile",
        &infra_tests::test_plugin("hostile"),
        include_str!("../plugins/hostile/plugin.toml"),
    );
    home.policy("[plugin.hostile.http]\nprofiles = [\"kc*\", \"api\", \"db\"]\n");
    let (err, out, _) = home.call("hostile", &json!({"action": "http_profiles"}));
    assert!(!err, "{out}");
    let listed = &out["data"]["profiles"];
    assert_eq!(
        listed,
        &json!([
            {"name": "api", "kind": "http", "server": "https://api.example", "protected": false},
            {"name": "kc", "kind": "kubernetes", "server": api.url(), "protected": true},
            {"name": "kc-cert", "kind": "kubernetes", "server": api.url(), "protected": false},
        ]),
        "only granted http/kubernetes profiles: {out}"
    );
    // A granted profile aimed at another host by a hostile plugin: denied.
    let (err, out, _) = home.call(
        "hostile",
        &json!({"action": "http_ungranted", "profile": "kc", "url": "https://example.com/api"}),
    );
    assert!(err, "{out}");
    assert_eq!(out["error"]["kind"], "denied", "{out}");
    // An ungranted one: denied before anything is read.
    let (err, out, _) = home.call(
        "hostile",
        &json!({"action": "http_ungranted", "profile": "lab", "url": "/api"}),
    );
    assert!(err, "{out}");
    assert!(
        message(&out).contains("no grant for http profile 'lab'"),
        "{out}"
    );
    assert!(!out.to_string().contains(&api.token()));

    // The reviewer's listing shows every profile with its kind and `protected`, no secret.
    let out = home.command().arg("plugins").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&text).unwrap();
    let kc = v["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "kc")
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(kc["kind"], "kubernetes");
    assert_eq!(kc["protected"], true);
    assert!(!text.contains(&api.token()), "{text}");
}

/// The discovery documents the host keeps for the k8s plugin are no shortcut for a hostile
/// plugin: asking through the same profile, path and `Accept`, it meets the grant check a
/// request would meet, and gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_discovery_is_given_only_to_a_plugin_granted_the_profile() {
    let api = KubeApi::start().await.expect("stand-in API");
    let creds = Creds::new(&api);
    let home = Home::new();
    home.profiles(&profiles(&api, &creds));
    home.install_plugin(
        "hostile",
        &infra_tests::test_plugin("hostile"),
        include_str!("../plugins/hostile/plugin.toml"),
    );
    home.policy(
        "[plugin.k8s.http]\nprofiles = [\"lab\"]\n[plugin.k8s.artifacts]\n[plugin.k8s.log]\n\
         [plugin.hostile.http]\nhosts = [\"no-such-host.invalid\"]\n",
    );
    let mcp = home.mcp().await;
    let (err, out) = mcp
        .call("k8s", json!({"action": "list", "profile": "lab", "kind": "deployments", "namespace": "default"}))
        .await;
    assert!(!err, "{out}");
    let reads = api.requests().len();
    for path in ["/api/v1", "/apis", "/apis/apps/v1"] {
        let (err, out) = mcp
            .call(
                "hostile",
                json!({"action": "http_ungranted", "profile": "lab", "url": path,
                       "accept": "application/json"}),
            )
            .await;
        assert!(err, "{path}: {out}");
        assert!(
            message(&out).contains("no grant for http profile 'lab'"),
            "{path}: {out}"
        );
        assert!(
            !out.to_string().contains("APIResourceList"),
            "{path}: {out}"
        );
    }
    assert_eq!(
        api.requests().len(),
        reads,
        "nothing reached the API either"
    );
    mcp.close().await;
}
