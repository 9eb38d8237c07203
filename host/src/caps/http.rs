//! `infra:host/http` (reqwest): one request per call, checked against `[plugin.<name>.http]`.
//!
//! The checks happen where they cannot be skipped: the host name and port before each hop
//! (redirects are followed here, one by one, never by reqwest), and every resolved address inside
//! the DNS resolver of the plugin's own client — so a granted name that resolves to a denied
//! address (169.254.169.254) never gets a connection. Profile credentials are added here and
//! dropped when a redirect leaves the profile's origin; response bytes are scrubbed of known
//! secrets before the plugin sees them, and cut to the cap only after that ([`capture`]).
//! Methods and headers that reflect, tunnel, re-address or encode are refused ([`host_owned`]).
//! Sizes are clamped to the policy's `[limits]`.

mod auth;
mod capture;
mod clients;
pub mod discovery;
mod host_owned;
mod kube;
mod upload;

pub use auth::register_profile_secrets;
use auth::{profile_headers, register_auth};
pub use clients::Clients;
use clients::denial_in;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::{Method, StatusCode, Url};

use super::infra::host::http::{DownloadResult, Host, ProfileInfo, Request, Response};
use super::infra::host::types::{CapError, KeyValue};
use super::types::error_chain;
use super::{CallCtx, StoreState};
use crate::artifacts::{ArtifactMeta, Measured, ScrubbedSink};
use crate::profiles::Profile;
use capture::Capture;

/// Methods that may be retried: repeating them has no further effect.
fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// A request after the profile is applied and the URL parsed.
struct Prepared {
    method: Method,
    url: Url,
    headers: Vec<(String, String)>,
    /// Headers from the profile, its auth and its literal `headers`, all secrets; dropped when
    /// a redirect leaves `origin`.
    auth: Vec<(String, String)>,
    origin: Option<url::Origin>,
    body: Option<Vec<u8>>,
    /// The `artifact://` URI whose bytes are the body (`upload`): opened again for each
    /// attempt and redirect hop, streamed from the store.
    upload: Option<String>,
    /// Set when the profile is a Kubernetes cluster: the request uses that cluster's own client
    /// (its CA pinned, its client certificate), follows no redirect, and its server needs no
    /// `hosts` entry.
    cluster: Option<kube::Cluster>,
}

fn invalid(msg: impl Into<String>) -> CapError {
    CapError::Invalid(msg.into())
}

