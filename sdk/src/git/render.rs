//! Rendering manifests from a repository: `kubectl kustomize DIR` (or `helm template`) → the
//! manifests in an artifact and a summary of each object. The multi-document YAML stream is
//! parsed in the guest with `serde_yaml_ng` (the maintained fork of serde_yaml).

use super::check::relative;
use super::runner::{Opts, Runner};
use crate::prelude::*;
use serde_yaml_ng::Value as Yaml;

/// Which renderer.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Renderer {
    /// `kubectl kustomize`.
    #[default]
    Kustomize,
    /// `helm template`.
    Helm,
}

/// Rendered manifests.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Rendered {
    /// The program line that rendered them.
    pub command: String,
    /// The whole YAML stream.
    pub manifests: Artifact,
    /// Objects rendered.
    pub count: u64,
    /// Objects, at most `max_entries`.
    pub objects: Vec<Object>,
    /// Objects left out past `max_entries`.
    pub objects_omitted: u64,
    /// Every distinct container image, sorted.
    pub images: Vec<String>,
}

/// One rendered object.
#[derive(Debug, Serialize, JsonSchema, PartialEq)]
pub struct Object {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Images of its containers, init containers and ephemeral containers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
}

/// Objects of a multi-document YAML stream (a `List` counts as its items); a document that is
/// not YAML is an error naming it.
pub fn objects(stream: &str) -> Result<Vec<Object>, String> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(stream).enumerate() {
        let v = Yaml::deserialize(doc).map_err(|e| format!("document {}: {e}", i + 1))?;
        collect(&v, &mut out);
    }
    Ok(out)
}

fn collect(v: &Yaml, out: &mut Vec<Object>) {
    let s = |v: &Yaml, k: &str| v.get(k).and_then(Yaml::as_str).map(String::from);
    if v.is_null() {
        return;
    }
    if s(v, "kind").is_some_and(|k| k.ends_with("List"))
        && let Some(items) = v.get("items").and_then(Yaml::as_sequence)
    {
        items.iter().for_each(|i| collect(i, out));
        return;
    }
    let meta = v.get("metadata").cloned().unwrap_or(Yaml::Null);
    let mut images = Vec::new();
    find_images(v, &mut images);
    out.push(Object {
        api_version: s(v, "apiVersion").unwrap_or_default(),
        kind: s(v, "kind").unwrap_or_default(),
        name: s(&meta, "name").unwrap_or_default(),
        namespace: s(&meta, "namespace"),
        images,
    });
}

/// The `image` of every entry of a `containers`-like list anywhere in `v` (pods, pod
/// templates, cron job templates alike).
fn find_images(v: &Yaml, out: &mut Vec<String>) {
    match v {
        Yaml::Mapping(m) => {
            for (k, child) in m {
                let list = k.as_str().is_some_and(|k| {
                    matches!(k, "containers" | "initContainers" | "ephemeralContainers")
                });
                if let (true, Some(items)) = (list, child.as_sequence()) {
                    for c in items {
                        if let Some(i) = c.get("image").and_then(Yaml::as_str)
                            && !out.iter().any(|x| x == i)
                        {
                            out.push(i.to_string());
                        }
                    }
                } else {
                    find_images(child, out);
                }
            }
        }
        Yaml::Sequence(s) => s.iter().for_each(|c| find_images(c, out)),
        _ => {}
    }
}

/// Checks a helm release name as helm does: lowercase letters, digits and `-`, starting and
/// ending with a letter or digit, at most 53 characters.
pub fn release_name(field: &str, name: &str) -> Result<(), ToolError> {
    let ok = !name.is_empty()
        && name.len() <= 53
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    match ok {
        true => Ok(()),
        false => Err(ToolError::invalid(
            field,
            format!(
                "{name:?} is not a helm release name: lowercase letters, digits and '-', at most \
                 53, e.g. `shop`"
            ),
        )),
    }
}

/// What `render` takes besides the repository.
pub struct RenderArgs<'a> {
    /// The directory, relative to the repository.
    pub dir: &'a str,
    /// Which renderer.
    pub renderer: Renderer,
    /// helm values files.
    pub values: &'a [String],
    /// helm release name.
    pub release: &'a str,
    /// helm namespace.
    pub namespace: Option<&'a str>,
}

