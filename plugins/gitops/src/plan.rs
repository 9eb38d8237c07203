//! `diff`: what an apply of the objects would change, as `kubectl diff` shows it. Each object
//! is server-side applied with `dryRun=All` (so defaulting, admission and field ownership are
//! the server's) and compared with the live object, both without the fields the server owns
//! (`managedFields`, `resourceVersion`, `generation`, `uid`, `creationTimestamp`, `status`):
//! one unified diff of YAML renderings per object, a summary, and with a `prune_selector` the
//! live objects carrying that label that the set no longer has.

use std::collections::BTreeSet;

use infra_sdk::kube::{check_namespace, query_string};
use infra_sdk::prelude::*;
use infra_sdk::unified_diff;

use crate::cluster::Cluster;
use crate::objects::Obj;

/// Lines of context around each change.
const CONTEXT: usize = 3;
/// Metadata the server writes: left out of both sides of a diff.
const SERVER_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
];

/// What an apply would do to one object.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ObjectPlan {
    /// `Deployment shop/api`.
    pub object: String,
    /// `create`, `update`, `unchanged` or `error`.
    pub action: String,
    /// The unified diff, live (`---`) to applied (`+++`); absent when unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Why the server refused the dry run, when `action` is `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A live object an apply with `prune` would delete.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PruneCandidate {
    /// `ConfigMap shop/old`.
    pub object: String,
    /// Its URL path (where the delete goes).
    #[serde(skip)]
    pub path: String,
    /// The namespace the guard counts the delete in.
    #[serde(skip)]
    pub write_namespace: String,
}

/// Counts of a plan.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct Summary {
    /// Objects that do not exist yet.
    pub create: usize,
    /// Objects that would change.
    pub update: usize,
    /// Objects already as given.
    pub unchanged: usize,
    /// Live objects a prune would delete.
    pub prune: usize,
    /// Objects the server refused.
    pub errors: usize,
}

/// The plan of a set of objects.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Plan {
    /// Per object, in apply order.
    pub objects: Vec<ObjectPlan>,
    /// The counts.
    pub summary: Summary,
    /// With `prune_selector`: live objects carrying the label that the set does not have.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prune: Vec<PruneCandidate>,
}

impl Plan {
    /// The plan as the user reads it before approving: the summary, then each change.
    pub fn text(&self) -> String {
        let s = &self.summary;
        let mut t = format!(
            "{} to create, {} to update, {} unchanged, {} to prune, {} refused by the server\n",
            s.create, s.update, s.unchanged, s.prune, s.errors
        );
        for o in &self.objects {
            if o.action == "unchanged" {
                continue;
            }
            t.push_str(&format!("\n{} {}\n", o.action, o.object));
            if let Some(d) = &o.diff {
                t.push_str(d);
            }
            if let Some(e) = &o.error {
                t.push_str(&format!("error: {e}\n"));
            }
        }
        for p in &self.prune {
            t.push_str(&format!("\nprune {}\n", p.object));
        }
        t
    }
}

/// The object without what the server owns, as both sides of a diff show it.
pub fn normalize(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
        if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in SERVER_METADATA {
                m.remove(*k);
            }
            if m.get("annotations")
                .is_some_and(|a| a.as_object().is_some_and(|a| a.is_empty()))
            {
                m.remove("annotations");
            }
        }
    }
    v
}

fn yaml(v: &Value) -> String {
    serde_yaml_ng::to_string(v).unwrap_or_else(|_| v.to_string())
}

/// The plan of one object: dry-run apply, live read, diff.
fn plan_one(c: &Cluster, o: &Obj, created_namespaces: &BTreeSet<String>) -> ObjectPlan {
    let label = o.label();
    let creation = |note: Option<&str>| {
        let mut diff = unified_diff("", &yaml(&normalize(&o.body)), "live", "applied", CONTEXT);
        if let Some(n) = note {
            diff.push_str(&format!("# {n}\n"));
        }
        ObjectPlan {
            object: label.clone(),
            action: "create".into(),
            diff: Some(diff),
            error: None,
        }
    };
    let refused = |e: ToolError| ObjectPlan {
        object: label.clone(),
        action: "error".into(),
        diff: None,
        error: Some(e.message),
    };
    let (Some(path), Some(r)) = (o.path(), o.resource.as_ref()) else {
        return creation(Some(
            "its type is defined by a CRD in this set: the server validates it once the CRD is applied",
        ));
    };
    let resource = r.qualified();
    let access = c.access("get", &resource, o.namespace.as_deref(), Some(&o.name));
    let live = match c.get_opt(&path, &access) {
        Ok(l) => l,
        Err(e) => return refused(e),
    };
    let applied = match c.apply(&path, &o.body, true) {
        Ok(a) if a.ok() => a.body,
        Ok(a)
            if a.status == 404
                && o.namespace
                    .as_ref()
                    .is_some_and(|ns| created_namespaces.contains(ns)) =>
        {
            return creation(Some(
                "its namespace is created by this set: the server validates it then",
            ));
        }
        Ok(a) => {
            let access = c.access("patch", &resource, o.namespace.as_deref(), Some(&o.name));
            return refused(a.error(&access));
        }
        Err(e) => return refused(e),
    };
    let new = yaml(&normalize(&applied));
    let Some(live) = live else {
        return ObjectPlan {
            object: label,
            action: "create".into(),
            diff: Some(unified_diff("", &new, "live", "applied", CONTEXT)),
            error: None,
        };
    };
    let diff = unified_diff(&yaml(&normalize(&live)), &new, "live", "applied", CONTEXT);
    ObjectPlan {
        object: label,
        action: if diff.is_empty() {
            "unchanged"
        } else {
            "update"
        }
        .into(),
        diff: (!diff.is_empty()).then_some(diff),
        error: None,
    }
}

