//! The runbook names and inputs of the tool infra replaces: a run of `gitops.sync.argocd` with
//! `app_name` is a run of `gitops.sync` with `app`. Resolved when a run starts, against the
//! inputs the runbook declares; every entry is listed in docs/compat.md.

use std::path::Path;

use serde_json::{Map, Value, json};

/// Runbook names of the tool infra replaces → infra's built-in that does the same.
pub const NAMES: &[(&str, &str)] = &[
    ("api.check", "http.check"),
    ("gitops.plan.argocd", "gitops.plan"),
    ("gitops.plan.flux", "gitops.plan"),
    ("gitops.sync.argocd", "gitops.sync"),
    ("gitops.sync.flux", "gitops.sync"),
    ("gitops.verify.argocd", "gitops.verify"),
    ("gitops.verify.flux", "gitops.verify"),
    ("gitops.rollback.argocd", "gitops.rollback"),
];

/// Input names → infra's, used when the runbook declares infra's name and not the one sent.
pub const INPUTS: &[(&str, &str)] = &[
    ("target_name", "target"),
    ("app_name", "app"),
    ("kustomization_name", "kustomization"),
    ("base_branch", "base"),
    ("max_attempts", "attempts"),
];

/// Inputs left out, with why: they name nothing infra keeps, and leaving them out changes
/// nothing the run reaches.
pub const IGNORED_INPUTS: &[(&str, &str)] = &[(
    "project_name",
    "projects are not kept: targets.json and profiles.json name the machines and services",
)];

/// Inputs refused, with why: leaving them out would reach something else than what was meant.
pub const DROPPED_INPUTS: &[(&str, &str)] = &[(
    "kubeconfig",
    "infra reaches a cluster through a kubernetes profile of profiles.json, never a kubeconfig \
     file: pass `profile`",
)];

/// Inputs of the replaced tool that named a repository by absolute path.
const REPOSITORY_INPUTS: &[&str] = &["repo_root", "repo_path"];

/// The built-in a name of the replaced tool stands for.
pub fn name(sent: &str) -> Option<&'static str> {
    NAMES.iter().find(|(o, _)| *o == sent).map(|(_, n)| *n)
}

/// An input refused: its name and why.
#[derive(Debug)]
pub struct DroppedInput {
    /// The input sent.
    pub input: String,
    /// Why, and what to pass instead.
    pub why: String,
}

/// Renames `inputs` of the replaced tool to the names the runbook takes (`declares` says which);
/// an absolute `repo_root` or `repo_path` in a root (`locate`) becomes `root` + `path`. Returns
/// what was understood, sent → meant, for the run's answer.
pub fn inputs(
    inputs: &mut Map<String, Value>,
    declares: &dyn Fn(&str) -> bool,
    locate: &dyn Fn(&Path) -> Option<(String, String)>,
) -> Result<Map<String, Value>, DroppedInput> {
    let mut understood = Map::new();
    for (old, why) in DROPPED_INPUTS {
        if inputs.contains_key(*old) && !declares(old) {
            return Err(DroppedInput {
                input: old.to_string(),
                why: why.to_string(),
            });
        }
    }
    for (old, why) in IGNORED_INPUTS {
        if !declares(old)
            && let Some(v) = inputs.remove(*old)
        {
            understood.insert(old.to_string(), json!({"sent": v, "ignored": why}));
        }
    }
    for (old, new) in INPUTS {
        if declares(new)
            && !declares(old)
            && !inputs.contains_key(*new)
            && let Some(v) = inputs.remove(*old)
        {
            inputs.insert(new.to_string(), v);
            understood.insert(old.to_string(), json!({"meant": new}));
        }
    }
    for old in REPOSITORY_INPUTS {
        if declares(old)
            || !declares("root")
            || !inputs.contains_key(*old)
            || inputs.contains_key("root")
        {
            continue;
        }
        let Some(note) = super::repository_in_a_root(inputs, old, locate) else {
            return Err(DroppedInput {
                input: old.to_string(),
                why: format!(
                    "{} lies in no root of the policy; add a root containing it under [roots], \
                     or pass `root` and `path`",
                    inputs[*old]
                ),
            });
        };
        understood.insert(old.to_string(), note);
    }
    Ok(understood)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replaced_tools_inputs_become_the_runbooks() {
        let declared = ["root", "path", "target", "app"];
        let declares = |k: &str| declared.contains(&k);
        let locate = |p: &Path| {
            p.strip_prefix("/srv/work")
                .ok()
                .map(|r| ("work".to_string(), r.display().to_string()))
        };
        let mut i = json!({"repo_path": "/srv/work/app", "target_name": "prod",
                           "project_name": "shop", "app_name": "web"})
        .as_object()
        .unwrap()
        .clone();
        let understood = inputs(&mut i, &declares, &locate).unwrap();
        assert_eq!(
            Value::Object(i),
            json!({"root": "work", "path": "app", "target": "prod", "app": "web"})
        );
        assert_eq!(understood.len(), 4, "{understood:?}");

        let mut i = json!({"repo_root": "/elsewhere"})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(
            inputs(&mut i, &declares, &locate).unwrap_err().input,
            "repo_root"
        );
        let mut i = json!({"kubeconfig": "~/.kube/config"})
            .as_object()
            .unwrap()
            .clone();
        assert!(
            inputs(&mut i, &declares, &locate)
                .unwrap_err()
                .why
                .contains("profile")
        );
        // A runbook that declares the old name itself keeps it.
        let mut i = json!({"app_name": "web"}).as_object().unwrap().clone();
        inputs(&mut i, &|k| k == "app_name" || k == "app", &locate).unwrap();
        assert!(i.contains_key("app_name"));
        assert_eq!(name("gitops.sync.argocd"), Some("gitops.sync"));
        assert_eq!(name("gitops.sync"), None);
    }
}
