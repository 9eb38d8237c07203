//! Reads from the Kubernetes API through the host's `http` capability with the call's
//! `kubernetes` profile: the host adds the server, pins its CA and injects the credentials; a
//! non-2xx answer becomes an error naming the profile, the RBAC verb and the object.

use infra_sdk::kube::{Access, Fetch, NO_CACHE, status_error};
use infra_sdk::prelude::*;

use crate::caps::http;

/// Most bytes of one API answer held in the plugin (the host clamps it to `limits.capture_bytes`).
const MAX_BODY: u64 = 16 * 1024 * 1024;

/// One cluster, through one profile, for the length of a call.
pub struct Client {
    /// The profile's name.
    pub profile: String,
    timeout_ms: u32,
}

/// A body and whether the host cut it.
pub struct Body {
    /// The bytes received (scrubbed of secrets by the host).
    pub bytes: Vec<u8>,
    /// The body was longer than the host's cap.
    pub truncated: bool,
}

impl Client {
    /// The client of `profile`; a missing profile is an `invalid` error naming the field.
    pub fn new(profile: Option<&str>, ctx: &Ctx) -> Result<Self, ToolError> {
        let profile = profile.filter(|p| !p.is_empty()).ok_or_else(|| {
            ToolError::invalid(
                "profile",
                "missing: name a kubernetes profile of profiles.json (`action: \"contexts\"` \
                 lists them)",
            )
        })?;
        Ok(Self {
            profile: profile.to_string(),
            timeout_ms: ctx.timeout_ms,
        })
    }

    /// GETs `path` (absolute on the cluster's server, e.g. `/api/v1/pods?limit=5`); a non-2xx
    /// answer is the error `access` describes.
    pub fn get_raw(&self, path: &str, accept: &str, access: &Access) -> Result<Body, ToolError> {
        self.get_raw_with(path, accept, &[], access)
    }

    /// [`Self::get_raw`] with more request headers.
    fn get_raw_with(
        &self,
        path: &str,
        accept: &str,
        more: &[(&str, &str)],
        access: &Access,
    ) -> Result<Body, ToolError> {
        let mut headers = vec![http::KeyValue {
            key: "accept".into(),
            value: accept.into(),
        }];
        headers.extend(more.iter().map(|(k, v)| http::KeyValue {
            key: k.to_string(),
            value: v.to_string(),
        }));
        let req = http::Request {
            method: "GET".into(),
            url: path.to_string(),
            headers,
            body: None,
            profile: Some(self.profile.clone()),
            timeout_ms: self.timeout_ms,
            max_bytes: MAX_BODY,
            // The API server does not redirect reads; a redirect would leave the profile's server.
            max_redirects: 0,
            retries: 1,
        };
        let resp = http::send(&req)?;
        if !(200..300).contains(&resp.status) {
            return Err(status_error(resp.status, &resp.body, access));
        }
        Ok(Body {
            bytes: resp.body,
            truncated: resp.truncated,
        })
    }

    /// GETs `path` as JSON.
    pub fn get(&self, path: &str, access: &Access) -> Result<Value, ToolError> {
        self.get_with(path, &[], access)
    }

    /// [`Self::get`] with more request headers.
    fn get_with(
        &self,
        path: &str,
        more: &[(&str, &str)],
        access: &Access,
    ) -> Result<Value, ToolError> {
        let body = self.get_raw_with(path, "application/json", more, access)?;
        if body.truncated {
            return Err(ToolError::failed(format!(
                "the answer to {path} is larger than the host's capture limit; ask for fewer \
                 objects (`limit`, a selector or a namespace)"
            )));
        }
        serde_json::from_slice(&body.bytes).map_err(|e| {
            ToolError::failed(format!(
                "the API server's answer to {path} is not JSON ({e}); is profile {:?} a \
                 Kubernetes API server?",
                self.profile
            ))
        })
    }

    /// The RBAC description of a read: `verb` on `resource` in `namespace`.
    pub fn access<'a>(
        &'a self,
        verb: &'a str,
        resource: &'a str,
        namespace: Option<&'a str>,
        name: Option<&'a str>,
    ) -> Access<'a> {
        Access {
            profile: &self.profile,
            verb,
            resource,
            namespace,
            name,
        }
    }
}

impl Fetch for Client {
    fn get_json(&mut self, path: &str, fresh: bool) -> Result<Value, ToolError> {
        let more: &[(&str, &str)] = if fresh { &[NO_CACHE] } else { &[] };
        self.get_with(path, more, &self.access("get", path, None, None))
    }
}