/// Runs the renderer, stores the manifests, summarises the objects (at most `max` listed).
pub fn render(repo: &impl Runner, r: &RenderArgs, max: usize) -> Result<Rendered, ToolError> {
    relative("dir", r.dir)?;
    if r.dir.starts_with('-') {
        return Err(ToolError::invalid(
            "dir",
            "a directory name may not start with '-'",
        ));
    }
    let (program, args) = match r.renderer {
        Renderer::Kustomize => ("kubectl", vec!["kustomize".to_string(), r.dir.to_string()]),
        Renderer::Helm => {
            release_name("release", r.release)?;
            // Options glued to their values (`--values=…`), so no value is read as an option.
            let mut a = vec![
                "template".to_string(),
                r.release.to_string(),
                r.dir.to_string(),
            ];
            for v in r.values {
                relative("values", v)?;
                a.push(format!("--values={v}"));
            }
            if let Some(ns) = r.namespace {
                crate::kube::check_namespace("namespace", ns)?;
                a.push(format!("--namespace={ns}"));
            }
            ("helm", a)
        }
    };
    let command = format!("{program} {}", args.join(" "));
    let out = repo.exec(program, &args, Opts::default()).map_err(|e| {
        if e.kind == ErrorKind::Denied && program == "helm" {
            ToolError::denied(format!(
                "{}; `helm template` needs a `helm` program in the policy's [programs] granted \
                 under the plugin's [plugin.<name>.exec] programs",
                e.message
            ))
        } else {
            e
        }
    })?;
    if out.exit_code != Some(0) {
        return Err(ToolError::failed(format!(
            "{command} in {} failed (exit {:?}): {}; check the overlay's kustomization.yaml",
            repo.name(),
            out.exit_code,
            super::cut(String::from_utf8_lossy(&out.stderr).trim(), 2000)
        ))
        .with_detail(json!({"field": "dir"})));
    }
    let manifests: Artifact = match &out.stdout_artifact {
        Some(a) if out.stdout_truncated => a.clone().into(),
        _ => repo
            .put_artifact(
                &out.stdout,
                "application/yaml",
                &format!("{command} in {}", repo.name()),
            )?
            .into(),
    };
    let (bytes, partial) = repo.full_stdout(&out)?;
    if partial {
        return Err(ToolError::failed(format!(
            "{command} printed {} bytes, more than the plugin parses; the manifests are in {}",
            manifests.size, manifests.uri
        )));
    }
    let all = objects(&String::from_utf8_lossy(&bytes))
        .map_err(|e| ToolError::failed(format!("{command}: the output is not YAML: {e}")))?;
    let mut images: Vec<String> = all.iter().flat_map(|o| o.images.iter().cloned()).collect();
    images.sort();
    images.dedup();
    let count = all.len() as u64;
    let objects: Vec<Object> = all.into_iter().take(max).collect();
    Ok(Rendered {
        command,
        manifests,
        count,
        objects_omitted: count - objects.len() as u64,
        objects,
        images,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_becomes_objects_with_images() {
        let stream = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n---\n\
apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: prod\nspec:\n  template:\n    spec:\n      \
initContainers:\n      - name: i\n        image: busybox:1\n      containers:\n      - name: w\n        image: nginx:1.27\n---\n\
apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: c\n---\n";
        let o = objects(stream).unwrap();
        assert_eq!(o.len(), 3);
        assert_eq!(o[1].kind, "Deployment");
        assert_eq!(o[1].namespace.as_deref(), Some("prod"));
        assert_eq!(o[1].images, ["busybox:1", "nginx:1.27"]);
        assert_eq!(o[2].name, "c");
        assert!(objects("a: [\n").unwrap_err().contains("document 1"));
    }

    #[test]
    fn release_names_are_helms_and_never_options() {
        release_name("release", "shop").unwrap();
        release_name("release", "a-1").unwrap();
        for bad in [
            "",
            "--post-renderer=/x",
            "-x",
            "x-",
            "Shop",
            "a b",
            &"a".repeat(54),
        ] {
            assert_eq!(
                release_name("release", bad).unwrap_err().field.as_deref(),
                Some("release"),
                "{bad}"
            );
        }
    }
}
