//! The objects an action works on: read from inline manifests or an `artifact://` render,
//! checked (every name and namespace must stay inside its URL), placed in a namespace, resolved
//! through discovery, and ordered as an apply must go — Namespaces, then CRDs, then the rest.

use infra_sdk::kube::{ApiResource, check_name, check_namespace, parse_manifests};
use infra_sdk::prelude::*;

use crate::caps::artifacts;
use crate::cluster::Cluster;

/// Most bytes of manifests read from an artifact.
const MAX_MANIFEST_BYTES: u64 = 8 * 1024 * 1024;
/// Most objects one call works on.
pub const MAX_OBJECTS: usize = 500;

/// Where the manifests come from: exactly one of the two.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct Source {
    /// Inline manifests: YAML documents separated by `---`, a JSON object, a JSON array or a
    /// `List`.
    pub manifests: Option<String>,
    /// An `artifact://` URI holding the manifests (e.g. a `render`'s output).
    pub artifact: Option<String>,
    /// The namespace of namespaced objects that name none (default `default`).
    pub namespace: Option<String>,
}

/// One object of the set, resolved.
#[derive(Debug, Clone)]
pub struct Obj {
    /// The object as given, its namespace filled in.
    pub body: Value,
    /// Its resource type, from discovery; `None` when its CRD is only in this set (not served yet).
    pub resource: Option<ApiResource>,
    /// Its namespace (`None` for cluster-scoped objects).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

impl Obj {
    /// `apps/v1`.
    pub fn api_version(&self) -> &str {
        self.body["apiVersion"].as_str().unwrap_or_default()
    }

    /// `Deployment`.
    pub fn kind(&self) -> &str {
        self.body["kind"].as_str().unwrap_or_default()
    }

    /// `Deployment shop/api`, `Namespace shop`: how results name it.
    pub fn label(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind(), self.name),
            None => format!("{} {}", self.kind(), self.name),
        }
    }

    /// Its URL path (needs the resource).
    pub fn path(&self) -> Option<String> {
        self.resource
            .as_ref()
            .map(|r| r.object_path(self.namespace.as_deref(), &self.name))
    }

    /// The namespace a write of it touches as the host's guard counts it: a Namespace's own
    /// name, `""` for other cluster-scoped objects.
    pub fn write_namespace(&self) -> String {
        match (&self.namespace, self.kind()) {
            (Some(ns), _) => ns.clone(),
            (None, "Namespace") if self.api_version() == "v1" => self.name.clone(),
            (None, _) => String::new(),
        }
    }

    /// Apply order: Namespaces 0, CRDs 1, the rest 2.
    fn rank(&self) -> u8 {
        match self.kind() {
            "Namespace" => 0,
            "CustomResourceDefinition" => 1,
            _ => 2,
        }
    }
}

/// Reads the manifests of `src`.
pub fn read(src: &Source) -> Result<Vec<Value>, ToolError> {
    let text = match (&src.manifests, &src.artifact) {
        (Some(m), None) => m.clone(),
        (None, Some(uri)) => {
            if !uri.starts_with("artifact://") {
                return Err(ToolError::invalid(
                    "artifact",
                    format!(
                        "{uri:?} is not an artifact URI; give the artifact://… URI a render returned"
                    ),
                ));
            }
            let bytes = artifacts::read(uri, 0, MAX_MANIFEST_BYTES + 1)?;
            if bytes.len() as u64 > MAX_MANIFEST_BYTES {
                return Err(ToolError::invalid(
                    "artifact",
                    format!("{uri} is larger than {MAX_MANIFEST_BYTES} bytes; apply it in parts"),
                ));
            }
            String::from_utf8(bytes).map_err(|_| {
                ToolError::invalid(
                    "artifact",
                    format!("{uri} is not UTF-8 text; give YAML or JSON manifests"),
                )
            })?
        }
        (Some(_), Some(_)) => {
            return Err(ToolError::invalid(
                "manifests",
                "give either `manifests` or `artifact`, not both",
            ));
        }
        (None, None) => {
            return Err(ToolError::invalid(
                "manifests",
                "missing: give the objects as `manifests` (YAML or JSON) or an `artifact` URI \
                 holding them",
            ));
        }
    };
    let objs = parse_manifests(&text)?;
    if objs.is_empty() {
        return Err(ToolError::invalid(
            "manifests",
            "no objects in the manifests",
        ));
    }
    if objs.len() > MAX_OBJECTS {
        return Err(ToolError::invalid(
            "manifests",
            format!(
                "{} objects; give at most {MAX_OBJECTS} per call",
                objs.len()
            ),
        ));
    }
    Ok(objs)
}

