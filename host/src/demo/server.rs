//! The demo's own loopback HTTP server: real sockets and real HTTP/1.1 (hyper), so the demo runs
//! on an embedded default with no external services. It answers only what the demo's steps
//! call: `/hello`, `/reflect-auth` (echoes the Authorization header, so the demo can show the
//! host scrubbing a leaked token), `/items?page=N&per_page=M&total=T` (Link header),
//! `/bytes?n=N` and `/redirect?to=URL`. The integration tests have their own, richer fixture.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;

/// A running demo server; stops when dropped.
pub(super) struct DemoServer {
    addr: SocketAddr,
    authorizations: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DemoServer {
    /// Starts on 127.0.0.1 on a free port.
    pub(super) async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let authorizations = Arc::new(Mutex::new(Vec::new()));
        let seen = authorizations.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        std::future::ready(handle(&seen, addr, req))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            authorizations,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub(super) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether a request reached the server with exactly this Authorization header.
    pub(super) fn saw_authorization(&self, value: &str) -> bool {
        self.authorizations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|v| v == value)
    }
}

fn json_response(status: u16, v: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .expect("valid response")
}

fn handle(
    seen: &Mutex<Vec<String>>,
    addr: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let auth = req
        .headers()
        .get("authorization")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if let Some(auth) = &auth {
        seen.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(auth.clone());
    }
    let q: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let num = |k: &str, d: u64| q.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(d);
    let path = req.uri().path();
    let resp = match path {
        "/hello" => json_response(200, json!({"message": "hello from the loopback server"})),
        "/reflect-auth" => json_response(200, json!({ "you_sent": auth.unwrap_or_default() })),
        "/redirect" => {
            let to = q.get("to").cloned().unwrap_or_else(|| "/hello".into());
            Response::builder()
                .status(302)
                .header("location", to)
                .body(Full::new(Bytes::new()))
                .expect("valid")
        }
        "/bytes" => {
            let n = num("n", 1024) as usize;
            let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            Response::builder()
                .header("content-type", "application/octet-stream")
                .body(Full::new(Bytes::from(data)))
                .expect("valid")
        }
        "/items" => {
            let (page, per, total) = (num("page", 1), num("per_page", 10), num("total", 35));
            let start = (page - 1) * per;
            let items: Vec<u64> = (start..(start + per).min(total)).collect();
            let mut r = json_response(200, json!(items));
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
        _ => json_response(404, json!({"error": "no such page", "path": path})),
    };
    Ok(resp)
}