impl CallCtx {
    /// Applies the profile (base URL, auth) and validates the request.
    fn prepare(&self, req: &Request) -> Result<Prepared, CapError> {
        if let Some(why) = host_owned::refused_method(&req.method) {
            return Err(invalid(format!("method: {why}")));
        }
        let method = Method::from_bytes(req.method.as_bytes())
            .map_err(|_| invalid(format!("method: '{}' is not an HTTP method", req.method)))?;
        if let Some(why) = req
            .headers
            .iter()
            .find_map(|h| host_owned::refused_header(&h.key))
        {
            return Err(invalid(format!("headers: {why}")));
        }
        // Checked here, so that a bad one is named rather than failing the request builder.
        if let Some(why) = req
            .headers
            .iter()
            .find_map(|h| malformed_header(&h.key, &h.value))
        {
            return Err(invalid(format!("headers: {why}")));
        }
        let headers: Vec<(String, String)> = req
            .headers
            .iter()
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect();
        let mut auth = Vec::new();
        let mut origin = None;
        let url_text = match &req.profile {
            None => req.url.clone(),
            Some(name) => {
                self.decide(
                    "http",
                    &format!("profile {name}"),
                    self.shared.policy.check_profile(&self.plugin, "http", name),
                )
                .map_err(CapError::Denied)?;
                let profile = match self.shared.profiles.get(name) {
                    Some(Profile::Http(p)) => p,
                    Some(Profile::Kubernetes(k)) => {
                        return self.prepare_cluster(name, k, req, method, headers);
                    }
                    Some(_) => {
                        return Err(invalid(format!(
                            "profile: '{name}' is not an http or kubernetes profile"
                        )));
                    }
                    None => {
                        let known: Vec<&str> = self.shared.profiles.names().collect();
                        return Err(CapError::NotFound(format!(
                            "no profile '{name}' in {}; known profiles: {}",
                            self.shared.profiles.origin(),
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        )));
                    }
                };
                let base = Url::parse(&profile.base_url).map_err(|e| {
                    CapError::Failed(format!(
                        "profile '{name}' has a bad base_url: {e}; fix it in {}",
                        self.shared.profiles.origin()
                    ))
                })?;
                origin = Some(base.origin());
                if let Some(why) = profile
                    .headers
                    .keys()
                    .find_map(|k| host_owned::refused_header(k))
                {
                    return Err(CapError::Failed(format!(
                        "profile '{name}' in {} sets a header {why} from the profile's headers",
                        self.shared.profiles.origin()
                    )));
                }
                auth = profile_headers(profile)?;
                // Registered at start too; again here, for a secret rotated since.
                register_auth(&auth, &self.shared.redactor);
                join(&base, &req.url)?
            }
        };
        refuse_profile_headers(&auth, &headers)?;
        let url = Url::parse(&url_text)
            .map_err(|e| invalid(format!("url: '{url_text}' is not a valid URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "url: scheme '{}' is not allowed; use http or https",
                url.scheme()
            )));
        }
        if let Some(o) = &origin
            && &url.origin() != o
        {
            return Err(invalid(format!(
                "url: {url} is outside the profile's base URL; give a path relative to it, or drop `profile`"
            )));
        }
        Ok(Prepared {
            method,
            url,
            headers,
            auth,
            origin,
            body: req.body.clone(),
            upload: None,
            cluster: None,
        })
    }

    /// [`Self::prepare`] for a Kubernetes profile: its credentials read now, the URL held to
    /// its API server.
    fn prepare_cluster(
        &self,
        name: &str,
        profile: &crate::profiles::KubernetesProfile,
        req: &Request,
        method: Method,
        headers: Vec<(String, String)>,
    ) -> Result<Prepared, CapError> {
        let origin = self.shared.profiles.origin();
        let cluster = kube::resolve(name, profile, &self.shared.redactor, origin)?;
        let url = match kube::target(name, &cluster.creds.server, &req.url) {
            Err(CapError::Denied(why)) => {
                let reason = self.event("http", &format!("profile {name}")).deny(why);
                return Err(CapError::Denied(reason));
            }
            other => other?,
        };
        // The guard cannot be skipped: a write through a cluster needs this call's approval.
        if let Some(ns) =
            super::guard::write::kubernetes_write_to(method.as_str(), &cluster.creds.server, &url)
        {
            self.require_kubernetes_write(name, &ns)
                .map_err(CapError::Denied)?;
        }
        let auth = kube::auth_headers(&cluster.creds);
        refuse_profile_headers(&auth, &headers)?;
        Ok(Prepared {
            method,
            origin: Some(url.origin()),
            url,
            headers,
            auth,
            body: req.body.clone(),
            upload: None,
            cluster: Some(cluster),
        })
    }

    /// Checks one hop's host and port (and the address, when the host is an IP literal). The
    /// server of a granted Kubernetes profile needs no `hosts` entry: the profile names it.
    fn check_hop(&self, url: &Url, cluster: bool) -> Result<String, CapError> {
        let host = url
            .host_str()
            .ok_or_else(|| invalid(format!("url: {url} has no host")))?;
        let port = url.port_or_known_default().unwrap_or(80);
        let target = format!("{host}:{port}");
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let policy = &self.shared.policy;
        let decision = if cluster {
            policy.check_http_profile_server(&self.plugin, bare, port)
        } else {
            policy.check_http_target(&self.plugin, bare, port)
        };
        self.decide("http", &target, decision)
            .map_err(CapError::Denied)?;
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.decide(
                "http",
                &target,
                self.shared.policy.check_http_addr(&self.plugin, ip),
            )
            .map_err(CapError::Denied)?;
        }
        Ok(target)
    }

    /// Sends the request, following redirects and retrying as asked; returns the final response
    /// with its body unread.
    async fn exchange(&self, req: &Request, upload: Option<&str>) -> Result<Exchanged, CapError> {
        self.require("http", &req.url).map_err(CapError::Denied)?;
        let mut p = self.prepare(req)?;
        p.upload = upload.map(str::to_string);
        let client = match &p.cluster {
            Some(c) => {
                self.shared
                    .http
                    .cluster(&self.plugin, &c.profile, &c.creds, &self.shared.policy)?
            }
            None => self.shared.http.get(&self.plugin, &self.shared.policy)?,
        };
        let deadline = Instant::now()
            + Duration::from_millis(u64::from(req.timeout_ms).min(self.remaining_ms()));
        let (mut redirects, mut attempts) = (0u32, 0u32);
        loop {
            let target = self.check_hop(&p.url, p.cluster.is_some())?;
            attempts += 1;
            let mut builder = client.request(p.method.clone(), p.url.clone());
            let same_origin = p.origin.as_ref().is_none_or(|o| &p.url.origin() == o);
            for (k, v) in host_owned::SENT {
                builder = builder.header(*k, *v);
            }
            for (k, v) in p
                .headers
                .iter()
                .chain(p.auth.iter().filter(|_| same_origin))
            {
                builder = builder.header(k, v);
            }
            if let Some(uri) = &p.upload {
                let (len, body) = upload::artifact_body(self, uri).await?;
                builder = builder
                    .header(reqwest::header::CONTENT_LENGTH, len)
                    .body(body);
            } else if let Some(b) = &p.body {
                builder = builder.body(b.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(CapError::Timeout(format!(
                    "{} {} ran past its {} ms deadline; raise timeout_ms",
                    p.method, p.url, req.timeout_ms
                )));
            }
            let ev = self.event("http", &target);
            let resp = match builder.timeout(left).send().await {
                Ok(r) => r,
                Err(e) => {
                    if let Some(reason) = denial_in(&e) {
                        return Err(CapError::Denied(ev.deny(reason)));
                    }
                    ev.fail(e.to_string());
                    if idempotent(&p.method) && attempts <= req.retries && !e.is_timeout() {
                        backoff(attempts, None, deadline).await;
                        continue;
                    }
                    return Err(if e.is_timeout() && e.is_connect() {
                        CapError::Timeout(format!(
                            "{} {}: no connection within the {} ms deadline; check that the server is up and reachable, or raise timeout_ms",
                            p.method, p.url, req.timeout_ms
                        ))
                    } else if e.is_timeout() {
                        CapError::Timeout(format!(
                            "{} {}: the server took the request but sent no response headers within the {} ms deadline; check the server, or raise timeout_ms",
                            p.method, p.url, req.timeout_ms
                        ))
                    } else {
                        CapError::Failed(format!(
                            "{} {} failed: {}{}",
                            p.method,
                            p.url,
                            error_chain(&e),
                            p.cluster.as_ref().map_or(String::new(), |c| format!(
                                "; kubernetes profile '{}' trusts only its own CA and fails closed: a certificate error means the server is not the one that CA pins (check `ca` or the kubeconfig's certificate-authority), a handshake error that the server refused the client certificate",
                                c.profile
                            ))
                        ))
                    });
                }
            };
            let status = resp.status();
            ev.ok(status.as_u16().to_string());
            // An API server does not redirect; following one would carry the token elsewhere.
            if status.is_redirection()
                && p.cluster.is_none()
                && req.max_redirects > redirects
                && let Some(next) = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
            {
                let next = p.url.join(next).map_err(|e| {
                    CapError::Failed(format!("bad redirect Location '{next}': {e}"))
                })?;
                redirects += 1;
                if status == StatusCode::SEE_OTHER
                    || (matches!(status.as_u16(), 301 | 302) && p.method == Method::POST)
                {
                    p.method = Method::GET;
                    p.body = None;
                    p.upload = None;
                }
                p.url = next;
                continue;
            }
            if retryable(status) && idempotent(&p.method) && attempts <= req.retries {
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                backoff(attempts, retry_after, deadline).await;
                continue;
            }
            return Ok(Exchanged {
                resp,
                cluster: p.cluster.is_some(),
                final_url: p.url.to_string(),
                redirects,
                attempts,
                deadline: deadline.into(),
                timeout_ms: req.timeout_ms,
            });
        }
    }
}

