//! A stand-in forge for the tests (no GitHub, GitLab or Gitea can run on the test machines):
//! plain HTTP on loopback with a bearer token, serving the pull-request endpoints of GitHub's
//! REST API with its JSON shapes and error bodies (`{"message", "errors"}`) — create, list by
//! head and state, get, merge (`PUT`, and Gitea's `POST` with `Do`) — and the same pull requests
//! as GitLab merge requests under `/api/v4/projects/:id/merge_requests` (`iid`, `opened` /
//! `merged`, 409 for a second one, `PUT …/merge` with `sha`). Each repository it serves is a real bare git repository the test
//! gives it: a pull request's head is read from the branch there, and a merge really merges head
//! into base with a merge commit (so a later fetch or sync sees it). The handle merges or
//! closes from the test and shows every request.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};

/// One request as the forge saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET`, `POST`, `PUT`.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The `Authorization` header, exactly as sent (for leak checks: tests compare it with the
    /// token, they never print it).
    pub authorization: Option<String>,
    /// The JSON body (`null` when none).
    pub body: Value,
}

struct Pull {
    number: u64,
    title: String,
    body: String,
    head: String,
    base: String,
    state: &'static str,
    merged: bool,
    merge_commit_sha: Option<String>,
}

#[derive(Default)]
struct State {
    /// `owner/name` → the bare repository on disk.
    repos: HashMap<String, PathBuf>,
    /// `owner/name` → its pull requests, numbered from 1.
    pulls: HashMap<String, Vec<Pull>>,
    requests: Vec<Seen>,
}

