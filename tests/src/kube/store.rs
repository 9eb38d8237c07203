//! The stand-in's object store: objects keyed by group/resource/namespace/name, with the
//! metadata the API server maintains (uid, resourceVersion, generation, creationTimestamp).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::logs::Logs;
use super::resources::{self, Resource};

/// (group, plural, namespace — "" when cluster-scoped, name).
pub type Key = (String, String, String, String);

/// Everything the server holds, behind one lock.
pub struct Store {
    /// The kinds served (built-in, then those CRDs add).
    pub resources: Vec<Resource>,
    objects: BTreeMap<Key, Value>,
    rv: u64,
    uid: u64,
    /// Pod logs.
    pub logs: Logs,
    /// Every request: (method, path+query).
    pub requests: Vec<(String, String)>,
    /// metrics.k8s.io is not served (as on a cluster without metrics-server); true until the
    /// test sets metrics.
    pub metrics_off: bool,
    /// Resources (plurals) every request for which is refused with 403.
    pub forbidden: Vec<String>,
    /// How the stand-in Flux controller ends each reconcile.
    pub flux_outcomes: super::flux::Outcomes,
    /// Objects whose reconciles are judged by what their source holds now.
    pub flux_judges: super::flux::Judges,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            resources: resources::builtin(),
            objects: BTreeMap::new(),
            rv: 1000,
            uid: 0,
            logs: Logs::default(),
            requests: Vec::new(),
            metrics_off: true,
            forbidden: Vec::new(),
            flux_outcomes: Default::default(),
            flux_judges: Default::default(),
        }
    }
}

impl Store {
    /// The resources served now (metrics.k8s.io left out when switched off).
    pub fn served(&self) -> impl Iterator<Item = &Resource> {
        self.resources
            .iter()
            .filter(|r| !(self.metrics_off && r.group == "metrics.k8s.io"))
    }

    /// The resource at `group/version/plural`.
    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<Resource> {
        self.served()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
    }

    /// The resource of an object's `apiVersion` and `kind`.
    pub fn resource_of(&self, api_version: &str, kind: &str) -> Option<Resource> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .cloned()
    }

    /// The stored object.
    pub fn get(&self, res: &Resource, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&key(res, ns, name))
    }

    /// The objects of `res` (in `ns` when given), ordered by namespace then name.
    pub fn list<'a>(&'a self, res: &Resource, ns: Option<&'a str>) -> Vec<&'a Value> {
        let lo = (
            res.group.clone(),
            res.plural.clone(),
            String::new(),
            String::new(),
        );
        self.objects
            .range(lo..)
            .take_while(|(k, _)| k.0 == res.group && k.1 == res.plural)
            .filter(|(k, _)| ns.is_none_or(|n| !res.namespaced || k.2 == n))
            .map(|(_, v)| v)
            .collect()
    }

    /// The current resourceVersion (the list's).
    pub fn resource_version(&self) -> String {
        self.rv.to_string()
    }

    /// `obj` with the server-maintained metadata filled in from `old` (the live object, if
    /// any): what a write would store. Nothing is stored and no counter moves.
    pub fn prepare(&self, res: &Resource, ns: &str, mut obj: Value, old: Option<&Value>) -> Value {
        obj["apiVersion"] = json!(res.api_version());
        obj["kind"] = json!(res.kind);
        let meta = obj["metadata"]
            .as_object_mut()
            .expect("metadata checked by caller");
        // Go's ObjectMeta drops empty maps (`omitempty`): so does the stand-in.
        for f in ["labels", "annotations"] {
            if meta
                .get(f)
                .and_then(Value::as_object)
                .is_some_and(|m| m.is_empty())
            {
                meta.remove(f);
            }
        }
        if res.namespaced {
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        match old {
            Some(old) => {
                for f in ["uid", "creationTimestamp", "resourceVersion"] {
                    if let Some(v) = old["metadata"].get(f) {
                        meta.insert(f.into(), v.clone());
                    }
                }
                let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
                let bump = i64::from(body_of(&obj) != body_of(old));
                obj["metadata"]["generation"] = json!(generation + bump);
            }
            None => {
                meta.insert(
                    "uid".into(),
                    json!(format!("00000000-0000-4000-8000-{:012x}", self.uid + 1)),
                );
                meta.entry("creationTimestamp")
                    .or_insert_with(|| json!(rfc3339(SystemTime::now())));
                meta.remove("resourceVersion");
                meta.insert("generation".into(), json!(1));
            }
        }
        obj
    }

    /// Stores a prepared object under a new resourceVersion; returns what was stored. A CRD
    /// registers its kinds.
    pub fn commit(&mut self, res: &Resource, ns: &str, mut obj: Value) -> Value {
        self.rv += 1;
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if self.get(res, ns, &name).is_none() {
            // prepare() named a new object's uid after the next value of this counter.
            self.uid += 1;
        }
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        if res.kind == "CustomResourceDefinition"
            && let Ok(new) = resources::from_crd(&obj)
        {
            self.resources.retain(|r| {
                !new.iter()
                    .any(|n| n.group == r.group && n.plural == r.plural)
            });
            self.resources.extend(new);
        }
        self.objects.insert(
            key(res, if res.namespaced { ns } else { "" }, &name),
            obj.clone(),
        );
        obj
    }

    /// Removes an object (and, for a namespace, everything in it); returns it.
    pub fn remove(&mut self, res: &Resource, ns: &str, name: &str) -> Option<Value> {
        self.rv += 1;
        if res.group.is_empty() && res.plural == "namespaces" {
            self.objects.retain(|k, _| k.2 != name);
        }
        self.objects
            .remove(&key(res, if res.namespaced { ns } else { "" }, name))
    }

    /// True when the namespace exists.
    pub fn namespace_exists(&self, ns: &str) -> bool {
        self.objects.contains_key(&(
            String::new(),
            "namespaces".into(),
            String::new(),
            ns.to_string(),
        ))
    }
}

fn key(res: &Resource, ns: &str, name: &str) -> Key {
    (
        res.group.clone(),
        res.plural.clone(),
        if res.namespaced {
            ns.to_string()
        } else {
            String::new()
        },
        name.to_string(),
    )
}

/// What a change to bumps `generation`: everything but metadata and status.
fn body_of(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    o
}

/// `t` as RFC 3339 in UTC, seconds precision (Kubernetes' `Time`).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses what [`rfc3339`] writes (fractions and offsets other than Z are not needed here).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    // days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(t));
    }
}