/// Checks a label selector: it goes into a query string (encoded), but an empty one would
/// select every object, which a prune must never do.
pub fn check_selector(sel: &str) -> Result<(), ToolError> {
    let ok = !sel.trim().is_empty()
        && sel.len() <= 1024
        && sel
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " -_./=!,()".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ToolError::invalid(
            "prune_selector",
            format!(
                "{sel:?} is not a label selector a prune can use: give a non-empty selector such \
                 as `app.kubernetes.io/managed-by=infra,app=shop`"
            ),
        ))
    }
}

/// Live objects with `selector` of the set's types, in the set's namespaces, not in the set.
fn prune_candidates(
    c: &Cluster,
    objs: &[Obj],
    selector: &str,
) -> Result<Vec<PruneCandidate>, ToolError> {
    let wanted: BTreeSet<(String, String, Option<String>, String)> = objs
        .iter()
        .map(|o| {
            (
                o.api_version().into(),
                o.kind().into(),
                o.namespace.clone(),
                o.name.clone(),
            )
        })
        .collect();
    // Each type once per namespace it appears in (cluster-wide for cluster-scoped types).
    let mut scopes: Vec<(infra_sdk::kube::ApiResource, Option<String>)> = Vec::new();
    for o in objs {
        let Some(r) = &o.resource else { continue };
        let key = (r.clone(), o.namespace.clone());
        if !scopes.contains(&key) {
            scopes.push(key);
        }
    }
    let mut out = Vec::new();
    for (r, ns) in scopes {
        if let Some(ns) = &ns {
            check_namespace("namespace", ns)?;
        }
        let path = format!(
            "{}{}",
            r.collection_path(ns.as_deref()),
            query_string(&[("labelSelector", selector.to_string())])
        );
        let resource = r.qualified();
        let list = c.get(&path, &c.access("list", &resource, ns.as_deref(), None))?;
        for item in list["items"].as_array().into_iter().flatten() {
            let name = item["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let item_ns = item["metadata"]["namespace"].as_str().map(str::to_string);
            let key = (
                r.api_version(),
                r.kind.clone(),
                item_ns.clone(),
                name.clone(),
            );
            if wanted.contains(&key) || infra_sdk::kube::check_name("name", &name).is_err() {
                continue;
            }
            let obj = Obj {
                body: json!({"apiVersion": r.api_version(), "kind": r.kind}),
                resource: Some(r.clone()),
                namespace: item_ns,
                name,
            };
            out.push(PruneCandidate {
                object: obj.label(),
                path: obj.path().unwrap_or_default(),
                write_namespace: obj.write_namespace(),
            });
        }
    }
    Ok(out)
}

/// The plan of `objs` (and prune candidates when a selector is given).
pub fn plan(c: &Cluster, objs: &[Obj], prune_selector: Option<&str>) -> Result<Plan, ToolError> {
    let created_namespaces: BTreeSet<String> = objs
        .iter()
        .filter(|o| o.kind() == "Namespace" && o.namespace.is_none())
        .map(|o| o.name.clone())
        .collect();
    let objects: Vec<ObjectPlan> = objs
        .iter()
        .map(|o| plan_one(c, o, &created_namespaces))
        .collect();
    let prune = match prune_selector {
        Some(sel) => {
            check_selector(sel)?;
            prune_candidates(c, objs, sel)?
        }
        None => Vec::new(),
    };
    let count = |a: &str| objects.iter().filter(|o| o.action == a).count();
    let summary = Summary {
        create: count("create"),
        update: count("update"),
        unchanged: count("unchanged"),
        prune: prune.len(),
        errors: count("error"),
    };
    Ok(Plan {
        objects,
        summary,
        prune,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_owned_fields_are_not_part_of_a_diff() {
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "x", "uid": "u1", "resourceVersion": "7",
                         "generation": 2, "creationTimestamp": "2026-01-01T00:00:00Z",
                         "managedFields": [{"manager": "infra"}], "labels": {"app": "a"}},
            "data": {"k": "v"}, "status": {"phase": "x"}});
        let n = normalize(&live);
        assert_eq!(
            n,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "x", "labels": {"app": "a"}}, "data": {"k": "v"}})
        );
    }

    #[test]
    fn selectors_that_would_select_everything_are_refused() {
        for bad in ["", "  ", "app=a;rm", "a\nb"] {
            assert_eq!(
                check_selector(bad).unwrap_err().field.as_deref(),
                Some("prune_selector")
            );
        }
        check_selector("app.kubernetes.io/managed-by=infra,tier!=db").unwrap();
    }
}