impl CallCtx {
    /// A discovery document kept from an earlier call, after the checks this request would
    /// pass to be sent (grant, profile, server), recorded as the request would be.
    fn kept_discovery(
        &self,
        req: &Request,
        key: &discovery::Key,
        max_bytes: u64,
    ) -> Result<Option<Response>, CapError> {
        let Some(resp) = self.shared.kube_discovery.get(key, max_bytes) else {
            return Ok(None);
        };
        self.require("http", &req.url).map_err(CapError::Denied)?;
        let p = self.prepare(req)?;
        if p.cluster.is_none() {
            return Ok(None);
        }
        let target = self.check_hop(&p.url, true)?;
        self.event("http", &target).ok(format!(
            "{} (discovery, kept from an earlier call)",
            resp.status
        ));
        Ok(Some(resp))
    }
}

/// A response whose headers arrived, its body still to read before `deadline`.
struct Exchanged {
    resp: reqwest::Response,
    /// It went through a kubernetes profile.
    cluster: bool,
    final_url: String,
    redirects: u32,
    attempts: u32,
    deadline: tokio::time::Instant,
    timeout_ms: u32,
}

impl Exchanged {
    /// The body, to read chunk by chunk within the exchange's deadline.
    fn into_body(self) -> BodyRead {
        BodyRead {
            status: self.resp.status(),
            stream: self.resp.bytes_stream().boxed(),
            url: self.final_url,
            received: 0,
            deadline: self.deadline,
            timeout_ms: self.timeout_ms,
        }
    }
}

