//! Kubernetes API discovery documents (`/api`, `/api/v1`, `/apis`, `/apis/<group>/<version>`),
//! kept per profile for [`TTL`] so that every `k8s`/`gitops` call does not read them again.
//!
//! Only successful, complete GETs of exactly those paths through a `kubernetes` profile are
//! kept, and only after the call passed every check a request makes (grant, profile, server):
//! the cache saves the round trip, never a decision. A request with `Cache-Control: no-cache`
//! reads the server and refreshes the entry — what the SDK's discovery sends when a kind it
//! looks for is missing (a CRD applied since) — as kubectl invalidates its own cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::caps::infra::host::http::{Request, Response};

/// How long a document is used before it is read again.
pub const TTL: Duration = Duration::from_secs(300);

/// Most documents kept; past it the cache starts over.
const CAPACITY: usize = 512;

/// Largest document kept (a cluster with many CRDs has large group lists, never this large).
const MAX_BODY: usize = 4 << 20;

/// Which document: the profile, the URL and the `Accept` header the plugin sent.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Key {
    profile: String,
    url: String,
    accept: String,
}

/// Discovery documents per kubernetes profile, shared by every call of the server.
#[derive(Default)]
pub struct Cache {
    entries: Mutex<HashMap<Key, (Instant, Response)>>,
}

/// The request's key when it reads a discovery document through a profile (the caller keeps
/// answers only from `kubernetes` profiles), and whether it asks to skip the cache.
pub fn key(req: &Request) -> Option<(Key, bool)> {
    let profile = req.profile.as_deref()?;
    if !req.method.eq_ignore_ascii_case("GET") {
        return None;
    }
    // Relative to the profile's server, or absolute on it: either way only the path counts.
    let base = reqwest::Url::parse("https://server.invalid/").ok()?;
    let url = base.join(&req.url).ok()?;
    if url.query().is_some() {
        return None;
    }
    let path = url.path();
    let discovery = matches!(path, "/api" | "/api/v1" | "/apis")
        || path.strip_prefix("/apis/").is_some_and(|gv| {
            matches!(gv.split('/').collect::<Vec<_>>()[..], [g, v] if !g.is_empty() && !v.is_empty())
        });
    if !discovery {
        return None;
    }
    let header = |name: &str| {
        req.headers
            .iter()
            .filter(|h| h.key.eq_ignore_ascii_case(name))
            .map(|h| h.value.to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join(",")
    };
    let fresh =
        header("cache-control").contains("no-cache") || header("pragma").contains("no-cache");
    Some((
        Key {
            profile: profile.to_string(),
            url: req.url.clone(),
            accept: header("accept"),
        },
        fresh,
    ))
}

impl Cache {
    /// The kept answer for `key`, if younger than [`TTL`]; clamped to the request's cap.
    pub fn get(&self, key: &Key, max_bytes: u64) -> Option<Response> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (at, resp) = entries.get(key)?;
        if at.elapsed() >= TTL || resp.body.len() as u64 > max_bytes {
            return None;
        }
        Some(Response {
            attempts: 0,
            max_bytes,
            ..resp.clone()
        })
    }

    /// Keeps `resp` for `key` when it is a whole, successful answer.
    pub fn put(&self, key: Key, resp: &Response) {
        if resp.status != 200 || resp.truncated || resp.redirects > 0 || resp.body.len() > MAX_BODY
        {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), resp.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::infra::host::types::KeyValue;

    fn req(method: &str, url: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: method.into(),
            url: url.into(),
            headers: headers
                .iter()
                .map(|(k, v)| KeyValue {
                    key: k.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            body: None,
            profile: Some("prod".into()),
            timeout_ms: 1000,
            max_bytes: 1 << 20,
            max_redirects: 0,
            retries: 0,
        }
    }

    #[test]
    fn only_discovery_reads_through_a_profile_are_kept() {
        let get = |p: &str| req("GET", p, &[("Accept", "application/json")]);
        for p in [
            "/api",
            "/api/v1",
            "/apis",
            "/apis/apps/v1",
            "/apis/argoproj.io/v1alpha1",
            "https://127.0.0.1:6443/apis",
        ] {
            assert!(key(&get(p)).is_some(), "{p}");
        }
        for p in [
            "/api/v1/pods",
            "/apis/apps/v1/deployments",
            "/apis/apps",
            "/apis//v1",
            "/api/v1?watch=1",
            "/version",
        ] {
            assert!(key(&get(p)).is_none(), "{p}");
        }
        assert!(key(&req("PATCH", "/apis", &[])).is_none());
        assert!(key(&Request { profile: None, ..get("/apis") }).is_none());
        let (_, fresh) = key(&req("GET", "/apis", &[("cache-control", "No-Cache")])).unwrap();
        assert!(fresh);
        assert!(!key(&get("/apis")).unwrap().1);
    }

    #[test]
    fn a_kept_answer_is_per_profile_and_whole() {
        let cache = Cache::default();
        let get = req("GET", "/apis", &[("accept", "application/json")]);
        let (k, _) = key(&get).unwrap();
        let (other, _) = key(&Request {
            profile: Some("staging".into()),
            ..get.clone()
        })
        .unwrap();
        let resp = Response {
            status: 200,
            headers: vec![],
            body: b"{\"groups\":[]}".to_vec(),
            truncated: false,
            final_url: "https://127.0.0.1:6443/apis".into(),
            redirects: 0,
            attempts: 1,
            max_bytes: 1 << 20,
        };
        cache.put(k.clone(), &resp);
        assert_eq!(cache.get(&k, 1 << 20).unwrap().body, resp.body);
        assert!(cache.get(&other, 1 << 20).is_none());
        assert!(cache.get(&k, 4).is_none(), "an answer over the caller's cap is read again");
        let (k2, _) = key(&Request {
            url: "/api/v1".into(),
            ..get
        })
        .unwrap();
        cache.put(k2.clone(), &Response { status: 503, ..resp.clone() });
        cache.put(k2.clone(), &Response { truncated: true, ..resp });
        assert!(cache.get(&k2, 1 << 20).is_none());
    }
}
