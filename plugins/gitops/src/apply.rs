//! `apply`: the plan first; with `apply: true` the host's guard approves the write (apply flag,
//! change window, granted namespaces, the cluster's lock, the user for a protected profile),
//! then each object is server-side applied as field manager `infra` — Namespaces, then CRDs,
//! then the rest — and with `prune` the live objects carrying `prune_selector` that the set no
//! longer has are deleted. The host refuses any write this call holds no approval for, so the
//! order here is the contract, not only the courtesy.

use std::collections::BTreeSet;

use infra_sdk::prelude::*;

use crate::caps::guard;
use crate::cluster::Cluster;
use crate::objects::Obj;
use crate::plan::{Plan, plan};

/// Most bytes of plan shown to the user for approval (the host caps it too).
const PLAN_SHOWN: usize = 32 * 1024;

/// What happened to one object.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Applied {
    /// `Deployment shop/api`.
    pub object: String,
    /// `created`, `configured`, `unchanged`, `pruned` or `error`.
    pub result: String,
    /// The server's refusal, when `result` is `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The approval a write ran under, as the audit record names it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ApprovalInfo {
    /// The approval's id.
    pub id: String,
    /// `policy` or `user` (a protected profile the user approved).
    pub approved_by: String,
    /// The lock held while writing.
    pub lock: String,
}

/// Asks the host's guard for a write of `kind` to `target` touching `namespaces`.
pub fn approve(
    kind: &str,
    target: &str,
    namespaces: Vec<String>,
    plan: &str,
) -> Result<ApprovalInfo, ToolError> {
    let mut shown = plan.to_string();
    if shown.len() > PLAN_SHOWN {
        let mut cut = PLAN_SHOWN;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
        shown.push_str("\n… (plan cut; the whole diff is in the tool's answer without apply)\n");
    }
    let a = guard::approve(&guard::WriteIntent {
        kind: kind.into(),
        target: target.into(),
        namespaces,
        plan: shown,
    })?;
    Ok(ApprovalInfo {
        id: a.id,
        approved_by: a.approved_by,
        lock: a.lock,
    })
}

/// The namespaces a write of `objs` (and the prune) touches, as the guard counts them.
pub fn namespaces(objs: &[Obj], plan: &Plan, prune: bool) -> Vec<String> {
    let mut set: BTreeSet<String> = objs.iter().map(Obj::write_namespace).collect();
    if prune {
        set.extend(plan.prune.iter().map(|p| p.write_namespace.clone()));
    }
    set.into_iter().collect()
}

/// Applies `objs` (already planned and approved) in order, then prunes; one result per object.
pub fn run(c: &mut Cluster, objs: &mut [Obj], plan: &Plan, prune: bool) -> Vec<Applied> {
    let mut out = Vec::new();
    let mut rediscovered = false;
    for (o, p) in objs.iter_mut().zip(&plan.objects) {
        // Types defined by CRDs of this set are served only once those are applied.
        if o.resource.is_none() && !rediscovered {
            c.rediscover();
            rediscovered = true;
        }
        if o.resource.is_none() {
            match c.resolve_kind(o.api_version(), o.kind()) {
                Ok(r) => {
                    if !r.namespaced {
                        o.namespace = None;
                    }
                    o.resource = Some(r);
                }
                Err(e) => {
                    out.push(error(o, e.message));
                    continue;
                }
            }
        }
        let Some(path) = o.path() else { continue };
        let resource = o
            .resource
            .as_ref()
            .map(|r| r.qualified())
            .unwrap_or_default();
        let result = c.apply(&path, &o.body, false);
        out.push(match result {
            Ok(a) if a.ok() => Applied {
                object: o.label(),
                result: match (a.status, p.action.as_str()) {
                    (201, _) => "created",
                    (_, "unchanged") => "unchanged",
                    _ => "configured",
                }
                .into(),
                error: None,
            },
            Ok(a) => {
                let access = c.access("patch", &resource, o.namespace.as_deref(), Some(&o.name));
                error(o, a.error(&access).message)
            }
            Err(e) => error(o, e.message),
        });
    }
    if prune {
        for p in &plan.prune {
            let result = c.delete(&p.path);
            out.push(match result {
                Ok(a) if a.ok() || a.status == 404 => Applied {
                    object: p.object.clone(),
                    result: "pruned".into(),
                    error: None,
                },
                Ok(a) => Applied {
                    object: p.object.clone(),
                    result: "error".into(),
                    error: Some(a.error(&c.access("delete", &p.path, None, None)).message),
                },
                Err(e) => Applied {
                    object: p.object.clone(),
                    result: "error".into(),
                    error: Some(e.message),
                },
            });
        }
    }
    out
}

fn error(o: &Obj, message: String) -> Applied {
    Applied {
        object: o.label(),
        result: "error".into(),
        error: Some(message),
    }
}

/// A write that ran: its approval and the result per object.
pub type Done = (ApprovalInfo, Vec<Applied>);

/// The plan of `objs`, and with `apply` the approval and the results.
pub fn plan_and_apply(
    c: &mut Cluster,
    objs: &mut [Obj],
    prune_selector: Option<&str>,
    prune: bool,
    apply: bool,
) -> Result<(Plan, Option<Done>), ToolError> {
    if prune && prune_selector.is_none() {
        return Err(ToolError::invalid(
            "prune",
            "prune needs `prune_selector`: the label every object of this set carries (e.g. \
             `app.kubernetes.io/part-of=shop`), so only objects of this set are deleted",
        ));
    }
    let p = plan(c, objs, prune_selector)?;
    if !apply {
        return Ok((p, None));
    }
    if p.summary.errors > 0 {
        return Err(ToolError::invalid(
            "manifests",
            format!(
                "the server refused {} object(s) in the dry run; nothing was applied. Fix them \
                 (see `diff`) and call again",
                p.summary.errors
            ),
        )
        .with_detail(json!(
            p.objects
                .iter()
                .filter(|o| o.action == "error")
                .collect::<Vec<_>>()
        )));
    }
    let approval = approve(
        "kubernetes",
        &c.profile,
        namespaces(objs, &p, prune),
        &p.text(),
    )?;
    let results = run(c, objs, &p, prune);
    Ok((p, Some((approval, results))))
}
