//! `render` and `plan`: manifests rendered from a repository under a granted root by the SDK's
//! git render (`kubectl kustomize`, or `helm template` where the policy grants helm), and the
//! plan of applying them — render plus the cluster diff in one answer, the whole plan stored as
//! an artifact whose sha256 names exactly this plan.

use infra_sdk::git::relative;
use infra_sdk::git::render::{self, RenderArgs, Rendered, Renderer};
use infra_sdk::prelude::*;

use crate::apply;
use crate::caps::artifacts;
use crate::checkout::Checkout;
use crate::cluster::Cluster;
use crate::objects::{self, Source};
use crate::plan::Plan;

/// Where the manifests come from: a directory of a repository under a granted root.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RenderFrom {
    /// A root the policy grants (`[roots]`, granted under `[plugin.gitops.exec] roots`;
    /// default `workspace`).
    pub root: Option<String>,
    /// The repository's directory relative to the root (default `.`).
    pub path: Option<String>,
    /// The kustomize overlay directory, relative to `path` (default `.`).
    pub overlay: Option<String>,
    /// Instead of `overlay`: a helm chart directory (implies `renderer: helm`).
    pub chart: Option<String>,
    /// `kustomize` (default) or `helm` (needs a `helm` program granted by the policy).
    pub renderer: Option<Renderer>,
    /// helm: values files relative to `path`.
    pub values: Option<Vec<String>>,
    /// helm: the release name (default `release`).
    pub release: Option<String>,
    /// helm's namespace; for `plan` also the namespace of namespaced objects that name none
    /// (default `default`).
    pub namespace: Option<String>,
    /// Objects listed at most in the summary (default 200, at most 10000); counts cover all.
    pub max_entries: Option<u32>,
}

/// Renders `from` and summarises the objects.
pub fn render(from: &RenderFrom, ctx: &Ctx) -> Result<Rendered, ToolError> {
    let repo = Checkout::new(from.root.as_deref(), from.path.as_deref(), ctx)?;
    let (field, dir, renderer) = match (&from.overlay, &from.chart, from.renderer) {
        (Some(_), Some(_), _) => {
            return Err(ToolError::invalid(
                "chart",
                "give `overlay` (kustomize) or `chart` (helm), not both",
            ));
        }
        (None, Some(_), Some(Renderer::Kustomize)) => {
            return Err(ToolError::invalid(
                "renderer",
                "`chart` is a helm chart: drop `renderer` or set it to `helm`",
            ));
        }
        (None, Some(c), _) => ("chart", c.as_str(), Renderer::Helm),
        (o, None, r) => (
            "overlay",
            o.as_deref().unwrap_or("."),
            r.unwrap_or_default(),
        ),
    };
    // Checked here to name the field the agent gave; the SDK checks again as `dir`.
    relative(field, dir)?;
    if dir.starts_with('-') {
        return Err(ToolError::invalid(
            field,
            format!("'{dir}' starts with '-': name a directory relative to `path`"),
        ));
    }
    if renderer == Renderer::Kustomize && (from.values.is_some() || from.release.is_some()) {
        return Err(ToolError::invalid(
            "values",
            "`values` and `release` are helm's: give a `chart` (or `renderer: helm`), or drop them",
        ));
    }
    let max = from.max_entries.unwrap_or(200).clamp(1, 10_000) as usize;
    render::render(
        &repo,
        &RenderArgs {
            dir,
            renderer,
            values: from.values.as_deref().unwrap_or_default(),
            release: from.release.as_deref().unwrap_or("release"),
            namespace: from.namespace.as_deref(),
        },
        max,
    )
}

/// A render and what applying it would change, and the artifact holding both.
pub struct Planned {
    /// The render.
    pub rendered: Rendered,
    /// The cluster diff of its objects.
    pub plan: Plan,
    /// The whole plan (source, manifests' sha256, per-object diffs, summary) as JSON.
    pub artifact: Artifact,
    /// The kubernetes profile diffed against.
    pub profile: String,
}

/// Renders `from`, diffs the objects against the cluster of `profile`, stores the plan.
pub fn plan(
    profile: Option<&str>,
    from: &RenderFrom,
    prune_selector: Option<&str>,
    ctx: &Ctx,
) -> Result<Planned, ToolError> {
    let rendered = render(from, ctx)?;
    let mut c = Cluster::new(profile, ctx)?;
    let source = Source {
        manifests: None,
        artifact: Some(rendered.manifests.uri.clone()),
        namespace: from.namespace.clone(),
    };
    let mut objs = objects::resolve(&mut c, objects::read(&source)?, source.namespace.as_deref())?;
    let (plan, _) = apply::plan_and_apply(&mut c, &mut objs, prune_selector, false, false)?;
    let record = json!({
        "kind": "gitops-plan",
        "source": {
            "root": from.root.as_deref().unwrap_or("workspace"),
            "path": from.path.as_deref().unwrap_or("."),
            "command": rendered.command,
            // Its sha256, not its URI: the URI holds the time of the render, and the same
            // manifests against the same cluster should make the same plan, byte for byte.
            "manifests_sha256": rendered.manifests.sha256,
            "manifests_size": rendered.manifests.size,
        },
        "profile": c.profile,
        "prune_selector": prune_selector,
        "summary": plan.summary,
        "objects": plan.objects,
        "prune": plan.prune,
        "text": plan.text(),
    });
    let bytes = serde_json::to_vec_pretty(&record).map_err(|e| {
        ToolError::failed(format!(
            "the plan could not be written as JSON: {e}; report it"
        ))
    })?;
    let artifact: Artifact = artifacts::put(
        &bytes,
        "application/json",
        &format!("gitops plan of {} on {}", rendered.command, c.profile),
    )?
    .into();
    Ok(Planned {
        rendered,
        plan,
        artifact,
        profile: c.profile,
    })
}
