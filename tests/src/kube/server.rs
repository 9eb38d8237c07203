//! The HTTPS front of the stand-in: loopback listener, TLS with optional client certificates,
//! authentication (bearer token or a client certificate from the stand-in's CA, anything else
//! 401), the request log, then the router under the store's lock.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::rest::{self, Req};
use super::store::Store;

/// What every connection shares.
pub struct Shared {
    /// The objects and logs.
    pub store: Mutex<Store>,
    /// The accepted bearer token.
    pub token: String,
}

/// Serves `listener` until the task is aborted.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    while let Ok((stream, _)) = listener.accept().await {
        let (acceptor, shared) = (acceptor.clone(), shared.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            // The verifier already checked the chain against the CA; presenting one is enough.
            let has_cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty());
            let svc = hyper::service::service_fn(move |req| handle(shared.clone(), has_cert, req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), svc)
                .await;
        });
    }
}

fn header(req: &Request<Incoming>, name: &str) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn handle(
    shared: Arc<Shared>,
    has_cert: bool,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let uri = req.uri().clone();
    let auth = header(&req, "authorization");
    let (content_type, accept, user_agent) = (
        header(&req, "content-type"),
        header(&req, "accept"),
        header(&req, "user-agent"),
    );
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let path_q = uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let reply = {
        let mut store = shared.store.lock().unwrap_or_else(|p| p.into_inner());
        store.requests.push((method.clone(), path_q));
        // A presented token must be right even with a certificate, as on a real server.
        let authed = match auth.strip_prefix("Bearer ") {
            Some(t) => t == shared.token,
            None => auth.is_empty() && has_cert,
        };
        if authed {
            let query: HashMap<String, String> = uri
                .query()
                .map(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .into_owned()
                        .collect()
                })
                .unwrap_or_default();
            let req = Req {
                method,
                path: uri.path().to_string(),
                query,
                content_type,
                accept,
                user_agent,
                body,
            };
            rest::route(&mut store, &req)
        } else {
            rest::failure(401, "Unauthorized", "Unauthorized", serde_json::json!({}))
        }
    };
    Ok(Response::builder()
        .status(reply.status)
        .header("content-type", reply.content_type)
        .body(Full::new(Bytes::from(reply.body)))
        .expect("valid response"))
}
