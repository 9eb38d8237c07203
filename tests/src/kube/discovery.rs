//! API discovery as kubectl reads it: `/version`, `/api`, `/apis` and each group version's
//! resource list. Only the unaggregated forms are served; a client asking for aggregated
//! discovery (`as=APIGroupDiscoveryList`) gets plain JSON and falls back, as against an old server.

use serde_json::{Value, json};

use super::resources::Resource;

/// `/version`.
pub fn version() -> Value {
    json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0-infra-standin",
           "gitCommit": "standin", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
           "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64"})
}

/// `/api`: the core group's versions.
pub fn core_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
}

/// `/apis`: every named group with its versions.
pub fn groups<'a>(resources: impl Iterator<Item = &'a Resource>) -> Value {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for r in resources.filter(|r| !r.group.is_empty()) {
        match groups.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, vs)) if !vs.contains(&r.version) => vs.push(r.version.clone()),
            Some(_) => {}
            None => groups.push((r.group.clone(), vec![r.version.clone()])),
        }
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            json!({"name": g, "versions": versions, "preferredVersion": versions[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`: one group, or None when not served.
pub fn group<'a>(resources: impl Iterator<Item = &'a Resource>, name: &str) -> Option<Value> {
    let all = groups(resources);
    let g = all["groups"]
        .as_array()?
        .iter()
        .find(|g| g["name"] == name)?
        .clone();
    Some(json!({"kind": "APIGroup", "apiVersion": "v1", "name": name,
                "versions": g["versions"], "preferredVersion": g["preferredVersion"]}))
}

/// `/api/v1` or `/apis/<group>/<version>`: the resources of one group version, or None.
pub fn resource_list<'a>(
    resources: impl Iterator<Item = &'a Resource>,
    group: &str,
    version: &str,
) -> Option<Value> {
    let list: Vec<Value> = resources
        .filter(|r| r.group == group && r.version == version)
        .flat_map(Resource::discovery)
        .collect();
    if list.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}),
    )
}
