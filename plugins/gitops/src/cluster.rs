//! One cluster through one `kubernetes` profile for the length of a call: reads, server-side
//! apply (dry run or real), merge patches and deletes over the host's `http` capability, and
//! the discovery that turns an object's `apiVersion` + `kind` into its URL.
//!
//! The host adds the server, pins its CA and injects the credentials; it also refuses every
//! write (anything but a dry run) that this call holds no `guard` approval for, so the only
//! way a write leaves here is after `guard.approve`.

use infra_sdk::kube::{Access, ApiResource, Discovery, Fetch, NO_CACHE, status_error};
use infra_sdk::prelude::*;

use crate::rest::Rest;

/// Most bytes of one API answer held in the plugin (the host clamps it to its capture limit).
const MAX_BODY: u64 = 16 * 1024 * 1024;
/// The field manager of every apply: what `managedFields` name as the owner of infra's fields.
pub const FIELD_MANAGER: &str = "infra";

/// A cluster for one call.
pub struct Cluster {
    /// The profile's name.
    pub profile: String,
    timeout_ms: u32,
    discovery: Discovery,
}

/// An answer of the API server.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body, parsed (null when empty or not JSON).
    pub body: Value,
    raw: Vec<u8>,
}

impl Answer {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The error a non-2xx answer maps to, described by `access`.
    pub fn error(&self, access: &Access) -> ToolError {
        status_error(self.status, &self.raw, access)
    }
}

impl Cluster {
    /// The cluster of `profile`; a missing one is an `invalid` error naming the field.
    pub fn new(profile: Option<&str>, ctx: &Ctx) -> Result<Self, ToolError> {
        let profile = profile.filter(|p| !p.is_empty()).ok_or_else(|| {
            ToolError::invalid(
                "profile",
                "missing: name the kubernetes profile of profiles.json to work on (the k8s \
                 tool's `contexts` action lists them)",
            )
        })?;
        Ok(Self {
            profile: profile.to_string(),
            timeout_ms: ctx.timeout_ms,
            discovery: Discovery::default(),
        })
    }

    /// Sends one request; a refusal by the host (policy, guard) is an error, any HTTP status an
    /// [`Answer`].
    pub fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, ToolError> {
        self.send_with(method, path, content_type, body, &[])
    }

    /// [`Self::send`] with more request headers.
    fn send_with(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
        more: &[(&str, &str)],
    ) -> Result<Answer, ToolError> {
        let rest = Rest {
            profile: &self.profile,
            timeout_ms: self.timeout_ms,
            max_bytes: MAX_BODY,
            accept: "application/json",
        };
        let resp = rest.send(method, path, content_type, body, more)?;
        if resp.truncated {
            return Err(ToolError::failed(format!(
                "the answer to {method} {path} is larger than the host's capture limit; work on \
                 fewer objects per call"
            )));
        }
        Ok(Answer {
            status: resp.status,
            body: serde_json::from_slice(&resp.body).unwrap_or(Value::Null),
            raw: resp.body,
        })
    }

    /// GETs `path` as JSON; a non-2xx answer is the error `access` describes.
    pub fn get(&self, path: &str, access: &Access) -> Result<Value, ToolError> {
        let a = self.send("GET", path, None, None)?;
        if !a.ok() {
            return Err(a.error(access));
        }
        Ok(a.body)
    }

    /// GETs one object; `None` when it does not exist.
    pub fn get_opt(&self, path: &str, access: &Access) -> Result<Option<Value>, ToolError> {
        let a = self.send("GET", path, None, None)?;
        match a.status {
            404 => Ok(None),
            _ if a.ok() => Ok(Some(a.body)),
            _ => Err(a.error(access)),
        }
    }

    /// Server-side applies `obj` at `path` as field manager `infra`, taking over conflicting
    /// fields (`force`, as GitOps tools do: the manifests are the truth); with `dry_run` the
    /// server validates and answers the result without storing it.
    pub fn apply(&self, path: &str, obj: &Value, dry_run: bool) -> Result<Answer, ToolError> {
        let mut q = format!("?fieldManager={FIELD_MANAGER}&force=true");
        if dry_run {
            q.push_str("&dryRun=All");
        }
        // JSON is YAML: the apply-patch content type takes either.
        let body = serde_json::to_vec(obj).unwrap_or_default();
        self.send(
            "PATCH",
            &format!("{path}{q}"),
            Some("application/apply-patch+yaml"),
            Some(body),
        )
    }

    /// Merge-patches the object at `path` with `patch`.
    pub fn merge_patch(&self, path: &str, patch: &Value) -> Result<Answer, ToolError> {
        let q = format!("?fieldManager={FIELD_MANAGER}");
        self.send(
            "PATCH",
            &format!("{path}{q}"),
            Some("application/merge-patch+json"),
            Some(patch.to_string().into_bytes()),
        )
    }

    /// Deletes the object at `path` (its dependents in the background, as kubectl does).
    pub fn delete(&self, path: &str) -> Result<Answer, ToolError> {
        let body = json!({"kind": "DeleteOptions", "apiVersion": "v1",
                          "propagationPolicy": "Background"});
        self.send(
            "DELETE",
            path,
            Some("application/json"),
            Some(body.to_string().into_bytes()),
        )
    }

    /// The RBAC words of a request, for error messages.
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

    /// Resolves an object's `apiVersion` + `kind` through discovery (kept for the call).
    pub fn resolve_kind(
        &mut self,
        api_version: &str,
        kind: &str,
    ) -> Result<ApiResource, ToolError> {
        let mut d = std::mem::take(&mut self.discovery);
        let r = d.resolve_kind(self, api_version, kind);
        self.discovery = d;
        r
    }

    /// Resolves a kind as people write it (`deployments`, `Deployment`, `kustomizations.kustomize.toolkit.fluxcd.io`).
    pub fn resolve(&mut self, kind: &str) -> Result<ApiResource, ToolError> {
        let mut d = std::mem::take(&mut self.discovery);
        let r = d.resolve(self, kind);
        self.discovery = d;
        r
    }

    /// Forgets what discovery read, so types whose CRDs were just applied are found.
    pub fn rediscover(&mut self) {
        self.discovery = Discovery::fresh();
    }
}

impl Fetch for Cluster {
    fn get_json(&mut self, path: &str, fresh: bool) -> Result<Value, ToolError> {
        let access = self.access("get", path, None, None);
        let more: &[(&str, &str)] = if fresh { &[NO_CACHE] } else { &[] };
        let a = self.send_with("GET", path, None, None, more)?;
        if !a.ok() {
            return Err(a.error(&access));
        }
        Ok(a.body)
    }
}
