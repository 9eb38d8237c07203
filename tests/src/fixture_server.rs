//! A loopback HTTP server with fixed behaviours, for the integration tests and the benchmark:
//! real sockets and real HTTP/1.1 (hyper), so the http capability is exercised end to end.
//!
//! Endpoints: `/hello`, `/echo` (method, path, query, body, header names — never header values,
//! so a test can prove an injected token reached the server without it being echoed),
//! `/status/N`, `/redirect?to=URL[&code=N]`, `/slow?ms=N`, `/flaky?key=K&fail=N` (N× 503, then 200),
//! `/bytes?n=N`, `/text?n=N`, `/items?page=N&per_page=M&total=T` (Link header), `/cursor?cursor=C`,
//! and two hostile ones: `/reflect-auth` (JSON) and `/reflect?header=H&pad=N&after=M` (text: N
//! dots, the value of request header H — authorization by default — then M dots).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Every header with its value (for tests that check what reached the server).
    pub headers: Vec<(String, String)>,
}

/// A running fixture server; stops when dropped.
pub struct FixtureServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Default)]
struct State {
    seen: Arc<Mutex<Vec<Seen>>>,
    flaky: Mutex<HashMap<String, u64>>,
}

impl FixtureServer {
    /// Starts on 127.0.0.1 on a free port.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(std::net::Ipv4Addr::LOCALHOST.into()).await
    }

    /// Starts on `ip` on a free port; `::` listens on every local address, IPv4 and IPv6.
    pub async fn start_on(ip: std::net::IpAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind((ip, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let seen = state.seen.clone();
        let task = crate::serve::http1(listener, move |req| handle(state.clone(), addr, req));
        Ok(Self { addr, seen, task })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn query(uri: &hyper::Uri) -> HashMap<String, String> {
    uri.query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

fn json(status: u16, v: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .expect("valid response")
}

async fn handle(
    state: Arc<State>,
    addr: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    state
        .seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Seen {
            method: parts.method.to_string(),
            uri: parts.uri.to_string(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        });
    let q = query(&parts.uri);
    let num = |k: &str, d: u64| q.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(d);
    let path = parts.uri.path();
    let resp = match path {
        "/hello" => json(
            200,
            serde_json::json!({"message": "hello from the loopback server"}),
        ),
        "/echo" => json(
            200,
            serde_json::json!({
                "method": parts.method.as_str(),
                "path": path,
                "query": q,
                "body": String::from_utf8_lossy(&body),
                "header_names": parts.headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
                "content_type": parts.headers.get("content-type").and_then(|v| v.to_str().ok()),
            }),
        ),
        "/reflect-auth" => {
            // Deliberately hostile: echoes the Authorization header back, so tests can prove the
            // host scrubs a leaked secret before any output reaches the agent.
            let auth = parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            json(200, serde_json::json!({ "you_sent": auth }))
        }
        "/reflect" => {
            // Hostile too, and shaped for truncation tests: the reflected value sits exactly
            // `pad` bytes into the body, so a test can put a cut anywhere across it.
            let name = q.get("header").map_or("authorization", String::as_str);
            let value = parts
                .headers
                .get(name)
                .map(|v| v.as_bytes().to_vec())
                .unwrap_or_default();
            let mut data = vec![b'.'; num("pad", 0) as usize];
            data.extend_from_slice(&value);
            data.resize(data.len() + num("after", 0) as usize, b'.');
            Response::builder()
                .header("content-type", "text/plain")
                .body(Full::new(Bytes::from(data)))
                .expect("valid")
        }
        p if p.starts_with("/status/") => {
            let code = p.trim_start_matches("/status/").parse().unwrap_or(500);
            json(code, serde_json::json!({"status": code}))
        }
        "/redirect" => {
            let to = q.get("to").cloned().unwrap_or_else(|| "/hello".into());
            Response::builder()
                .status(num("code", 302) as u16)
                .header("location", to)
                .body(Full::new(Bytes::new()))
                .expect("valid")
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(num("ms", 1000))).await;
            json(200, serde_json::json!({"slept_ms": num("ms", 1000)}))
        }
        "/flaky" => {
            let key = q.get("key").cloned().unwrap_or_default();
            let n = {
                let mut map = state.flaky.lock().unwrap_or_else(|p| p.into_inner());
                let e = map.entry(key).or_insert(0);
                *e += 1;
                *e
            };
            if n <= num("fail", 2) {
                json(503, serde_json::json!({"attempt": n}))
            } else {
                json(200, serde_json::json!({"attempt": n}))
            }
        }
        "/bytes" => {
            let n = num("n", 1024) as usize;
            let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            Response::builder()
                .header("content-type", "application/octet-stream")
                .body(Full::new(Bytes::from(data)))
                .expect("valid")
        }
        "/text" => {
            let n = num("n", 1024) as usize;
            let line = b"the quick brown fox jumps over the lazy dog\n";
            let data: Vec<u8> = line.iter().cycle().take(n).copied().collect();
            Response::builder()
                .header("content-type", "text/plain")
                .body(Full::new(Bytes::from(data)))
                .expect("valid")
        }
        "/items" => {
            let (page, per, total) = (num("page", 1), num("per_page", 10), num("total", 35));
            let start = (page - 1) * per;
            let items: Vec<u64> = (start..(start + per).min(total)).collect();
            let mut r = json(200, serde_json::json!(items));
            if start + per < total {
                let next = format!(
                    "<http://{addr}/items?page={}&per_page={per}&total={total}>; rel=\"next\"",
                    page + 1
                );
                r.headers_mut()
                    .insert("link", next.parse().expect("valid header"));
            }
            r
        }
        "/cursor" => {
            let c = num("cursor", 0);
            let next = if c < 2 {
                serde_json::json!((c + 1).to_string())
            } else {
                serde_json::Value::Null
            };
            json(
                200,
                serde_json::json!({"data": [c * 10, c * 10 + 1], "next": next}),
            )
        }
        _ => json(
            404,
            serde_json::json!({"error": "no such fixture", "path": path}),
        ),
    };
    Ok(resp)
}
