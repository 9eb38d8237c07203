//! A stand-in Kubernetes API server for the tests: loopback HTTPS with its own CA, bearer-token
//! and client-certificate auth, discovery, objects of core/v1, apps/v1 and CRDs (Argo CD,
//! Flux), server-side apply with dry runs and field ownership, selectors, pagination, pod logs
//! and events — enough of the real protocol that `/usr/bin/kubectl` works against it
//! (tests/all/kube_standin.rs). No real API server can run on the test machines; this one is
//! named a stand-in wherever it is used. The handle moves status the way controllers would.
//!
//! Not served: watch (a 405 that says to poll), OpenAPI documents (kubectl runs with
//! `--validate=false` against it), aggregated discovery (clients fall back to the plain form),
//! strategic merge patch by list keys (treated as a merge patch), admission and RBAC
//! (`forbid` makes a resource answer 403). metrics.k8s.io is served once the test gives metrics.

mod apply;
mod controllers;
mod discovery;
mod events;
mod flux;
mod logs;
mod resources;
mod rest;
mod select;
mod server;
mod store;
mod table;
mod tls;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::{Value, json};

use server::Shared;
use store::Store;

pub use store::rfc3339;

/// A running stand-in API server; stops when dropped.
pub struct KubeApi {
    addr: SocketAddr,
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl KubeApi {
    /// Starts on 127.0.0.1 on a free port with a fresh CA, token and client certificate.
    pub async fn start() -> anyhow::Result<KubeApi> {
        let pki = tls::make().context("making the stand-in's certificates")?;
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            token: crate::canary("kube-token"),
        });
        let task = tokio::spawn(server::serve(listener, pki.server.clone(), shared.clone()));
        let api = KubeApi {
            addr,
            ca_pem: pki.ca_pem,
            client_cert_pem: pki.client_cert_pem,
            client_key_pem: pki.client_key_pem,
            shared,
            task,
        };
        // A fresh cluster has these namespaces.
        for ns in ["default", "kube-system"] {
            api.put(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns},
                           "status": {"phase": "Active"}}),
            );
        }
        Ok(api)
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.shared.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The stand-in's CA certificate (PEM); the server certificate is signed by it.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// A bearer token the server accepts (random per run: a canary for leak checks).
    pub fn token(&self) -> String {
        self.shared.token.clone()
    }

    /// A client certificate the server accepts (PEM).
    pub fn client_cert_pem(&self) -> String {
        self.client_cert_pem.clone()
    }

    /// The client certificate's private key (PEM).
    pub fn client_key_pem(&self) -> String {
        self.client_key_pem.clone()
    }

    /// Writes a kubeconfig (mode 0600) with contexts `standin` (token, the current one) and
    /// `standin-cert` (client certificate), the CA inline.
    pub fn write_kubeconfig(&self, path: &Path) -> anyhow::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let config = json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "standin",
            "clusters": [{"name": "standin", "cluster": {
                "server": self.url(), "certificate-authority-data": b64(&self.ca_pem)}}],
            "users": [
                {"name": "standin-token", "user": {"token": self.token()}},
                {"name": "standin-cert", "user": {
                    "client-certificate-data": b64(&self.client_cert_pem),
                    "client-key-data": b64(&self.client_key_pem)}}],
            "contexts": [
                {"name": "standin", "context": {"cluster": "standin", "user": "standin-token"}},
                {"name": "standin-cert", "context": {"cluster": "standin", "user": "standin-cert"}}],
        });
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("writing kubeconfig {}", path.display()))?;
        f.write_all(serde_json::to_string_pretty(&config)?.as_bytes())?;
        Ok(())
    }

    /// Creates or replaces an object of any served kind (a CRD registers its kinds), as the
    /// cluster's own controllers would: no validation, status kept, the namespace created when
    /// missing. Panics on a kind the server does not serve.
    pub fn put(&self, obj: Value) {
        let mut store = self.store();
        let (av, kind) = (
            obj["apiVersion"].as_str().unwrap_or_default(),
            obj["kind"].as_str().unwrap_or_default(),
        );
        let res = store.resource_of(av, kind).unwrap_or_else(|| {
            panic!("stand-in: no resource for {av} {kind}; store its CRD first")
        });
        if res.read_only {
            // Metrics given: metrics-server is installed.
            store.metrics_off = false;
        }
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_else(|| panic!("stand-in put: metadata.name missing in {obj}"))
            .to_string();
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        if res.namespaced && !store.namespace_exists(&ns) {
            let ns_res = store.resource_of("v1", "Namespace").expect("namespaces");
            let ns_obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns},
                                "status": {"phase": "Active"}});
            let prepared = store.prepare(&ns_res, "", ns_obj, None);
            store.commit(&ns_res, "", prepared);
        }
        let created = obj["metadata"].get("creationTimestamp").cloned();
        let old = store.get(&res, &ns, &name).cloned();
        let mut prepared = store.prepare(&res, &ns, obj, old.as_ref());
        if let Some(t) = created {
            prepared["metadata"]["creationTimestamp"] = t;
        }
        store.commit(&res, &ns, prepared);
    }

    /// The stored object, as the API would return it.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let store = self.store();
        let res = store.resource_of(api_version, kind)?;
        store.get(&res, ns.unwrap_or(""), name).cloned()
    }

    /// Deletes an object (a namespace with its contents); true when it existed.
    pub fn delete(&self, api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> bool {
        let mut store = self.store();
        let Some(res) = store.resource_of(api_version, kind) else {
            return false;
        };
        store.remove(&res, ns.unwrap_or(""), name).is_some()
    }

    /// Merges `status` into the object's status (JSON merge patch: `null` removes a field), as
    /// a controller would; the resourceVersion moves, the generation does not. Panics when
    /// the object does not exist.
    pub fn patch_status(
        &self,
        api_version: &str,
        kind: &str,
        ns: Option<&str>,
        name: &str,
        status: Value,
    ) {
        let mut store = self.store();
        let res = store
            .resource_of(api_version, kind)
            .unwrap_or_else(|| panic!("stand-in: no resource for {api_version} {kind}"));
        let ns = ns.unwrap_or("");
        let mut obj = store
            .get(&res, ns, name)
            .cloned()
            .unwrap_or_else(|| panic!("stand-in patch_status: {kind} {ns}/{name} does not exist"));
        apply::merge_patch(&mut obj["status"], &status);
        store.commit(&res, ns, obj);
    }

    /// Sets a container's current log (every line written now).
    pub fn set_logs(&self, ns: &str, pod: &str, container: &str, text: &str) {
        self.store()
            .logs
            .set(ns, pod, container, false, text, Duration::ZERO);
    }

    /// Sets the log of the container's previous (terminated) instance.
    pub fn set_previous_logs(&self, ns: &str, pod: &str, container: &str, text: &str) {
        self.store()
            .logs
            .set(ns, pod, container, true, text, Duration::ZERO);
    }

    /// Appends a line to a container's current log as written `age` ago (for `sinceSeconds`).
    pub fn push_log_line(&self, ns: &str, pod: &str, container: &str, line: &str, age: Duration) {
        self.store().logs.push(ns, pod, container, line, age);
    }

    /// Records a core/v1 Event about an object of `kind` (e.g. "Pod", "Deployment"), `type_`
    /// "Normal" or "Warning", as the kubelet or a controller would.
    pub fn add_event(
        &self,
        kind: &str,
        ns: &str,
        name: &str,
        type_: &str,
        reason: &str,
        message: &str,
    ) {
        let api_version = {
            let store = self.store();
            let res = store
                .resources
                .iter()
                .find(|r| r.kind == kind)
                .unwrap_or_else(|| panic!("stand-in add_event: no kind {kind}"));
            res.api_version()
        };
        let involved = self
            .get(&api_version, kind, Some(ns), name)
            .unwrap_or_else(|| {
                json!({"apiVersion": api_version, "kind": kind,
                                      "metadata": {"name": name, "namespace": ns}})
            });
        let seq = self.store().requests.len() as u64 + rand_seq();
        self.put(events::event(&involved, type_, reason, message, seq));
    }

    /// Serves metrics.k8s.io or not. Off until the test gives metrics (`set_pod_metrics`,
    /// `set_node_metrics`, or `put` of a metrics kind): a cluster without metrics-server.
    pub fn set_metrics_available(&self, available: bool) {
        self.store().metrics_off = !available;
    }

    /// Sets a pod's usage for `top`: (container, cpu like "250m", memory like "64Mi") each.
    pub fn set_pod_metrics(&self, ns: &str, pod: &str, containers: &[(&str, &str, &str)]) {
        let containers: Vec<Value> = containers
            .iter()
            .map(|(n, cpu, mem)| json!({"name": n, "usage": {"cpu": cpu, "memory": mem}}))
            .collect();
        self.put(json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
            "metadata": {"name": pod, "namespace": ns}, "timestamp": store::rfc3339(std::time::SystemTime::now()),
            "window": "30s", "containers": containers}));
    }

    /// Sets a node's usage for `top`.
    pub fn set_node_metrics(&self, node: &str, cpu: &str, memory: &str) {
        self.put(
            json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "NodeMetrics",
            "metadata": {"name": node}, "timestamp": store::rfc3339(std::time::SystemTime::now()),
            "window": "30s", "usage": {"cpu": cpu, "memory": memory}}),
        );
    }

    /// Makes every request for a resource (plural, e.g. "secrets") answer 403 Forbidden, as
    /// RBAC would for a user without that grant.
    pub fn forbid(&self, plural: &str) {
        self.store().forbidden.push(plural.to_string());
    }

    /// What the stand-in Flux controller answers to a reconcile request on a Kustomization or
    /// HelmRelease: `Ready` True or False with `reason` and `message` (default: True,
    /// ReconciliationSucceeded).
    pub fn set_flux_outcome(
        &self,
        kind: &str,
        ns: &str,
        name: &str,
        ready: bool,
        reason: &str,
        message: &str,
    ) {
        self.store().flux_outcomes.insert(
            (kind.into(), ns.into(), name.into()),
            (ready, reason.into(), message.into()),
        );
    }

    /// Makes the stand-in Flux controller judge each reconcile of an object when it happens:
    /// `judge()` returns the revision the source is at and (Ready, reason, message).
    pub fn judge_flux(
        &self,
        kind: &str,
        ns: &str,
        name: &str,
        judge: impl Fn() -> (String, flux::Outcome) + Send + Sync + 'static,
    ) {
        self.store().flux_judges.insert(
            (kind.into(), ns.into(), name.into()),
            std::sync::Arc::new(judge),
        );
    }

    /// Every request so far: (method, path and query).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.store().requests.clone()
    }

    /// Forgets the requests so far (to assert on what one step sent).
    pub fn clear_requests(&self) {
        self.store().requests.clear();
    }
}

/// A per-call distinct number for event names.
fn rand_seq() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        >> 16
}
