//! A stand-in Argo CD REST API for the tests (no Argo CD can run on the test machines): plain
//! HTTP on loopback with a bearer token, serving the application endpoints the gitops plugin
//! uses — list, get (with `?refresh=`), sync, rollback, resource tree — with Argo CD's JSON
//! shapes and its error bodies (`{"error", "code", "message"}`, gRPC codes). The handle sets an
//! application's health and sync status, and can make syncs fail (health Degraded) — always, or
//! by what the deployed revision holds — or take a few reads to finish (Progressing meanwhile).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};

use crate::kube::rfc3339;

/// Decides a sync's outcome from the revision it deploys: `Some(message)` fails it.
type Judge = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

#[derive(Default)]
struct State {
    apps: Vec<Value>,
    /// Apps whose syncs and rollbacks fail or not by what the revision holds.
    judges: HashMap<String, Judge>,
    /// Apps whose syncs fail, with the message the operation reports.
    failing: HashMap<String, String>,
    /// Apps whose syncs take this many reads of the app to finish.
    slow: HashMap<String, u32>,
    /// Apps with a sync running: reads left before it finishes, and the outcome.
    running: HashMap<String, (u32, Value, Value)>,
    requests: Vec<(String, String)>,
}

/// A running stand-in Argo CD; stops when dropped.
pub struct ArgoApi {
    addr: SocketAddr,
    token: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ArgoApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now() -> String {
    rfc3339(SystemTime::now())
}

impl ArgoApi {
    /// Starts on 127.0.0.1 on a free port with a fresh token.
    pub async fn start() -> anyhow::Result<ArgoApi> {
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let token = crate::canary("argocd-token");
        let state = Arc::new(Mutex::new(State::default()));
        let (t, s) = (token.clone(), state.clone());
        let task = crate::serve::http1(listener, move |req| handle(t.clone(), s.clone(), req));
        Ok(ArgoApi {
            addr,
            token,
            state,
            task,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bearer token it accepts (random per run: a canary for leak checks).
    pub fn token(&self) -> String {
        self.token.clone()
    }

    /// Adds an application, Synced and Healthy at `revision`, with one history entry (id 0).
    pub fn add_app(&self, name: &str, repo: &str, path: &str, revision: &str) {
        let source = json!({"repoURL": repo, "path": path, "targetRevision": revision});
        let app = json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd", "creationTimestamp": now()},
            "spec": {"project": "default", "source": source,
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": name}},
            "status": {
                "sync": {"status": "Synced", "revision": revision, "comparedTo": {"source": source}},
                "health": {"status": "Healthy"},
                "resources": [],
                "history": [{"id": 0, "revision": revision, "deployedAt": now(), "source": source}],
                "reconciledAt": now(),
                "summary": {},
            },
        });
        let mut s = self.state();
        s.apps.retain(|a| a["metadata"]["name"] != name);
        s.apps.push(app);
    }

    fn with_app<T>(&self, name: &str, f: impl FnOnce(&mut Value) -> T) -> T {
        let mut s = self.state();
        let app = s
            .apps
            .iter_mut()
            .find(|a| a["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("stand-in Argo CD: no application {name}; add_app first"));
        f(app)
    }

    /// Sets an application's health ("Healthy", "Progressing", "Degraded", "Missing", …).
    pub fn set_health(&self, name: &str, health: &str) {
        self.with_app(name, |a| a["status"]["health"] = json!({"status": health}));
    }

    /// Sets an application's sync status ("Synced", "OutOfSync", "Unknown").
    pub fn set_sync_status(&self, name: &str, status: &str) {
        self.with_app(name, |a| a["status"]["sync"]["status"] = json!(status));
    }

    /// Sets the resources the application reports (`status.resources`, each with group,
    /// version, kind, namespace, name, status and health).
    pub fn set_resources(&self, name: &str, resources: Vec<Value>) {
        self.with_app(name, |a| a["status"]["resources"] = json!(resources));
    }

    /// Makes every later sync and rollback of the application fail: the operation ends
    /// `Failed` with `message` and health becomes Degraded (as a bad rollout would).
    pub fn fail_syncs(&self, name: &str, message: &str) {
        self.state().failing.insert(name.into(), message.into());
    }

    /// Makes each later sync and rollback of the application succeed or fail by the revision it
    /// deploys: `judge(revision)` returns the failure message (as a rollout of a broken image
    /// would end), or `None` for Healthy. Tests read the revision from the real repository.
    pub fn judge(
        &self,
        name: &str,
        judge: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) {
        self.state().judges.insert(name.into(), Arc::new(judge));
    }

    /// Makes later syncs succeed again (undoes [`ArgoApi::fail_syncs`]).
    pub fn succeed_syncs(&self, name: &str) {
        self.state().failing.remove(name);
    }

    /// Makes every later sync and rollback of the application take `reads` reads of the
    /// application to finish: until then the operation is `Running` and health `Progressing`
    /// (for tests of waiting for Healthy and Synced).
    pub fn slow_syncs(&self, name: &str, reads: u32) {
        self.state().slow.insert(name.into(), reads);
    }

    /// The application as the API returns it.
    pub fn app(&self, name: &str) -> Value {
        self.with_app(name, |a| a.clone())
    }

    /// Every request so far: (method, path and query).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.state().requests.clone()
    }
}

/// Argo CD's error body: the gRPC gateway's `{error, code, message}`.
fn error(status: u16, grpc: u32, message: &str) -> (u16, Value) {
    (
        status,
        json!({"error": message, "code": grpc, "message": message}),
    )
}

fn not_found(name: &str) -> (u16, Value) {
    error(
        404,
        5,
        &format!("applications.argoproj.io \"{name}\" not found"),
    )
}

/// Why an operation of `name` deploying `revision` fails, if it does.
fn failing(state: &State, name: &str, revision: &str) -> Option<String> {
    state
        .failing
        .get(name)
        .cloned()
        .or_else(|| state.judges.get(name).and_then(|j| j(revision)))
}

/// Runs a sync or rollback to `revision`: history grows, sync and health follow (or the
/// operation fails when the handle said so).
fn operate(app: &mut Value, revision: &str, failing: Option<&String>, kind: &str, prune: bool) {
    let source = app["spec"]["source"].clone();
    let history = app["status"]["history"].as_array_mut().expect("history");
    let id = history
        .iter()
        .filter_map(|h| h["id"].as_i64())
        .max()
        .map_or(0, |m| m + 1);
    history.push(json!({"id": id, "revision": revision, "deployedAt": now(), "source": source}));
    app["status"]["sync"]["revision"] = json!(revision);
    let (phase, message, health) = match failing {
        Some(m) => ("Failed", m.clone(), "Degraded"),
        None => (
            "Succeeded",
            "successfully synced (all tasks run)".to_string(),
            "Healthy",
        ),
    };
    // A rollback deploys an older revision than the target: Argo CD reports OutOfSync.
    let sync = if kind == "rollback" {
        "OutOfSync"
    } else {
        "Synced"
    };
    app["status"]["sync"]["status"] = json!(sync);
    app["status"]["health"] = json!({"status": health});
    app["status"]["operationState"] = json!({
        "operation": {kind: {"revision": revision, "prune": prune}},
        "phase": phase, "message": message, "startedAt": now(), "finishedAt": now(),
        "syncResult": {"revision": revision, "source": source},
    });
}

/// For a slow app, holds back the finished operation: Running and Progressing until read
/// enough times.
fn start_running(state: &mut State, i: usize, name: &str) {
    let Some(reads) = state.slow.get(name).copied() else {
        return;
    };
    let app = &mut state.apps[i];
    let done = (
        reads,
        app["status"]["health"].clone(),
        app["status"]["operationState"].clone(),
    );
    app["status"]["health"] = json!({"status": "Progressing"});
    app["status"]["operationState"]["phase"] = json!("Running");
    app["status"]["operationState"]["message"] = json!("waiting for healthy state");
    if let Some(op) = app["status"]["operationState"].as_object_mut() {
        op.remove("finishedAt");
    }
    state.running.insert(name.to_string(), done);
}

/// One read of a slow app: counts down, then shows the operation's real outcome.
fn advance(state: &mut State, i: usize, name: &str) {
    let Some((left, health, op)) = state.running.get_mut(name) else {
        return;
    };
    if *left > 1 {
        *left -= 1;
        return;
    }
    state.apps[i]["status"]["health"] = health.clone();
    state.apps[i]["status"]["operationState"] = op.clone();
    state.running.remove(name);
}

fn route(
    state: &mut State,
    method: &str,
    path: &str,
    query: &HashMap<String, String>,
    body: &[u8],
) -> (u16, Value) {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return error(400, 3, &format!("the request body is not valid JSON: {e}")),
        }
    };
    let find =
        |apps: &mut Vec<Value>, name: &str| apps.iter().position(|a| a["metadata"]["name"] == name);
    match (method, segs.as_slice()) {
        ("GET", ["api", "v1", "applications"]) => {
            let items: Vec<Value> = state.apps.clone();
            (
                200,
                json!({"metadata": {"resourceVersion": "1"}, "items": items}),
            )
        }
        ("GET", ["api", "v1", "applications", name]) => {
            let Some(i) = find(&mut state.apps, name) else {
                return not_found(name);
            };
            advance(state, i, name);
            match query.get("refresh").map(String::as_str) {
                None | Some("") => {}
                Some("normal" | "hard") => state.apps[i]["status"]["reconciledAt"] = json!(now()),
                Some(other) => {
                    return error(
                        400,
                        3,
                        &format!("refresh: unknown value \"{other}\"; use normal or hard"),
                    );
                }
            }
            (200, state.apps[i].clone())
        }
        ("GET", ["api", "v1", "applications", name, "resource-tree"]) => {
            let Some(i) = find(&mut state.apps, name) else {
                return not_found(name);
            };
            let nodes: Vec<Value> = state.apps[i]["status"]["resources"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|r| json!({"group": r["group"], "version": r["version"], "kind": r["kind"],
                                "namespace": r["namespace"], "name": r["name"], "health": r["health"]}))
                .collect();
            (200, json!({"nodes": nodes}))
        }
        ("POST", ["api", "v1", "applications", name, "sync"]) => {
            let Some(i) = find(&mut state.apps, name) else {
                return not_found(name);
            };
            let target = state.apps[i]["spec"]["source"]["targetRevision"]
                .as_str()
                .unwrap_or("HEAD")
                .to_string();
            let revision = body["revision"]
                .as_str()
                .filter(|r| !r.is_empty())
                .unwrap_or(&target)
                .to_string();
            let prune = body["prune"].as_bool().unwrap_or(false);
            if body["dryRun"].as_bool() == Some(true) {
                return (200, state.apps[i].clone());
            }
            let failing = failing(state, name, &revision);
            operate(
                &mut state.apps[i],
                &revision,
                failing.as_ref(),
                "sync",
                prune,
            );
            start_running(state, i, name);
            (200, state.apps[i].clone())
        }
        ("POST", ["api", "v1", "applications", name, "rollback"]) => {
            let Some(i) = find(&mut state.apps, name) else {
                return not_found(name);
            };
            let Some(id) = body["id"].as_i64() else {
                return error(
                    400,
                    3,
                    "rollback: id (a history id, an integer) is required",
                );
            };
            let Some(revision) = state.apps[i]["status"]["history"]
                .as_array()
                .and_then(|h| h.iter().find(|e| e["id"] == id))
                .and_then(|e| e["revision"].as_str())
                .map(String::from)
            else {
                return error(
                    400,
                    3,
                    &format!("application {name} does not have deployment with id {id}"),
                );
            };
            if body["dryRun"].as_bool() == Some(true) {
                return (200, state.apps[i].clone());
            }
            let prune = body["prune"].as_bool().unwrap_or(false);
            let failing = failing(state, name, &revision);
            operate(
                &mut state.apps[i],
                &revision,
                failing.as_ref(),
                "rollback",
                prune,
            );
            start_running(state, i, name);
            (200, state.apps[i].clone())
        }
        _ => error(404, 5, &format!("no such endpoint: {method} {path}")),
    }
}

async fn handle(
    token: String,
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let uri = req.uri().clone();
    let authed = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t == token);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let (status, value) = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.requests.push((
            method.clone(),
            uri.path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
        ));
        if authed {
            let query: HashMap<String, String> = uri
                .query()
                .map(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .into_owned()
                        .collect()
                })
                .unwrap_or_default();
            route(&mut s, &method, uri.path(), &query, &body)
        } else {
            error(401, 16, "no session information")
        }
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(value.to_string())))
        .expect("valid response"))
}
