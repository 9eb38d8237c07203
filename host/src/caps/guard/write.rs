//! What the http capability asks before it sends a request through a `kubernetes` profile: is
//! it a write (and into which namespace), and does this call hold an approval covering it. A
//! plugin that never calls `guard.approve` — or calls it for another namespace — is refused
//! here, so the guard cannot be skipped.

/// The namespace a request writes into, when it is a write the guard must approve: `None` for a
/// read (GET, HEAD, OPTIONS) or a dry run (`dryRun=All` in the query); `Some("")` for a
/// cluster-scoped write (including creating a Namespace, whose name is only in the body).
///
/// `path` is the URL's path relative to the cluster's server (normalised by the URL parser, so
/// no `..` is left), `query` its query string. Any method other than the three reads counts as
/// a write, so an unusual one cannot slip past.
pub fn kubernetes_write(method: &str, path: &str, query: Option<&str>) -> Option<String> {
    if matches!(
        method.to_ascii_uppercase().as_str(),
        "GET" | "HEAD" | "OPTIONS"
    ) {
        return None;
    }
    let dry_run = query.is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "dryRun" && v == "All")
    });
    if dry_run {
        return None;
    }
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ns = match segs.as_slice() {
        ["api", _version, "namespaces", ns, ..] => ns,
        ["apis", _group, _version, "namespaces", ns, ..] => ns,
        _ => "",
    };
    Some(ns.to_string())
}

/// [`kubernetes_write`] for a request to `url` through a cluster whose API server is `server`:
/// the server's own path prefix (a proxy such as `https://rancher/k8s/clusters/c-1`) is not
/// part of the Kubernetes path.
pub fn kubernetes_write_to(method: &str, server: &str, url: &url::Url) -> Option<String> {
    let prefix = url::Url::parse(server)
        .map(|b| b.path().trim_end_matches('/').to_string())
        .unwrap_or_default();
    let path = url
        .path()
        .strip_prefix(prefix.as_str())
        .unwrap_or(url.path());
    kubernetes_write(method, path, url.query())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_path_prefix_is_not_the_kubernetes_path() {
        let url =
            url::Url::parse("https://r.example/k8s/clusters/c-1/api/v1/namespaces/apps-a/pods")
                .unwrap();
        assert_eq!(
            kubernetes_write_to("POST", "https://r.example/k8s/clusters/c-1/", &url).as_deref(),
            Some("apps-a")
        );
        let url =
            url::Url::parse("https://k:6443/apis/apps/v1/namespaces/b/deployments?dryRun=All")
                .unwrap();
        assert_eq!(kubernetes_write_to("PATCH", "https://k:6443", &url), None);
    }

    #[test]
    fn reads_and_dry_runs_need_no_approval() {
        assert_eq!(
            kubernetes_write("GET", "/api/v1/namespaces/a/pods", None),
            None
        );
        assert_eq!(
            kubernetes_write("head", "/api/v1/namespaces/a/pods", None),
            None
        );
        assert_eq!(
            kubernetes_write(
                "PATCH",
                "/apis/apps/v1/namespaces/a/deployments/x",
                Some("fieldManager=infra&dryRun=All")
            ),
            None
        );
    }

    #[test]
    fn writes_name_their_namespace() {
        let w = |m, p, q| kubernetes_write(m, p, q);
        assert_eq!(
            w("POST", "/api/v1/namespaces/apps-a/configmaps", None).as_deref(),
            Some("apps-a")
        );
        assert_eq!(
            w(
                "DELETE",
                "/apis/apps/v1/namespaces/apps-a/deployments/web",
                None
            )
            .as_deref(),
            Some("apps-a")
        );
        assert_eq!(
            w("PUT", "/api/v1/namespaces/apps-a", None).as_deref(),
            Some("apps-a"),
            "a Namespace's own path"
        );
        assert_eq!(
            w("DELETE", "/api/v1/namespaces/apps-a/finalize", None).as_deref(),
            Some("apps-a")
        );
        assert_eq!(
            w("POST", "/api/v1/namespaces", None).as_deref(),
            Some(""),
            "creating a namespace"
        );
        assert_eq!(
            w(
                "PATCH",
                "/apis/rbac.authorization.k8s.io/v1/clusterroles/x",
                None
            )
            .as_deref(),
            Some("")
        );
        assert_eq!(w("POST", "/api/v1/nodes", None).as_deref(), Some(""));
    }

    #[test]
    fn tricks_fail_closed() {
        let w = |m, p, q| kubernetes_write(m, p, q);
        // A dry run only when the apiserver would treat it as one.
        assert_eq!(
            w("POST", "/api/v1/namespaces/a/pods", Some("dryRun=all")).as_deref(),
            Some("a")
        );
        assert_eq!(
            w("POST", "/api/v1/namespaces/a/pods", Some("dryrun=All")).as_deref(),
            Some("a")
        );
        // Unknown methods are writes.
        assert_eq!(
            w("PROPFIND", "/api/v1/namespaces/a/pods", None).as_deref(),
            Some("a")
        );
        // An empty namespace segment is cluster-scoped, which needs the widest grant.
        assert_eq!(
            w("POST", "/api/v1/namespaces//pods", None).as_deref(),
            Some("")
        );
        // A percent-encoded name is not the name: it matches no approved namespace.
        assert_eq!(
            w("POST", "/api/v1/namespaces/%61pps-a/pods", None).as_deref(),
            Some("%61pps-a")
        );
    }
}