/// A running stand-in forge; stops when dropped.
pub struct ForgeApi {
    addr: SocketAddr,
    token: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ForgeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ForgeApi {
    /// Starts on 127.0.0.1 on a free port with a fresh token.
    pub async fn start() -> anyhow::Result<ForgeApi> {
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let token = crate::canary("forge-token");
        let state = Arc::new(Mutex::new(State::default()));
        let (t, s) = (token.clone(), state.clone());
        let task =
            crate::serve::http1(listener, move |req| handle(t.clone(), s.clone(), addr, req));
        Ok(ForgeApi {
            addr,
            token,
            state,
            task,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `http://127.0.0.1:PORT` (the API's base URL).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bearer token it accepts (random per run: a canary for leak checks).
    pub fn token(&self) -> String {
        self.token.clone()
    }

    /// Serves `owner/name` from the bare repository `bare`.
    pub fn add_repo(&self, full_name: &str, bare: &Path) {
        self.state()
            .repos
            .insert(full_name.to_string(), bare.to_path_buf());
    }

    /// Every pull request of `owner/name`, as the API shows it.
    pub fn pulls(&self, full_name: &str) -> Vec<Value> {
        let s = self.state();
        let base = self.url();
        s.pulls
            .get(full_name)
            .into_iter()
            .flatten()
            .map(|p| pull_json(&base, full_name, s.repos.get(full_name), p))
            .collect()
    }

    /// Merges pull request `number` as the API's merge would; returns the merge commit.
    pub fn merge(&self, full_name: &str, number: u64) -> Result<String, String> {
        let mut s = self.state();
        merge(&mut s, full_name, number, None)
    }

    /// Closes pull request `number` without merging.
    pub fn close(&self, full_name: &str, number: u64) {
        let mut s = self.state();
        if let Some(p) = s
            .pulls
            .get_mut(full_name)
            .and_then(|ps| ps.iter_mut().find(|p| p.number == number))
        {
            p.state = "closed";
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.state().requests.clone()
    }
}

/// `git args` in the bare repository; stdout trimmed, or git's stderr.
fn git(repo: &Path, args: &[&str]) -> Result<String, String> {
    let out = crate::git::command(repo)
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// The commit branch `name` points at, if it exists.
fn branch_sha(repo: &Path, name: &str) -> Option<String> {
    git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{name}^{{commit}}"),
        ],
    )
    .ok()
}

fn pull_json(base_url: &str, full_name: &str, repo: Option<&PathBuf>, p: &Pull) -> Value {
    let sha = |b: &str| repo.and_then(|r| branch_sha(r, b));
    let owner = full_name.split('/').next().unwrap_or_default();
    json!({
        "url": format!("{base_url}/repos/{full_name}/pulls/{}", p.number),
        "html_url": format!("{base_url}/{full_name}/pull/{}", p.number),
        "number": p.number,
        "state": p.state,
        "title": p.title,
        "body": p.body,
        "head": {"ref": p.head, "sha": sha(&p.head), "label": format!("{owner}:{}", p.head)},
        "base": {"ref": p.base, "sha": sha(&p.base), "label": format!("{owner}:{}", p.base)},
        "merged": p.merged,
        "merge_commit_sha": p.merge_commit_sha,
    })
}

/// GitHub's validation error.
fn invalid(message: &str) -> (u16, Value) {
    (
        422,
        json!({"message": "Validation Failed",
               "errors": [{"resource": "PullRequest", "code": "custom", "message": message}]}),
    )
}

fn not_found() -> (u16, Value) {
    (404, json!({"message": "Not Found"}))
}

/// Merges head into base in the bare repository: `merge-tree --write-tree`, a merge commit with
/// both parents, and base moved only if it did not move meanwhile.
fn merge(
    s: &mut State,
    full_name: &str,
    number: u64,
    title: Option<&str>,
) -> Result<String, String> {
    let repo = s
        .repos
        .get(full_name)
        .cloned()
        .ok_or("no such repository")?;
    let p = s
        .pulls
        .get_mut(full_name)
        .and_then(|ps| ps.iter_mut().find(|p| p.number == number))
        .ok_or("no such pull request")?;
    if p.state != "open" {
        return Err("Pull Request is not mergeable".into());
    }
    let base = branch_sha(&repo, &p.base).ok_or("the base branch is gone")?;
    let head = branch_sha(&repo, &p.head).ok_or("the head branch is gone")?;
    let tree = git(&repo, &["merge-tree", "--write-tree", &base, &head])
        .map_err(|_| "Pull Request is not mergeable (conflicts)".to_string())?;
    let tree = tree.lines().next().unwrap_or_default().to_string();
    let message = title
        .map(String::from)
        .unwrap_or_else(|| format!("Merge pull request #{number} from {}", p.head));
    let commit = git(
        &repo,
        &[
            "commit-tree",
            &tree,
            "-p",
            &base,
            "-p",
            &head,
            "-m",
            &message,
        ],
    )?;
    git(
        &repo,
        &[
            "update-ref",
            &format!("refs/heads/{}", p.base),
            &commit,
            &base,
        ],
    )?;
    p.state = "closed";
    p.merged = true;
    p.merge_commit_sha = Some(commit.clone());
    Ok(commit)
}

fn route(
    s: &mut State,
    base_url: &str,
    method: &str,
    path: &str,
    query: &HashMap<String, String>,
    body: &Value,
) -> (u16, Value) {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    if let ["api", "v4", "projects", id, "merge_requests", rest @ ..] = segs.as_slice() {
        return gitlab(s, base_url, method, id, rest, query, body);
    }
    let ["repos", owner, name, "pulls", rest @ ..] = segs.as_slice() else {
        return not_found();
    };
    let full_name = format!("{owner}/{name}");
    let Some(repo) = s.repos.get(&full_name).cloned() else {
        return not_found();
    };
    match (method, rest) {
        ("POST", []) => {
            let field = |k: &str| body[k].as_str().map(str::to_string);
            let (Some(title), Some(head), Some(base)) =
                (field("title"), field("head"), field("base"))
            else {
                return invalid("title, head and base are required");
            };
            // `head` may be `owner:branch` (a fork's form); here the owner must be the repo's.
            let head = match head.split_once(':') {
                Some((o, b)) if o == *owner => b.to_string(),
                Some(_) => return invalid("head: forks are not served by the stand-in"),
                None => head,
            };
            if branch_sha(&repo, &head).is_none() {
                return (
                    422,
                    json!({"message": "Validation Failed",
                           "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}]}),
                );
            }
            if branch_sha(&repo, &base).is_none() {
                return (
                    422,
                    json!({"message": "Validation Failed",
                           "errors": [{"resource": "PullRequest", "field": "base", "code": "invalid"}]}),
                );
            }
            let pulls = s.pulls.entry(full_name.clone()).or_default();
            if pulls
                .iter()
                .any(|p| p.state == "open" && p.head == head && p.base == base)
            {
                return invalid(&format!(
                    "A pull request already exists for {owner}:{head}."
                ));
            }
            let p = Pull {
                number: pulls.len() as u64 + 1,
                title,
                body: field("body").unwrap_or_default(),
                head,
                base,
                state: "open",
                merged: false,
                merge_commit_sha: None,
            };
            let v = pull_json(base_url, &full_name, Some(&repo), &p);
            pulls.push(p);
            (201, v)
        }
        ("GET", []) => {
            let state = query.get("state").map_or("open", String::as_str);
            let head = query
                .get("head")
                .map(|h| h.split_once(':').map_or(h.as_str(), |(_, b)| b));
            let list: Vec<Value> = s
                .pulls
                .get(&full_name)
                .into_iter()
                .flatten()
                .filter(|p| state == "all" || p.state == state)
                .filter(|p| head.is_none_or(|h| p.head == h))
                .map(|p| pull_json(base_url, &full_name, Some(&repo), p))
                .collect();
            (200, json!(list))
        }
        ("GET", [n]) => {
            let Some(p) = n.parse::<u64>().ok().and_then(|n| {
                s.pulls
                    .get(&full_name)
                    .and_then(|ps| ps.iter().find(|p| p.number == n))
            }) else {
                return not_found();
            };
            (200, pull_json(base_url, &full_name, Some(&repo), p))
        }
        ("PUT", [n, "merge"]) => {
            let Ok(n) = n.parse::<u64>() else {
                return not_found();
            };
            let exists = s
                .pulls
                .get(&full_name)
                .is_some_and(|ps| ps.iter().any(|p| p.number == n));
            if !exists {
                return not_found();
            }
            // GitHub refuses a merge whose `sha` is no longer the head (someone pushed since).
            let head = s
                .pulls
                .get(&full_name)
                .and_then(|ps| ps.iter().find(|p| p.number == n))
                .and_then(|p| branch_sha(&repo, &p.head));
            if let Some(want) = body["sha"].as_str()
                && head.as_deref() != Some(want)
            {
                return (
                    409,
                    json!({"message": "Head branch was modified. Review and try the merge again."}),
                );
            }
            match merge(s, &full_name, n, body["commit_title"].as_str()) {
                Ok(sha) => (
                    200,
                    json!({"sha": sha, "merged": true, "message": "Pull Request successfully merged"}),
                ),
                Err(m) => (405, json!({"message": m})),
            }
        }
        // Gitea's merge: `Do` says how, `head_commit_id` guards against a moved head.
        ("POST", [n, "merge"]) => {
            let Ok(n) = n.parse::<u64>() else {
                return not_found();
            };
            if body["Do"].as_str() != Some("merge") {
                return (
                    422,
                    json!({"message": "Do: only `merge` is served by the stand-in"}),
                );
            }
            let Some(p) = s
                .pulls
                .get(&full_name)
                .and_then(|ps| ps.iter().find(|p| p.number == n))
            else {
                return not_found();
            };
            if let Some(want) = body["head_commit_id"].as_str()
                && branch_sha(&repo, &p.head).as_deref() != Some(want)
            {
                return (409, json!({"message": "head out of date"}));
            }
            match merge(s, &full_name, n, None) {
                Ok(_) => (200, Value::Null),
                Err(m) => (405, json!({"message": m})),
            }
        }
        _ => not_found(),
    }
}

/// A pull request as GitLab shows a merge request.
fn merge_request_json(base_url: &str, full_name: &str, repo: &Path, p: &Pull) -> Value {
    json!({
        "id": 1000 + p.number,
        "iid": p.number,
        "title": p.title,
        "description": p.body,
        "state": match (p.state, p.merged) {
            ("open", _) => "opened",
            (_, true) => "merged",
            _ => "closed",
        },
        "source_branch": p.head,
        "target_branch": p.base,
        "sha": branch_sha(repo, &p.head),
        "merge_commit_sha": p.merge_commit_sha,
        "web_url": format!("{base_url}/{full_name}/-/merge_requests/{}", p.number),
    })
}

/// GitLab's merge request endpoints of project `id` (its path, URL-encoded).
fn gitlab(
    s: &mut State,
    base_url: &str,
    method: &str,
    id: &str,
    rest: &[&str],
    query: &HashMap<String, String>,
    body: &Value,
) -> (u16, Value) {
    let gone = || (404, json!({"message": "404 Project Not Found"}));
    let full_name = id.replace("%2F", "/").replace("%2f", "/");
    let Some(repo) = s.repos.get(&full_name).cloned() else {
        return gone();
    };
    let find = |s: &State, n: &str| {
        n.parse::<u64>().ok().and_then(|n| {
            s.pulls
                .get(&full_name)
                .and_then(|ps| ps.iter().position(|p| p.number == n))
        })
    };
    match (method, rest) {
        ("GET", []) => {
            let state = query.get("state").map_or("all", String::as_str);
            let source = query.get("source_branch");
            let list: Vec<Value> = s
                .pulls
                .get(&full_name)
                .into_iter()
                .flatten()
                .map(|p| merge_request_json(base_url, &full_name, &repo, p))
                .filter(|m| state == "all" || m["state"] == state)
                .filter(|m| source.is_none_or(|b| m["source_branch"] == b.as_str()))
                .collect();
            (200, json!(list))
        }
        ("GET", [n]) => match find(s, n) {
            Some(i) => (
                200,
                merge_request_json(base_url, &full_name, &repo, &s.pulls[&full_name][i]),
            ),
            None => (404, json!({"message": "404 Not found"})),
        },
        ("POST", []) => {
            let field = |k: &str| body[k].as_str().map(str::to_string);
            let (Some(head), Some(base), Some(title)) = (
                field("source_branch"),
                field("target_branch"),
                field("title"),
            ) else {
                return (
                    400,
                    json!({"message": "400 Bad request - source_branch, target_branch, title are missing"}),
                );
            };
            if branch_sha(&repo, &head).is_none() || branch_sha(&repo, &base).is_none() {
                return (400, json!({"message": {"source_branch": ["is invalid"]}}));
            }
            let pulls = s.pulls.entry(full_name.clone()).or_default();
            if let Some(p) = pulls.iter().find(|p| p.state == "open" && p.head == head) {
                return (
                    409,
                    json!({"message": [format!(
                        "Another open merge request already exists for this source branch: !{}",
                        p.number
                    )]}),
                );
            }
            let p = Pull {
                number: pulls.len() as u64 + 1,
                title,
                body: field("description").unwrap_or_default(),
                head,
                base,
                state: "open",
                merged: false,
                merge_commit_sha: None,
            };
            let v = merge_request_json(base_url, &full_name, &repo, &p);
            pulls.push(p);
            (201, v)
        }
        ("PUT", [n, "merge"]) => {
            let Some(i) = find(s, n) else {
                return (404, json!({"message": "404 Not found"}));
            };
            let (number, head) = {
                let p = &s.pulls[&full_name][i];
                (p.number, branch_sha(&repo, &p.head))
            };
            if let Some(want) = body["sha"].as_str()
                && head.as_deref() != Some(want)
            {
                return (
                    409,
                    json!({"message": "SHA does not match HEAD of source branch"}),
                );
            }
            match merge(s, &full_name, number, None) {
                Ok(_) => (
                    200,
                    merge_request_json(base_url, &full_name, &repo, &s.pulls[&full_name][i]),
                ),
                Err(_) => (405, json!({"message": "405 Method Not Allowed"})),
            }
        }
        _ => (404, json!({"message": "404 Not found"})),
    }
}

async fn handle(
    token: String,
    state: Arc<Mutex<State>>,
    addr: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let uri = req.uri().clone();
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let authed = authorization
        .as_deref()
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t == token);
    let raw = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let body: Option<Value> = if raw.is_empty() {
        Some(Value::Null)
    } else {
        serde_json::from_slice(&raw).ok()
    };
    let (status, value) = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.requests.push(Seen {
            method: method.clone(),
            path: uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            authorization,
            body: body.clone().unwrap_or(Value::Null),
        });
        match (authed, body) {
            (false, _) => (
                401,
                json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
            ),
            (true, None) => (400, json!({"message": "Problems parsing JSON"})),
            (true, Some(body)) => {
                let query: HashMap<String, String> = uri
                    .query()
                    .map(|q| {
                        url::form_urlencoded::parse(q.as_bytes())
                            .into_owned()
                            .collect()
                    })
                    .unwrap_or_default();
                route(
                    &mut s,
                    &format!("http://{addr}"),
                    &method,
                    uri.path(),
                    &query,
                    &body,
                )
            }
        }
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Full::new(Bytes::from(value.to_string())))
        .expect("valid response"))
}
