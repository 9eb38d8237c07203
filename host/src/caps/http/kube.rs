//! A request through a Kubernetes profile: the cluster's credentials read now, the URL held to
//! the API server (a relative path is joined under `server`; an absolute URL must be on it),
//! and the bearer token as the only header the profile adds.

use reqwest::Url;

use crate::caps::infra::host::types::CapError;
use crate::profiles::{KubeCreds, KubernetesProfile};

/// A request's cluster: the profile it came through and what it resolved to.
pub(super) struct Cluster {
    /// The profile's name.
    pub profile: String,
    /// Its credentials, as read for this request.
    pub creds: KubeCreds,
}

/// Reads profile `name`'s credentials and teaches `redactor` their secrets (again on every
/// use, so a rotated token is scrubbed too). `origin` names profiles.json in errors.
pub(super) fn resolve(
    name: &str,
    profile: &KubernetesProfile,
    redactor: &crate::redact::Redactor,
    origin: &str,
) -> Result<Cluster, CapError> {
    let creds = profile.resolve().map_err(|e| {
        CapError::Failed(format!("profile '{name}' (kubernetes, in {origin}): {e:#}"))
    })?;
    creds.register(redactor);
    Ok(Cluster {
        profile: name.to_string(),
        creds,
    })
}

/// The headers the profile adds: the bearer token, if the user has one (a client certificate
/// goes in the TLS handshake instead).
pub(super) fn auth_headers(creds: &KubeCreds) -> Vec<(String, String)> {
    creds
        .token
        .iter()
        .map(|t| ("authorization".to_string(), format!("Bearer {t}")))
        .collect()
}

/// The URL a request goes to: `url` relative to `server` (`/api/v1/pods` under
/// `https://k:6443/prefix` is `https://k:6443/prefix/api/v1/pods`), or absolute and then on
/// the server's origin and under its path. Anything else is denied: the profile's token and
/// certificate are for that API server alone.
pub(super) fn target(profile: &str, server: &str, url: &str) -> Result<Url, CapError> {
    let base = Url::parse(server).map_err(|e| {
        CapError::Failed(format!(
            "profile '{profile}': server '{server}' is not a URL ({e}); fix it in profiles.json or the kubeconfig"
        ))
    })?;
    let prefix = base.path().trim_end_matches('/').to_string();
    let lower = url.trim_start().to_ascii_lowercase();
    let absolute = lower.starts_with("http://") || lower.starts_with("https://");
    let text = if absolute {
        url.to_string()
    } else {
        format!(
            "{}://{}{prefix}/{}",
            base.scheme(),
            base.host_str()
                .map_or(String::new(), |h| match base.port() {
                    Some(p) => format!("{}:{p}", bracket(h)),
                    None => bracket(h),
                }),
            url.trim_start_matches('/')
        )
    };
    let parsed = Url::parse(&text)
        .map_err(|e| CapError::Invalid(format!("url: '{url}' is not a valid URL ({e})")))?;
    let inside = parsed.path() == prefix
        || parsed.path().starts_with(&format!("{prefix}/"))
        || prefix.is_empty();
    if parsed.origin() != base.origin() || !inside {
        return Err(CapError::Denied(format!(
            "url: {url} is not on the API server of kubernetes profile '{profile}' ({}); its token and certificate are for that server alone: give a path relative to it, e.g. /api/v1/namespaces",
            base.as_str().trim_end_matches('/')
        )));
    }
    Ok(parsed)
}

/// An IPv6 literal as a URL writes it.
fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(server: &str, url: &str) -> String {
        target("c", server, url).unwrap().to_string()
    }

    fn denied(server: &str, url: &str) -> String {
        match target("c", server, url) {
            Err(CapError::Denied(m)) => m,
            other => panic!("{url}: expected a denial, got {other:?}"),
        }
    }

    #[test]
    fn relative_paths_join_under_the_server() {
        let s = "https://127.0.0.1:6443";
        assert_eq!(
            ok(s, "/api/v1/namespaces"),
            "https://127.0.0.1:6443/api/v1/namespaces"
        );
        assert_eq!(
            ok(s, "api/v1/pods?labelSelector=app%3Dweb&limit=5"),
            "https://127.0.0.1:6443/api/v1/pods?labelSelector=app%3Dweb&limit=5"
        );
        assert_eq!(
            ok("https://k.example/", "/version"),
            "https://k.example/version"
        );
        assert_eq!(
            ok("https://r.example/k8s/clusters/c-1", "/api/v1/pods"),
            "https://r.example/k8s/clusters/c-1/api/v1/pods"
        );
        assert_eq!(ok("https://[::1]:6443", "/api"), "https://[::1]:6443/api");
        // A scheme-relative path stays a path on the server.
        assert_eq!(
            ok(s, "//evil.example/x"),
            "https://127.0.0.1:6443/evil.example/x"
        );
    }

    #[test]
    fn absolute_urls_must_be_on_the_server() {
        let s = "https://127.0.0.1:6443";
        assert_eq!(
            ok(s, "https://127.0.0.1:6443/api/v1"),
            "https://127.0.0.1:6443/api/v1"
        );
        for other in [
            "https://127.0.0.2:6443/api/v1",
            "https://127.0.0.1:6444/api/v1",
            "http://127.0.0.1:6443/api/v1",
            "HTTPS://evil.example/api",
            "https://127.0.0.1:6443@evil.example/api",
        ] {
            let m = denied(s, other);
            assert!(
                m.starts_with("url: ") && m.contains("profile 'c'") && m.contains("relative"),
                "{m}"
            );
        }
    }

    #[test]
    fn a_path_prefix_cannot_be_left() {
        let s = "https://r.example/k8s/clusters/c-1";
        for escape in [
            "/../c-2/api/v1/secrets",
            "/%2e%2e/c-2/api",
            "https://r.example/k8s/clusters/c-2/api",
            "https://r.example/k8s/clusters/c-1x/api",
        ] {
            denied(s, escape);
        }
    }
}
