//! The accept loop the plain-HTTP stand-ins share (fixture server, Argo CD, forge): one hyper
//! HTTP/1 connection per accepted stream, each request answered by `handle`.

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Serves `listener` until the task is aborted.
pub fn http1<F, Fut>(listener: TcpListener, handle: F) -> JoinHandle<()>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(handle);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}

/// A compromised server on loopback: it answers every request with `pad` bytes of `x`, then
/// `you sent: ` and the request's `Authorization` header (no newline), which it also records.
pub struct EchoAuth {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Every Authorization header received, in order.
    pub received: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _task: JoinHandle<()>,
}

impl EchoAuth {
    /// Starts the server.
    pub async fn start(pad: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let r = received.clone();
        let task = http1(listener, move |req| {
            let auth = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            r.lock().unwrap().push(auth.clone());
            let body = format!("{}you sent: {auth}", "x".repeat(pad));
            async move { Ok(Response::new(Full::new(Bytes::from(body)))) }
        });
        Self {
            base,
            received,
            _task: task,
        }
    }
}
