//! The API server's `Status` answers turned into errors that say what was refused, for whom,
//! and what to do about it.

use serde_json::{Value, json};

use crate::ToolError;

/// What a request tried to do, for the error message: RBAC's words.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    /// The profile whose credentials the host sent.
    pub profile: &'a str,
    /// The RBAC verb: `get`, `list`, `create`, `patch`, …
    pub verb: &'a str,
    /// The resource as RBAC names it: `pods`, `deployments.apps`, `pods/log`.
    pub resource: &'a str,
    /// The namespace, for namespaced requests.
    pub namespace: Option<&'a str>,
    /// The object's name, for requests about one object.
    pub name: Option<&'a str>,
}

impl Access<'_> {
    /// `pods "web-1" in namespace "shop"`, as the messages name the target.
    fn target(&self) -> String {
        let mut t = self.resource.to_string();
        if let Some(n) = self.name {
            t.push_str(&format!(" {n:?}"));
        }
        match self.namespace {
            Some(ns) => t.push_str(&format!(" in namespace {ns:?}")),
            None if self.name.is_none() => t.push_str(" across the cluster"),
            None => {}
        }
        t
    }
}

/// The error for a non-2xx answer: `code` and the body (a `Status` object when the API server
/// wrote it). 401/403 name the profile and the RBAC verb; 404 names what was looked for.
pub fn status_error(code: u16, body: &[u8], access: &Access) -> ToolError {
    let status: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let server_says = status["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            text.chars().take(300).collect()
        });
    let reason = status["reason"].as_str().unwrap_or_default();
    let detail = json!({"status": code, "reason": reason, "message": server_says,
                        "profile": access.profile});
    let target = access.target();
    let p = access.profile;
    let e = match code {
        401 => ToolError::denied(format!(
            "the cluster of profile {p:?} rejected its credentials (401 Unauthorized: \
             {server_says}); the token or client certificate is wrong or expired: renew it in \
             the profile (profiles.json or its kubeconfig)"
        )),
        403 => ToolError::denied(format!(
            "profile {p:?} may not {} {target} (403 Forbidden: {server_says}); grant its user \
             the RBAC verb {:?} on {:?}{} (a Role or ClusterRole and a binding), or use a \
             profile that has it",
            access.verb,
            access.verb,
            access.resource,
            access
                .namespace
                .map(|ns| format!(" in namespace {ns:?}"))
                .unwrap_or_default()
        )),
        404 => ToolError::not_found(format!(
            "{target} not found (profile {p:?}): {server_says}; check the name and namespace \
             with `list`"
        )),
        410 => ToolError::invalid(
            "continue",
            format!(
                "the list's continue token expired (410 Gone: {server_says}); list again without \
                 `continue`"
            ),
        ),
        400 | 422 => ToolError::invalid(
            "arguments",
            format!(
                "the API server refused the request for {target} ({code} {reason}: \
                 {server_says}); fix the argument it names"
            ),
        ),
        409 => ToolError::failed(format!(
            "conflict on {target} (409: {server_says}); read the object again and retry"
        )),
        429 | 500..=599 => ToolError::failed(format!(
            "the API server failed on {target} ({code} {reason}: {server_says}); it may be \
             overloaded or an aggregated API is down: retry later"
        )),
        _ => ToolError::failed(format!(
            "the API server answered {code} for {target}: {server_says}"
        )),
    };
    e.with_detail(detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn access<'a>(verb: &'a str, name: Option<&'a str>) -> Access<'a> {
        Access {
            profile: "prod",
            verb,
            resource: "deployments.apps",
            namespace: Some("shop"),
            name,
        }
    }

    fn status(code: u16, reason: &str, message: &str) -> Vec<u8> {
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
               "reason": reason, "message": message})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn forbidden_names_the_profile_and_the_missing_verb() {
        let e = status_error(
            403,
            &status(
                403,
                "Forbidden",
                "deployments.apps is forbidden: User \"bot\" cannot list",
            ),
            &access("list", None),
        );
        assert_eq!(e.kind, ErrorKind::Denied);
        assert!(
            e.message
                .contains("profile \"prod\" may not list deployments.apps in namespace \"shop\""),
            "{e}"
        );
        assert!(e.message.contains("RBAC verb \"list\""), "{e}");
        assert_eq!(e.detail.unwrap()["status"], 403);
    }

    #[test]
    fn not_found_unauthorized_and_gone() {
        let e = status_error(
            404,
            &status(404, "NotFound", "deployments.apps \"api\" not found"),
            &access("get", Some("api")),
        );
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(
            e.message
                .starts_with("deployments.apps \"api\" in namespace \"shop\" not found"),
            "{e}"
        );
        let e = status_error(401, b"Unauthorized", &access("get", Some("api")));
        assert_eq!(e.kind, ErrorKind::Denied);
        assert!(
            e.message
                .contains("profile \"prod\" rejected its credentials"),
            "{e}"
        );
        let e = status_error(
            410,
            &status(410, "Expired", "too old"),
            &access("list", None),
        );
        assert_eq!(e.field.as_deref(), Some("continue"));
    }
}
