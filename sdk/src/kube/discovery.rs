//! API discovery: which resource types a cluster serves (`/api/v1`, `/apis`, `/apis/<g>/<v>`),
//! and the resolution of a kind as people write it — `pods`, `pod`, `Pod`, `po`,
//! `deployments.apps`, `applications.argoproj.io` — to one of them.

use std::collections::BTreeMap;

use serde_json::Value;

use super::path::ApiResource;
use crate::{ErrorKind, ToolError};

/// Reads one discovery document; the plugin implements it over its `http` capability.
pub trait Fetch {
    /// The JSON at `path` (e.g. `/apis`), or the error the API's answer maps to. The host keeps
    /// discovery documents per profile for a few minutes; with `fresh` the request carries
    /// [`NO_CACHE`] and the server is read again.
    fn get_json(&mut self, path: &str, fresh: bool) -> Result<Value, ToolError>;
}

/// The request header that asks the host for a discovery document read now, not kept.
pub const NO_CACHE: (&str, &str) = ("cache-control", "no-cache");

/// A group as `/apis` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The group name, e.g. `apps`.
    pub name: String,
    /// The version the server prefers.
    pub preferred: String,
    /// Every version served.
    pub versions: Vec<String>,
}

/// A kind as the agent wrote it, split into name, group and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindSpec {
    /// The plural, singular, kind or short name (`deployments`, `Deployment`, `deploy`).
    pub name: String,
    /// The group after the first dot (`apps`, `argoproj.io`), if given.
    pub group: Option<String>,
    /// A version between name and group (`deployments.v1.apps`), if given.
    pub version: Option<String>,
}

impl KindSpec {
    /// Parses and checks `kind` (letters, digits, `.` and `-` only: it never reaches a URL
    /// unresolved, but a kind with `/` or `..` is a mistake worth naming).
    pub fn parse(kind: &str) -> Result<Self, ToolError> {
        let ok = !kind.is_empty()
            && kind.len() <= 253
            && kind
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            && !kind.starts_with('.')
            && !kind.ends_with('.')
            && !kind.contains("..");
        if !ok {
            return Err(ToolError::invalid(
                "kind",
                format!(
                    "{kind:?} is not a resource type: write a plural (`pods`), a kind (`Pod`), a \
                     short name (`po`) or `plural.group` (`deployments.apps`, \
                     `applications.argoproj.io`)"
                ),
            ));
        }
        let Some((name, rest)) = kind.split_once('.') else {
            return Ok(Self {
                name: kind.into(),
                group: None,
                version: None,
            });
        };
        let (version, group) = match rest.split_once('.') {
            Some((v, g)) if is_version(v) => (Some(v.to_string()), g.to_string()),
            _ => (None, rest.to_string()),
        };
        Ok(Self {
            name: name.into(),
            group: Some(group),
            version,
        })
    }

    /// Whether `r` is what this spec names (ignoring group and version).
    fn names(&self, r: &ApiResource) -> bool {
        let n = self.name.to_ascii_lowercase();
        r.resource == n
            || r.singular == n
            || r.kind.to_ascii_lowercase() == n
            || r.short_names.contains(&n)
    }
}

