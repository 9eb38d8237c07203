//! One request through an `http` profile of the host — the shape the cluster, Argo CD and forge
//! clients share: the host adds the server and the credentials, no redirect is followed (it would
//! leave the profile's server), a GET is retried once.

use crate::caps::http;
use infra_sdk::prelude::*;

/// A JSON API reached through one profile.
pub struct Rest<'a> {
    /// The profile's name.
    pub profile: &'a str,
    /// The call's deadline for each request.
    pub timeout_ms: u32,
    /// Most bytes of an answer held (the host clamps it to `limits.capture_bytes`).
    pub max_bytes: u64,
    /// The `Accept` header.
    pub accept: &'a str,
}

impl Rest<'_> {
    /// Sends `method path` with `body` (of `content_type`) and `more` headers; a refusal by the
    /// host is an error, any HTTP status a response.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
        more: &[(&str, &str)],
    ) -> Result<http::Response, ToolError> {
        let header = |k: &str, v: &str| http::KeyValue {
            key: k.into(),
            value: v.into(),
        };
        let mut headers = vec![header("accept", self.accept)];
        headers.extend(content_type.map(|ct| header("content-type", ct)));
        headers.extend(more.iter().map(|(k, v)| header(k, v)));
        Ok(http::send(&http::Request {
            method: method.into(),
            url: path.into(),
            headers,
            body,
            profile: Some(self.profile.to_string()),
            timeout_ms: self.timeout_ms,
            max_bytes: self.max_bytes,
            max_redirects: 0,
            retries: u32::from(method == "GET"),
        })?)
    }

    /// Sends a JSON `body` (if any) and reads the answer as JSON (`null` when it is not).
    pub fn json(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(http::Response, Value), ToolError> {
        let ct = body.as_ref().map(|_| "application/json");
        let resp = self.send(
            method,
            path,
            ct,
            body.map(|b| b.to_string().into_bytes()),
            &[],
        )?;
        let v = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        Ok((resp, v))
    }
}