/// Waits before a retry: exponential from 100 ms, or the server's Retry-After (capped at 5 s),
/// never past the deadline.
async fn backoff(attempt: u32, retry_after_s: Option<u64>, deadline: Instant) {
    let wanted = match retry_after_s {
        Some(s) => Duration::from_secs(s.min(5)),
        None => Duration::from_millis(100u64 << attempt.min(6)),
    };
    let left = deadline.saturating_duration_since(Instant::now());
    tokio::time::sleep(wanted.min(left)).await;
}

/// Refuses a request header the profile sets itself (its auth), rather than send both.
/// Why a header cannot be sent as given, if it cannot.
fn malformed_header(name: &str, value: &str) -> Option<String> {
    if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Some(format!(
            "'{}' is not a header name; use letters, digits and `-` (no spaces or `:`)",
            name.escape_debug()
        ));
    }
    if reqwest::header::HeaderValue::from_bytes(value.as_bytes()).is_err() {
        return Some(format!(
            "the value of '{name}' holds a line break or another control character; remove it \
             (one header, one line)"
        ));
    }
    None
}

fn refuse_profile_headers(
    auth: &[(String, String)],
    headers: &[(String, String)],
) -> Result<(), CapError> {
    match auth
        .iter()
        .find(|(k, _)| headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(k)))
    {
        Some((k, _)) => Err(invalid(format!(
            "headers: the profile sets '{k}' itself; remove it from `headers`"
        ))),
        None => Ok(()),
    }
}

/// Joins a request path onto a profile's base URL (`/v1` + `users` = `/v1/users`).
fn join(base: &Url, path: &str) -> Result<String, CapError> {
    if path.starts_with("http://") || path.starts_with("https://") {
        return Ok(path.to_string());
    }
    let mut text = base.to_string();
    if !text.ends_with('/') {
        text.push('/');
    }
    text.push_str(path.trim_start_matches('/'));
    Ok(text)
}

fn header_list(headers: &reqwest::header::HeaderMap) -> Vec<KeyValue> {
    headers
        .iter()
        .map(|(k, v)| KeyValue {
            key: k.as_str().to_string(),
            value: String::from_utf8_lossy(v.as_bytes()).into_owned(),
        })
        .collect()
}

/// A response body being read, and what to say when it stops short.
struct BodyRead {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    url: String,
    status: StatusCode,
    received: u64,
    deadline: tokio::time::Instant,
    timeout_ms: u32,
}

impl BodyRead {
    /// The next chunk of the body, within the exchange's deadline.
    async fn next(&mut self) -> Result<Option<bytes::Bytes>, CapError> {
        let next = tokio::time::timeout_at(self.deadline, self.stream.next()).await;
        match next {
            Ok(None) => Ok(None),
            Ok(Some(Ok(c))) => {
                self.received += c.len() as u64;
                Ok(Some(c))
            }
            Ok(Some(Err(e))) if !e.is_timeout() => Err(CapError::Failed(format!(
                "reading the body of {} (status {}) after {} bytes: {}",
                self.url,
                self.status.as_u16(),
                self.received,
                error_chain(&e)
            ))),
            // reqwest's own timeout and ours are the same deadline: one message for both.
            Err(_) | Ok(Some(Err(_))) => Err(CapError::Timeout(format!(
                "{} answered {} and sent {} bytes of its body, then stalled past the {} ms deadline; check the server, or raise timeout_ms",
                self.url,
                self.status.as_u16(),
                self.received,
                self.timeout_ms
            ))),
        }
    }
}

impl Host for StoreState {
    async fn profiles(&mut self) -> Vec<ProfileInfo> {
        let call = &self.call;
        let shared = &call.shared;
        shared
            .profiles
            .iter()
            .filter(|(_, p)| matches!(p, Profile::Http(_) | Profile::Kubernetes(_)))
            .filter(|(name, _)| {
                matches!(
                    shared.policy.check_profile(&call.plugin, "http", name),
                    crate::policy::Decision::Allow
                )
            })
            .map(|(name, p)| ProfileInfo {
                name: name.to_string(),
                kind: p.kind().to_string(),
                // A server URL holds no secret by the profile format; scrubbed all the same.
                server: p
                    .server()
                    .map(|s| shared.redactor.scrub_str(&s).into_owned()),
                protected: p.protected(),
            })
            .collect()
    }