/// `v1`, `v1beta1`, `v2alpha3`: a Kubernetes API version.
fn is_version(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('v') else {
        return false;
    };
    let digits = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    if digits.len() == rest.len() {
        return false;
    }
    digits.is_empty()
        || ["alpha", "beta"].iter().any(|p| {
            digits
                .strip_prefix(p)
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
}

/// The resource types of an `APIResourceList` (`/api/v1`, `/apis/<g>/<v>`); subresources
/// (`pods/log`) are left out. The group and version come from its `groupVersion`.
pub fn parse_resource_list(doc: &Value) -> Vec<ApiResource> {
    let gv = doc["groupVersion"].as_str().unwrap_or("v1");
    let (group, version) = gv.split_once('/').unwrap_or(("", gv));
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    doc["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let name = r["name"].as_str()?;
            if name.contains('/') {
                return None;
            }
            Some(ApiResource {
                group: group.into(),
                version: version.into(),
                resource: name.into(),
                kind: r["kind"].as_str().unwrap_or_default().into(),
                namespaced: r["namespaced"].as_bool().unwrap_or(false),
                singular: r["singularName"].as_str().unwrap_or_default().into(),
                short_names: strings(&r["shortNames"]),
                verbs: strings(&r["verbs"]),
            })
        })
        .collect()
}

/// The groups of an `APIGroupList` (`/apis`), in the server's order (its priority).
pub fn parse_group_list(doc: &Value) -> Vec<Group> {
    doc["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| {
            let versions: Vec<String> = g["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v["version"].as_str().map(str::to_string))
                .collect();
            let preferred = g["preferredVersion"]["version"]
                .as_str()
                .map(str::to_string)
                .or_else(|| versions.first().cloned())?;
            Some(Group {
                name: g["name"].as_str()?.to_string(),
                preferred,
                versions,
            })
        })
        .collect()
}

/// What a cluster serves, read lazily and kept for the rest of the call: the core group at the
/// first resolution, `/apis` and then one group version at a time only as far as needed. The
/// host may answer from documents it kept from earlier calls; a kind not found in those is
/// looked up once more in documents read now (a CRD may have been installed since).
#[derive(Debug, Default)]
pub struct Discovery {
    /// Every document is read from the server, not from the host's cache.
    fresh: bool,
    core: Option<Vec<ApiResource>>,
    groups: Option<Vec<Group>>,
    /// Resource lists by `group/version`; `None` when that version could not be read.
    lists: BTreeMap<String, Option<Vec<ApiResource>>>,
}

impl Discovery {
    /// A discovery that reads every document from the server (after applying CRDs).
    pub fn fresh() -> Discovery {
        Discovery {
            fresh: true,
            ..Discovery::default()
        }
    }

    /// Runs `resolve`; when it finds nothing in documents the host kept, forgets them and runs
    /// it again on documents read now.
    fn retried<T>(
        &mut self,
        f: &mut dyn Fetch,
        resolve: impl Fn(&mut Discovery, &mut dyn Fetch) -> Result<T, ToolError>,
    ) -> Result<T, ToolError> {
        match resolve(self, f) {
            Err(e) if e.kind == ErrorKind::NotFound && !self.fresh => {
                *self = Discovery::fresh();
                resolve(self, f)
            }
            other => other,
        }
    }

    /// The core group's types (`/api/v1`).
    fn core(&mut self, f: &mut dyn Fetch) -> Result<&[ApiResource], ToolError> {
        if self.core.is_none() {
            self.core = Some(parse_resource_list(&f.get_json("/api/v1", self.fresh)?));
        }
        Ok(self.core.as_deref().unwrap_or_default())
    }

    /// The groups of `/apis`.
    pub fn groups(&mut self, f: &mut dyn Fetch) -> Result<Vec<Group>, ToolError> {
        if self.groups.is_none() {
            self.groups = Some(parse_group_list(&f.get_json("/apis", self.fresh)?));
        }
        Ok(self.groups.clone().unwrap_or_default())
    }

    /// Whether the cluster serves `group` (e.g. `metrics.k8s.io`); a group missing from kept
    /// documents is looked for again in fresh ones (it may have been installed since).
    pub fn has_group(&mut self, f: &mut dyn Fetch, group: &str) -> Result<bool, ToolError> {
        let found = |d: &mut Discovery, f: &mut dyn Fetch| {
            if d.groups(f)?.iter().any(|g| g.name == group) {
                Ok(true)
            } else {
                Err(ToolError::not_found(format!("no API group {group}")))
            }
        };
        match self.retried(f, found) {
            Ok(yes) => Ok(yes),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The types of one group version. A version that cannot be read (an aggregated API whose
    /// backend is down answers 503) counts as serving nothing, as kubectl does; a refusal by
    /// the policy or the credentials still ends the call.
    fn list(
        &mut self,
        f: &mut dyn Fetch,
        group: &str,
        version: &str,
    ) -> Result<Vec<ApiResource>, ToolError> {
        let key = format!("{group}/{version}");
        if !self.lists.contains_key(&key) {
            let got = match f.get_json(&format!("/apis/{group}/{version}"), self.fresh) {
                Ok(doc) => Some(parse_resource_list(&doc)),
                Err(e) if e.kind == ErrorKind::Denied => return Err(e),
                Err(_) => None,
            };
            self.lists.insert(key.clone(), got);
        }
        Ok(self.lists[&key].clone().unwrap_or_default())
    }

    /// Resolves `kind` as the agent wrote it. Without a group the core group wins, then the
    /// groups in the server's order (as kubectl does); each group is read only when reached.
    pub fn resolve(&mut self, f: &mut dyn Fetch, kind: &str) -> Result<ApiResource, ToolError> {
        self.retried(f, |d, f| d.resolve_once(f, kind))
    }

    fn resolve_once(&mut self, f: &mut dyn Fetch, kind: &str) -> Result<ApiResource, ToolError> {
        let spec = KindSpec::parse(kind)?;
        if let Some(group) = &spec.group {
            let found = self.groups(f)?.into_iter().find(|g| g.name == *group);
            let Some(g) = found else {
                let core = group == "core" || group == "v1";
                if core && let Some(r) = self.core(f)?.iter().find(|r| spec.names(r)) {
                    return Ok(r.clone());
                }
                return Err(self.unknown(f, kind, Some(group)));
            };
            let version = spec.version.clone().unwrap_or(g.preferred.clone());
            if !g.versions.contains(&version) {
                return Err(ToolError::invalid(
                    "kind",
                    format!(
                        "the group {group} serves versions {}, not {version}; drop the version \
                         to use the preferred one ({})",
                        g.versions.join(", "),
                        g.preferred
                    ),
                ));
            }
            return match self
                .list(f, group, &version)?
                .into_iter()
                .find(|r| spec.names(r))
            {
                Some(r) => Ok(r),
                None => Err(self.unknown(f, kind, Some(group))),
            };
        }
        if let Some(r) = self.core(f)?.iter().find(|r| spec.names(r)) {
            return Ok(r.clone());
        }
        for g in self.groups(f)? {
            if let Some(r) = self
                .list(f, &g.name, &g.preferred)?
                .into_iter()
                .find(|r| spec.names(r))
            {
                return Ok(r);
            }
        }
        Err(self.unknown(f, kind, None))
    }

    /// Resolves an object's `apiVersion` and `kind` (from a manifest or an owner reference).
    pub fn resolve_kind(
        &mut self,
        f: &mut dyn Fetch,
        api_version: &str,
        kind: &str,
    ) -> Result<ApiResource, ToolError> {
        self.retried(f, |d, f| d.resolve_kind_once(f, api_version, kind))
    }

    fn resolve_kind_once(
        &mut self,
        f: &mut dyn Fetch,
        api_version: &str,
        kind: &str,
    ) -> Result<ApiResource, ToolError> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let found = if group.is_empty() {
            self.core(f)?.iter().find(|r| r.kind == kind).cloned()
        } else {
            self.list(f, group, version)?
                .into_iter()
                .find(|r| r.kind == kind)
        };
        found.ok_or_else(|| {
            ToolError::not_found(format!(
                "the cluster serves no kind {kind} in {api_version}; check the apiVersion \
                 (is the CRD installed?)"
            ))
        })
    }

    /// The not-found answer, listing what the cluster does serve (what has been read so far).
    fn unknown(&mut self, f: &mut dyn Fetch, kind: &str, group: Option<&str>) -> ToolError {
        let mut known: Vec<String> = self
            .core
            .iter()
            .flatten()
            .chain(self.lists.values().flatten().flatten())
            .map(ApiResource::qualified)
            .collect();
        known.sort();
        known.dedup();
        let shown = known.len().min(60);
        let more = if known.len() > shown { ", …" } else { "" };
        let groups = match (group, self.groups(f)) {
            (Some(g), Ok(gs)) if !gs.iter().any(|x| x.name == g) => format!(
                " The cluster has no API group {g}; it serves {}.",
                gs.iter()
                    .map(|x| x.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => String::new(),
        };
        ToolError::not_found(format!(
            "the cluster serves no resource type {kind:?}.{groups} Known types: {}{more}. Write \
             a plural (`pods`), a kind (`Pod`), a short name (`po`) or `plural.group` for a \
             custom resource (is its CRD installed?)",
            known[..shown].join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A cluster's discovery documents, older copies the host kept of some, and the paths read
    /// (fresh reads marked `!`).
    struct Docs {
        docs: BTreeMap<String, Value>,
        kept: BTreeMap<String, Value>,
        read: Vec<String>,
    }

    impl Fetch for Docs {
        fn get_json(&mut self, path: &str, fresh: bool) -> Result<Value, ToolError> {
            self.read
                .push(format!("{}{path}", if fresh { "!" } else { "" }));
            if !fresh && let Some(old) = self.kept.get(path) {
                return Ok(old.clone());
            }
            self.docs
                .get(path)
                .cloned()
                .ok_or_else(|| ToolError::failed(format!("503 for {path}")))
        }
    }

    fn cluster() -> Docs {
        let docs = BTreeMap::from([
            (
                "/api/v1".to_string(),
                json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                    {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
                     "shortNames": ["po"], "verbs": ["get", "list"]},
                    {"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod"},
                    {"name": "nodes", "singularName": "node", "namespaced": false, "kind": "Node",
                     "shortNames": ["no"]},
                    {"name": "events", "singularName": "event", "namespaced": true, "kind": "Event",
                     "shortNames": ["ev"]}]}),
            ),
            (
                "/apis".to_string(),
                json!({"kind": "APIGroupList", "groups": [
                    {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                     "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}},
                    {"name": "metrics.k8s.io", "versions": [{"version": "v1beta1"}],
                     "preferredVersion": {"version": "v1beta1"}},
                    {"name": "events.k8s.io", "versions": [{"version": "v1"}],
                     "preferredVersion": {"version": "v1"}},
                    {"name": "argoproj.io", "versions": [{"version": "v1alpha1"}],
                     "preferredVersion": {"version": "v1alpha1"}}]}),
            ),
            (
                "/apis/apps/v1".to_string(),
                json!({"groupVersion": "apps/v1", "resources": [
                    {"name": "deployments", "singularName": "deployment", "namespaced": true,
                     "kind": "Deployment", "shortNames": ["deploy"]},
                    {"name": "deployments/status", "namespaced": true, "kind": "Deployment"}]}),
            ),
            (
                "/apis/events.k8s.io/v1".to_string(),
                json!({"groupVersion": "events.k8s.io/v1", "resources": [
                    {"name": "events", "singularName": "event", "namespaced": true, "kind": "Event"}]}),
            ),
            (
                "/apis/argoproj.io/v1alpha1".to_string(),
                json!({"groupVersion": "argoproj.io/v1alpha1", "resources": [
                    {"name": "applications", "singularName": "application", "namespaced": true,
                     "kind": "Application", "shortNames": ["app", "apps"]}]}),
            ),
        ]);
        Docs {
            docs,
            kept: BTreeMap::new(),
            read: vec![],
        }
    }

    #[test]
    fn a_kind_missing_from_kept_documents_is_looked_up_in_fresh_ones() {
        let mut f = cluster();
        // The host kept these before the Argo CD CRDs were installed.
        f.kept.insert(
            "/apis".into(),
            json!({"kind": "APIGroupList", "groups": [
                {"name": "apps", "versions": [{"version": "v1"}],
                 "preferredVersion": {"version": "v1"}}]}),
        );
        f.kept.insert(
            "/apis/argoproj.io/v1alpha1".into(),
            json!({"groupVersion": "argoproj.io/v1alpha1", "resources": []}),
        );
        let mut d = Discovery::default();
        assert_eq!(d.resolve(&mut f, "deploy").unwrap().resource, "deployments");
        assert!(f.read.iter().all(|p| !p.starts_with('!')), "{:?}", f.read);
        let app = d.resolve(&mut f, "applications.argoproj.io").unwrap();
        assert_eq!(app.kind, "Application");
        assert!(f.read.contains(&"!/apis".to_string()), "{:?}", f.read);
        let mut d = Discovery::default();
        let r = d
            .resolve_kind(&mut f, "argoproj.io/v1alpha1", "Application")
            .unwrap();
        assert_eq!(r.resource, "applications");
        // A group installed since the host kept /apis is found too.
        let mut d = Discovery::default();
        f.read.clear();
        assert!(d.has_group(&mut f, "argoproj.io").unwrap());
        assert!(f.read.contains(&"!/apis".to_string()), "{:?}", f.read);
        assert!(!d.has_group(&mut f, "nope.example.com").unwrap());
        // A kind no document has is still not found, after one fresh look.
        f.read.clear();
        let mut d = Discovery::default();
        assert_eq!(
            d.resolve(&mut f, "widgets").unwrap_err().kind,
            ErrorKind::NotFound
        );
        assert!(f.read.iter().any(|p| p.starts_with('!')), "{:?}", f.read);
    }

    #[test]
    fn every_spelling_of_a_kind_resolves() {
        let mut f = cluster();
        let mut d = Discovery::default();
        for k in ["pods", "pod", "Pod", "po", "pods.core", "pods.v1"] {
            let r = d.resolve(&mut f, k).unwrap();
            assert_eq!((r.resource.as_str(), r.group.as_str()), ("pods", ""), "{k}");
        }
        for k in [
            "deployments.apps",
            "Deployment",
            "deploy",
            "deployments.v1.apps",
        ] {
            let r = d.resolve(&mut f, k).unwrap();
            assert_eq!(r.qualified(), "deployments.apps", "{k}");
            assert!(r.namespaced);
        }
        let app = d.resolve(&mut f, "applications.argoproj.io").unwrap();
        assert_eq!(app.api_version(), "argoproj.io/v1alpha1");
        assert_eq!(app.kind, "Application");
        // A bare plural shared by the core group and another: core wins, as in kubectl.
        assert_eq!(d.resolve(&mut f, "events").unwrap().group, "");
        assert_eq!(
            d.resolve(&mut f, "events.events.k8s.io").unwrap().group,
            "events.k8s.io"
        );
        // Discovery documents are read once per call, and metrics.k8s.io's (absent: 503) is
        // skipped rather than failing the search.
        let reads = f.read.iter().filter(|p| *p == "/api/v1").count();
        assert_eq!(reads, 1, "{:?}", f.read);
        assert!(d.resolve(&mut f, "Application").is_ok());
    }

    #[test]
    fn owner_references_resolve_by_api_version_and_kind() {
        let mut f = cluster();
        let mut d = Discovery::default();
        let r = d.resolve_kind(&mut f, "apps/v1", "Deployment").unwrap();
        assert_eq!(r.resource, "deployments");
        assert_eq!(
            d.resolve_kind(&mut f, "v1", "Node").unwrap().resource,
            "nodes"
        );
        assert_eq!(
            d.resolve_kind(&mut f, "apps/v1", "Nope").unwrap_err().kind,
            ErrorKind::NotFound
        );
    }

    #[test]
    fn unknown_and_malformed_kinds_say_what_to_write() {
        let mut f = cluster();
        let mut d = Discovery::default();
        let e = d.resolve(&mut f, "widgets").unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(e.message.contains("deployments.apps"), "{e}");
        let e = d.resolve(&mut f, "widgets.example.com").unwrap_err();
        assert!(e.message.contains("no API group example.com"), "{e}");
        for bad in ["pods/log", "../pods", "a..b", "pods?x", "", ".pods"] {
            let e = d.resolve(&mut f, bad).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("kind"), "{bad}: {e}");
        }
        let e = d.resolve(&mut f, "deployments.v2.apps").unwrap_err();
        assert!(e.message.contains("serves versions v1"), "{e}");
    }

    #[test]
    fn versions_are_told_from_groups() {
        for v in ["v1", "v1beta1", "v2alpha3", "v10"] {
            assert!(is_version(v), "{v}");
        }
        for v in ["v", "apps", "v1beta", "vx", "k8s"] {
            assert!(!is_version(v), "{v}");
        }
    }
}