/// Checks `apiVersion` (`v1`, `group/version`) and `kind` (a CamelCase word): they reach URLs
/// through discovery, so nothing like `../../x` may pass.
fn check_type(i: usize, api_version: &str, kind: &str) -> Result<(), ToolError> {
    let word = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let group_ok = group.is_empty()
        || (group.len() <= 253
            && group.split('.').all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            }));
    if !group_ok || !word(version) {
        return Err(ToolError::invalid(
            "manifests",
            format!(
                "object {i}: apiVersion {api_version:?} is not an API version; write `v1` or \
                 `group/version` such as `apps/v1`"
            ),
        ));
    }
    if !word(kind) || kind.len() > 63 {
        return Err(ToolError::invalid(
            "manifests",
            format!("object {i}: kind {kind:?} is not a kind; write one such as `Deployment`"),
        ));
    }
    Ok(())
}

/// Checks and resolves the objects, fills in namespaces, and orders them for an apply.
pub fn resolve(
    cluster: &mut Cluster,
    raw: Vec<Value>,
    default_ns: Option<&str>,
) -> Result<Vec<Obj>, ToolError> {
    if let Some(ns) = default_ns {
        check_namespace("namespace", ns)?;
    }
    let mut out = Vec::new();
    let crds: Vec<(String, String)> = raw
        .iter()
        .filter(|o| o["kind"] == "CustomResourceDefinition")
        .filter_map(|o| {
            let g = o["spec"]["group"].as_str()?;
            let k = o["spec"]["names"]["kind"].as_str()?;
            Some((g.to_string(), k.to_string()))
        })
        .collect();
    for (i, mut body) in raw.into_iter().enumerate() {
        let i = i + 1;
        let api_version = body["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = body["kind"].as_str().unwrap_or_default().to_string();
        check_type(i, &api_version, &kind)?;
        let name = body["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        check_name(&format!("manifests (object {i}: metadata.name)"), &name)?;
        let given_ns = body["metadata"]["namespace"].as_str().map(str::to_string);
        if let Some(ns) = &given_ns {
            check_namespace(&format!("manifests (object {i}: metadata.namespace)"), ns)?;
        }
        let resource = match cluster.resolve_kind(&api_version, &kind) {
            Ok(r) => Some(r),
            Err(e) if e.kind == ErrorKind::NotFound => {
                let group = api_version.split_once('/').map(|(g, _)| g).unwrap_or("");
                if !crds.iter().any(|(g, k)| g == group && *k == kind) {
                    return Err(ToolError::invalid(
                        "manifests",
                        format!("object {i} ({kind} {name}): {}", e.message),
                    ));
                }
                None
            }
            Err(e) => return Err(e),
        };
        // A type whose CRD is in this set is not served yet: namespaced unless it says otherwise.
        let namespaced = match &resource {
            Some(r) => r.namespaced,
            None => given_ns.is_some() || default_ns.is_some(),
        };
        let namespace = if namespaced {
            let ns = given_ns
                .or(default_ns.map(str::to_string))
                .unwrap_or("default".into());
            body["metadata"]["namespace"] = json!(ns);
            Some(ns)
        } else {
            if let Some(m) = body["metadata"].as_object_mut() {
                m.remove("namespace");
            }
            None
        };
        out.push(Obj {
            body,
            resource,
            namespace,
            name,
        });
    }
    out.sort_by_key(Obj::rank);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_types_are_refused_naming_the_object() {
        for (v, k) in [
            ("v1", "../../x"),
            ("../../x", "Pod"),
            ("apps/v1/../..", "Pod"),
            ("v1", ""),
            ("Apps/v1", "Pod"),
            ("v1", "Pod?x=1"),
        ] {
            let e = check_type(3, v, k).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("manifests"));
            assert!(e.message.starts_with("object 3:"), "{e}");
        }
        check_type(1, "v1", "ConfigMap").unwrap();
        check_type(1, "kustomize.toolkit.fluxcd.io/v1", "Kustomization").unwrap();
    }

    #[test]
    fn one_source_only() {
        assert!(read(&Source::default()).is_err());
        let both = Source {
            manifests: Some("x".into()),
            artifact: Some("artifact://a".into()),
            namespace: None,
        };
        assert_eq!(read(&both).unwrap_err().field.as_deref(), Some("manifests"));
    }
}
