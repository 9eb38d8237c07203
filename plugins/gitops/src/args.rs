//! The arguments of the `gitops` tool: per `action` its own fields.

use infra_sdk::prelude::*;

use crate::objects::Source;
use crate::propose::ProposeArgs;
use crate::release::ReleaseArgs;
use crate::render::RenderFrom;
use crate::terraform::{Inputs, Workdir};
use crate::verify::HttpCheck;

/// Arguments of the `gitops` tool.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
pub struct GitopsArgs {
    /// Writes happen only with `true`; without it a writing action answers with what it would
    /// do. The host's guard reads it from the call itself.
    pub apply: Option<bool>,
    /// What to do, with the fields only that action takes.
    #[serde(flatten)]
    pub action: Action,
}

/// What to do.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Renders manifests from a repository under a granted root: `kubectl kustomize` of an
    /// `overlay` (or `helm template` of a `chart` with `values`, where the policy grants helm)
    /// → the manifests in an artifact (give its URI as `artifact` to `diff`/`apply`) and each
    /// object's kind, name, namespace and images.
    Render {
        /// The repository and what to render.
        #[serde(flatten)]
        from: RenderFrom,
    },
    /// `render` and `diff` in one answer: the objects rendered from the repository compared with
    /// the cluster (per object create/update/unchanged with a unified diff, counts, prune
    /// candidates). The whole plan is stored as an artifact; its sha256 names exactly this plan.
    Plan {
        /// The kubernetes profile of the cluster.
        profile: Option<String>,
        /// The repository and what to render.
        #[serde(flatten)]
        from: RenderFrom,
        /// A label selector the set's objects carry: live objects with it that are not in the
        /// set are prune candidates.
        prune_selector: Option<String>,
    },
    /// A change as a pull request: in a repository under a granted root, branch `branch` from
    /// `base`, apply `patch` (or write `files`), commit (`author`), push to `remote` (its URL
    /// granted under `[plugin.gitops.git] remotes`; credentials from `git_profile`, held by the
    /// host), and open a pull request through the forge's API (`forge_profile`, an http profile;
    /// `repository` owner/name). Returns the pull request's number and URL. Idempotent: the same
    /// branch again returns the open pull request, pushing nothing the forge already has.
    /// Without `apply: true`, what it would do.
    Propose(ProposeArgs),
    /// The whole cycle: `propose` (same fields), then wait for the pull request's merge (or
    /// `merge: true`: merge it through the forge, approved by the guard), sync the Argo CD `app`
    /// (`argocd_profile`) to the merge commit — or reconcile the Flux `kustomization` (kubernetes
    /// `profile`) until it applies it — `verify` (healthy at the merge commit, plus
    /// `http_checks`), and when the sync or the verification fails roll back (`rollback`,
    /// default true): Argo CD to the deployment before, Flux by a revert pull request. Each stage is in the audit record and sent as
    /// progress. Called again with the same arguments it goes on where it stopped (a restart,
    /// a timeout waiting for the merge). Without `apply: true`, each stage's plan.
    Release(ReleaseArgs),
    /// What applying the objects would change: a server-side dry run per object compared with
    /// the live one (server-owned fields ignored, as kubectl diff does), a unified diff each,
    /// counts, and with `prune_selector` the live objects a prune would delete.
    Diff {
        /// The kubernetes profile of the cluster.
        profile: Option<String>,
        /// The objects.
        #[serde(flatten)]
        source: Source,
        /// A label selector the set's objects carry: live objects with it that are not in the
        /// set are prune candidates.
        prune_selector: Option<String>,
    },
    /// Server-side apply (field manager `infra`) of the objects, Namespaces and CRDs first;
    /// without `apply: true` the plan only. Needs the host's approval (change window, granted
    /// namespaces, the cluster's lock, the user for a protected profile).
    Apply {
        /// The kubernetes profile of the cluster.
        profile: Option<String>,
        /// The objects.
        #[serde(flatten)]
        source: Source,
        /// A label selector the set's objects carry (needed by `prune`).
        prune_selector: Option<String>,
        /// Delete live objects with `prune_selector` that the set does not have (default false).
        prune: Option<bool>,
    },
    /// Waits until Deployments, StatefulSets and DaemonSets have their newest generation
    /// observed, updated and available (kubectl rollout status's rules), with progress
    /// notifications; on timeout says why (Progressing condition, pods' waiting reasons).
    RolloutStatus {
        /// The kubernetes profile of the cluster.
        profile: Option<String>,
        /// Workloads as `kind/name` (`deployment/api`, `statefulset/db`) in `namespace`; or
        /// give `manifests`/`artifact` and the workloads among them are watched.
        workloads: Option<Vec<String>>,
        /// The objects whose workloads to watch (instead of `workloads`).
        #[serde(flatten)]
        source: Source,
        /// Seconds to wait (default 120; never past the call's `timeout_ms`).
        timeout_secs: Option<u64>,
    },
    /// Argo CD: every application's sync and health, or one `app`'s with its resources.
    Status {
        /// The http profile of the Argo CD server (base_url + bearer token).
        argocd_profile: Option<String>,
        /// The application (absent: all of them).
        app: Option<String>,
    },
    /// Argo CD: compare the application with git again now (`hard` also regenerates the
    /// manifests), then its status.
    Refresh {
        /// The http profile of the Argo CD server.
        argocd_profile: Option<String>,
        /// The application.
        app: String,
        /// `normal` (default) or `hard`.
        mode: Option<String>,
    },
    /// Argo CD: the application's deployment history (ids for `rollback`).
    History {
        /// The http profile of the Argo CD server.
        argocd_profile: Option<String>,
        /// The application.
        app: String,
    },
    /// Argo CD: sync the application (to `revision`, default its target), `prune` resources
    /// no longer in git; `dry_run` for Argo CD's dry run. A write: needs `apply: true` and the
    /// guard's approval unless `dry_run`. `wait` for Synced and Healthy.
    Sync {
        /// The http profile of the Argo CD server.
        argocd_profile: Option<String>,
        /// The application.
        app: String,
        /// A git revision (commit, tag, branch); default the app's target revision.
        revision: Option<String>,
        /// Delete resources no longer in git (default false).
        prune: Option<bool>,
        /// Argo CD's dry run: nothing changes, no approval needed (default false).
        dry_run: Option<bool>,
        /// Wait until Synced and Healthy, or Degraded/failed (default false).
        wait: Option<bool>,
        /// Seconds to wait (default 120).
        timeout_secs: Option<u64>,
    },
    /// Argo CD: roll the application back to a history `id` (see `history`). A write, as
    /// `sync`.
    Rollback {
        /// The http profile of the Argo CD server.
        argocd_profile: Option<String>,
        /// The application.
        app: String,
        /// The history id to return to.
        id: i64,
        /// Delete resources not in that revision (default false).
        prune: Option<bool>,
        /// Argo CD's dry run (default false).
        dry_run: Option<bool>,
        /// Wait until Healthy, or Degraded/failed (default false).
        wait: Option<bool>,
        /// Seconds to wait (default 120).
        timeout_secs: Option<u64>,
    },
    /// Flux: request a reconcile of a Kustomization or HelmRelease now (annotation
    /// `reconcile.fluxcd.io/requestedAt`, a guarded write), wait for `Ready` and report its
    /// reason. Without `apply: true`, its current Ready condition only.
    Reconcile {
        /// The kubernetes profile of the cluster.
        profile: Option<String>,
        /// `Kustomization` or `HelmRelease`.
        kind: String,
        /// Its name.
        name: String,
        /// Its namespace (default `flux-system`).
        namespace: Option<String>,
        /// Wait for Ready after the controller handled the request (default true).
        wait: Option<bool>,
        /// Seconds to wait (default 120).
        timeout_secs: Option<u64>,
    },
    /// One verdict (`pass`/`fail`) with evidence: rollout status of `workloads` (or of the
    /// workloads among `manifests`), an Argo CD `app`'s sync and health, and `http_checks`.
    Verify {
        /// The kubernetes profile, for rollouts.
        profile: Option<String>,
        /// Workloads as `kind/name` in `namespace`.
        workloads: Option<Vec<String>>,
        /// Or the objects whose workloads to check.
        #[serde(flatten)]
        source: Source,
        /// The http profile of Argo CD, with `app`.
        argocd_profile: Option<String>,
        /// An Argo CD application that must be Synced and Healthy.
        app: Option<String>,
        /// URLs that must answer a status.
        http_checks: Option<Vec<HttpCheck>>,
        /// Seconds to wait for the rollouts (default 120).
        timeout_secs: Option<u64>,
    },
    /// Terraform: `init` (providers from the root's plugin cache), `plan -out`, and the plan
    /// kept for `tf_apply`: its sha256, a summary (adds, changes, destroys, replaces per
    /// resource) and `show -json` as an artifact with sensitive values redacted. Changes
    /// nothing but the working directory.
    TfPlan {
        /// The working directory.
        #[serde(flatten)]
        at: Workdir,
        /// Variables, var files, targets.
        #[serde(flatten)]
        inputs: Inputs,
    },
    /// Terraform: apply exactly the plan `tf_plan` made, named by its sha256. Refused when the
    /// file changed since (tampered) or the state moved on (stale: plan again). Needs
    /// `apply: true` — without it, the plan's summary only — and the host's approval for the
    /// workspace (change window, its lock, the user's for a protected root).
    TfApply {
        /// The working directory the plan was made in.
        #[serde(flatten)]
        at: Workdir,
        /// The `plan_sha256` tf_plan answered.
        plan_sha256: String,
    },
    /// Terraform: without `plan_sha256`, a destroy plan (`plan -destroy`), answered as
    /// `tf_plan` answers; with `plan_sha256` and `apply: true`, that destroy plan applied the
    /// way `tf_apply` applies (checked, approved, exactly that plan).
    TfDestroy {
        /// The working directory.
        #[serde(flatten)]
        at: Workdir,
        /// Variables, var files, targets (for the destroy plan).
        #[serde(flatten)]
        inputs: Inputs,
        /// The `plan_sha256` of the destroy plan to apply.
        plan_sha256: Option<String>,
    },
}
