//! The call's view of the cluster: its client and what discovery has told so far, so a call
//! that resolves several kinds (describe's owner chain, diagnose) reads each document once.

use infra_sdk::kube::{ApiResource, Discovery, check_namespace};
use infra_sdk::prelude::*;

use crate::api::Client;

/// A cluster for the length of one call.
pub struct Cluster {
    /// The profile's client.
    pub client: Client,
    discovery: Discovery,
}

impl Cluster {
    /// The cluster of `profile`.
    pub fn new(profile: Option<&str>, ctx: &Ctx) -> Result<Self, ToolError> {
        Ok(Self {
            client: Client::new(profile, ctx)?,
            discovery: Discovery::default(),
        })
    }

    /// Forgets what discovery read; what is read next comes from the server, not the host's
    /// kept documents.
    pub fn rediscover(&mut self) {
        self.discovery = Discovery::fresh();
    }

    /// Resolves `kind` as the agent wrote it (`pods`, `Pod`, `po`, `deployments.apps`, a CRD's
    /// plural) through discovery; `verb` must be one the server supports on it.
    pub fn resolve(&mut self, kind: &str, verb: &str) -> Result<ApiResource, ToolError> {
        let r = self.discovery.resolve(&mut self.client, kind)?;
        if !r.verbs.is_empty() && !r.verbs.iter().any(|v| v == verb) {
            return Err(ToolError::invalid(
                "kind",
                format!(
                    "{} cannot be read with {verb:?} (the server allows {}); pick another kind \
                     or action",
                    r.qualified(),
                    r.verbs.join(", ")
                ),
            ));
        }
        Ok(r)
    }

    /// Resolves an owner reference's or event's `apiVersion` + `kind`.
    pub fn resolve_kind(
        &mut self,
        api_version: &str,
        kind: &str,
    ) -> Result<ApiResource, ToolError> {
        self.discovery
            .resolve_kind(&mut self.client, api_version, kind)
    }

    /// Whether the cluster serves an API group.
    pub fn has_group(&mut self, group: &str) -> Result<bool, ToolError> {
        self.discovery.has_group(&mut self.client, group)
    }
}

/// The namespace an action on one object uses: the one given (checked) or `default`; `None`
/// for cluster-scoped kinds, which have none.
pub fn object_namespace(r: &ApiResource, given: Option<&str>) -> Result<Option<String>, ToolError> {
    if !r.namespaced {
        return Ok(None);
    }
    let ns = given.unwrap_or("default");
    check_namespace("namespace", ns)?;
    Ok(Some(ns.to_string()))
}

/// The namespace a list uses: the one given (checked), or `None` for every namespace.
pub fn list_namespace(given: Option<&str>) -> Result<Option<String>, ToolError> {
    given
        .map(|ns| check_namespace("namespace", ns).map(|()| ns.to_string()))
        .transpose()
}