    async fn send(&mut self, req: Request) -> Result<Response, CapError> {
        let call = &self.call;
        // The body is held in host memory: the agent's cap gives way to the operator's.
        let max_bytes = req.max_bytes.min(call.shared.policy.limits().capture_bytes);
        let kept = discovery::key(&req);
        if let Some((key, false)) = &kept
            && let Some(resp) = call.kept_discovery(&req, key, max_bytes)?
        {
            return Ok(resp);
        }
        let x = call.exchange(&req, None).await?;
        let cluster = x.cluster;
        let headers = header_list(x.resp.headers());
        let (final_url, redirects, attempts) = (x.final_url.clone(), x.redirects, x.attempts);
        let mut read = x.into_body();
        let mut body = Capture::new(&call.shared.redactor, max_bytes);
        while let Some(chunk) = read.next().await? {
            if !body.push(&chunk) {
                break;
            }
        }
        let (body, truncated) = body.finish();
        let resp = Response {
            status: read.status.as_u16(),
            headers,
            body,
            truncated,
            final_url,
            redirects,
            attempts,
            max_bytes,
        };
        if let Some((key, _)) = kept
            && cluster
        {
            call.shared.kube_discovery.put(key, &resp);
        }
        Ok(resp)
    }

    async fn download(&mut self, req: Request) -> Result<DownloadResult, CapError> {
        let call = &self.call;
        call.require("artifacts", "download")
            .map_err(CapError::Denied)?;
        let limit = call.shared.policy.limits().artifact_bytes;
        let max_bytes = req.max_bytes.min(limit);
        let x = call.exchange(&req, None).await?;
        let (status, final_url) = (x.resp.status(), x.final_url.clone());
        if !status.is_success() {
            return Err(CapError::Failed(format!(
                "{final_url} answered {status}; nothing was stored"
            )));
        }
        let headers = header_list(x.resp.headers());
        let media_type = x
            .resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_string();
        let meta = ArtifactMeta {
            media_type,
            tool: call.tool.clone(),
            trace_id: call.trace_id.clone(),
            description: format!("download of {final_url}"),
        };
        let mut sink = ScrubbedSink::open(
            &call.shared.artifacts,
            &call.shared.redactor,
            meta,
            max_bytes,
            Measured::Received,
        )
        .await
        .map_err(|e| CapError::Failed(format!("{e:#}")))?;
        // Past the cap the sink is dropped, which removes what was written: a cut download is
        // no download.
        let too_large = || {
            if max_bytes == limit {
                format!(
                    "{final_url} is larger than {limit} bytes, the host's limits.artifact_bytes; nothing was stored — fetch a smaller part (e.g. with a Range header), or ask the operator to raise limits.artifact_bytes"
                )
            } else {
                format!(
                    "{final_url} is larger than max_bytes ({max_bytes} bytes); nothing was stored — raise max_bytes"
                )
            }
        };
        let mut read = x.into_body();
        while let Some(chunk) = read.next().await? {
            sink.write(&chunk)
                .await
                .map_err(|e| CapError::from_sink(e, too_large))?;
        }
        let info = sink
            .finish()
            .await
            .map_err(|e| CapError::from_sink(e, too_large))?;
        Ok(DownloadResult {
            status: status.as_u16(),
            headers,
            artifact: info.into(),
            final_url,
            max_bytes,
        })
    }

    async fn upload(&mut self, req: Request, body: String) -> Result<Response, CapError> {
        let call = &self.call;
        if req.body.is_some() {
            return Err(invalid(
                "body: an upload's body is its artifact; leave `body` empty",
            ));
        }
        call.require("artifacts", &body).map_err(CapError::Denied)?;
        let max_bytes = req.max_bytes.min(call.shared.policy.limits().capture_bytes);
        let x = call.exchange(&req, Some(&body)).await?;
        let headers = header_list(x.resp.headers());
        let (final_url, redirects, attempts) = (x.final_url.clone(), x.redirects, x.attempts);
        let mut read = x.into_body();
        let mut capture = Capture::new(&call.shared.redactor, max_bytes);
        while let Some(chunk) = read.next().await? {
            if !capture.push(&chunk) {
                break;
            }
        }
        let (resp_body, truncated) = capture.finish();
        Ok(Response {
            status: read.status.as_u16(),
            headers,
            body: resp_body,
            truncated,
            final_url,
            redirects,
            attempts,
            max_bytes,
        })
    }
}
