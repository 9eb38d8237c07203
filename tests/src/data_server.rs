//! A loopback HTTP server for data flows (the pipeline tests and benchmark): `GET /data` answers
//! with fixed bytes, any `POST`/`PUT`/`PATCH` is read whole and kept with its headers, answered
//! 201. Real sockets and HTTP/1.1 (hyper), so the host's download and upload are exercised end
//! to end.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};

/// One upload as the server received it.
#[derive(Debug, Clone)]
pub struct Upload {
    /// Method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Every header, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Upload {
    /// The value of header `name` (lowercase), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A running data server; stops when dropped.
pub struct DataServer {
    base: String,
    uploads: Arc<Mutex<Vec<Upload>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DataServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DataServer {
    /// Starts on 127.0.0.1 on a free port, serving `data` at `/data`.
    pub async fn start(data: Vec<u8>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let uploads: Arc<Mutex<Vec<Upload>>> = Arc::default();
        let data = Bytes::from(data);
        let kept = uploads.clone();
        let task = crate::serve::http1(listener, move |req: Request<hyper::body::Incoming>| {
            let (data, kept) = (data.clone(), kept.clone());
            async move {
                let method = req.method().to_string();
                if method == "GET" {
                    return Ok::<_, Infallible>(Response::new(Full::new(data)));
                }
                let uri = req.uri().to_string();
                let headers = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                let body = match req.into_body().collect().await {
                    Ok(b) => b.to_bytes().to_vec(),
                    Err(_) => Vec::new(),
                };
                kept.lock().unwrap().push(Upload {
                    method,
                    uri,
                    headers,
                    body,
                });
                let mut resp = Response::new(Full::new(Bytes::from_static(b"{\"stored\":true}")));
                *resp.status_mut() = hyper::StatusCode::CREATED;
                Ok(resp)
            }
        });
        Ok(DataServer {
            base,
            uploads,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Every upload received so far.
    pub fn uploads(&self) -> Vec<Upload> {
        self.uploads.lock().unwrap().clone()
    }
}
