//! What the `gitops` tool returns: one record whose fields each action fills.

use infra_sdk::prelude::*;

use crate::apply::{Applied, ApprovalInfo};
use crate::argo::{AppStatus, OperationResult};
use crate::flux::Reconcile;
use crate::plan::Plan;
use crate::propose::Proposal;
use crate::release::Release;
use crate::rollout::Rollout;
use crate::terraform::apply::Applied as TfApplied;
use crate::terraform::plan::Planned;
use crate::verify::Verdict;
use infra_sdk::git::render::Rendered;

/// The result of a `gitops` call.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct GitopsOutput {
    /// The kubernetes profile worked on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// `propose`: the branch, commit, push and pull request (or what would be done).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposal: Option<Proposal>,
    /// `release`: each stage and how the release ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<Release>,
    /// `render`, `plan`: the rendered manifests and a summary of each object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub render: Option<Rendered>,
    /// `plan`: the whole plan (source, manifests' sha256, per-object diffs, summary) as a JSON
    /// artifact; its `sha256` names exactly this plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_artifact: Option<Artifact>,
    /// `diff`, `apply`, `plan`: what applying changes (or changed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// A write's approval by the host's guard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalInfo>,
    /// `apply` with `apply: true`: what happened to each object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<Applied>>,
    /// `rollout_status`: each workload's rollout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollouts: Option<Vec<Rollout>>,
    /// `status`, `refresh`, `history`: Argo CD applications.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apps: Option<Vec<AppStatus>>,
    /// `sync`, `rollback`: what the Argo CD operation did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationResult>,
    /// `reconcile`: the Flux object's request and Ready condition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<Reconcile>,
    /// `verify`: the verdict and its evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verdict>,
    /// `tf_plan`, `tf_destroy` without a plan: the plan made and kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tf_plan: Option<Planned>,
    /// `tf_apply`, `tf_destroy` with a plan: the plan checked, and what applying it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tf_apply: Option<TfApplied>,
    /// Things the agent should know about the answer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}
