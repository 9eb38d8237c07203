//! What the `k8s` tool returns: one record whose fields each action fills.

use infra_sdk::kube::ApiResource;
use infra_sdk::prelude::*;

use crate::contexts::Context;
use crate::diagnose::{Checked, Finding};
use crate::events::EventRow;
use crate::logs::Logs;
use crate::rows::Row;
use crate::top::Usage;

/// The result of a `k8s` call.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct K8sOutput {
    /// The profile read through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The namespace read (absent: every namespace, or a cluster-scoped kind).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `contexts`: the kubernetes profiles this plugin may use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contexts: Option<Vec<Context>>,
    /// The resource type the `kind` resolved to through discovery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<ApiResource>,
    /// `get`, `describe`: the object (without managedFields unless asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
    /// `describe`: the object's row (status, ready, restarts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Row>,
    /// `list`, `namespaces`: one row per object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<Row>>,
    /// `list`, `namespaces`: rows returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    /// `list`, `namespaces`: pass it back as `continue` for the next rows; absent at the end.
    #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
    /// `list`: objects after these, when the API server says how many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    /// `describe`, `events`: events, newest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventRow>>,
    /// `describe`: the owners, nearest first (Pod → ReplicaSet → Deployment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owners: Option<Vec<Owner>>,
    /// `logs`: the log text and where the whole of it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<Logs>,
    /// `top`: CPU and memory per pod or node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Vec<Usage>>,
    /// `diagnose`: what looks wrong, with evidence; empty when nothing does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings: Option<Vec<Finding>>,
    /// `diagnose`: what was examined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked: Option<Checked>,
    /// Things the agent should know about the answer (bounds hit, fields ignored).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// An owner in `describe`'s owner chain.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Owner {
    /// `apps/v1`.
    pub api_version: String,
    /// `ReplicaSet`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its row, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Row>,
    /// Why it could not be read (deleted, not served, forbidden).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
