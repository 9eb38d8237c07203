//! A `kubernetes` profile: a cluster's API server, the CA that pins its certificate, and a bearer
//! token or client certificate — given inline or as a kubeconfig context.
//!
//! Credentials are read when a request uses the profile, not at load, so a rotated token or
//! certificate takes effect without a restart.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::SecretRef;
use super::kubeconfig;

/// A cluster, as written in `profiles.json`: `kubeconfig` (+ `context`), or `server` + `ca` +
/// `token` or `client_cert` + `client_key`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesProfile {
    /// A kubeconfig file (`file:~/.kube/config`), or its text in a variable (`env:KUBECONFIG_TEXT`).
    pub kubeconfig: Option<SecretRef>,
    /// The kubeconfig context to use; its `current-context` when absent.
    pub context: Option<String>,
    /// The API server URL, `https://host:port` (inline form).
    pub server: Option<String>,
    /// The cluster's CA certificate(s), PEM (inline form). Public roots are never trusted.
    pub ca: Option<SecretRef>,
    /// A bearer token (inline form).
    pub token: Option<SecretRef>,
    /// A client certificate, PEM (inline form; with `client_key`).
    pub client_cert: Option<SecretRef>,
    /// The client certificate's private key, PEM (inline form).
    pub client_key: Option<SecretRef>,
    /// Writes to this cluster need a user's approval (see the guard).
    #[serde(default)]
    pub protected: bool,
}

/// A cluster's connection, resolved now: where it is, what pins it, who we are.
#[derive(Clone, PartialEq, Eq)]
pub struct KubeCreds {
    /// The API server URL (https), as written; may carry a path prefix (a proxy's).
    pub server: String,
    /// The CA bundle, PEM.
    pub ca_pem: String,
    /// The bearer token, if the user has one.
    pub token: Option<String>,
    /// The client certificate and its key, PEM, if the user has them.
    pub client_cert: Option<(String, String)>,
    /// Other spellings of the secrets that may appear on the wire or in a file (the base64
    /// `*-data` fields of a kubeconfig), for the redactor.
    pub secret_forms: Vec<String>,
}

impl std::fmt::Debug for KubeCreds {
    // Never prints a token or a key, whoever formats it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeCreds")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("client_cert", &self.client_cert.as_ref().map(|_| "…"))
            .finish()
    }
}

impl KubeCreds {
    /// A digest of what the TLS client is built from (CA and client identity), so a pooled
    /// client is rebuilt when one of them rotates.
    pub fn tls_fingerprint(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.ca_pem.as_bytes());
        h.update([0]);
        if let Some((cert, key)) = &self.client_cert {
            h.update(cert.as_bytes());
            h.update([0]);
            h.update(key.as_bytes());
        }
        h.finalize().into()
    }

    /// Teaches `redactor` every secret: the token, the private key (whole and line by line)
    /// and their other spellings.
    pub fn register(&self, redactor: &crate::redact::Redactor) {
        if let Some(t) = &self.token {
            redactor.add(t);
        }
        if let Some((_, key)) = &self.client_cert {
            redactor.add_private_key(key);
        }
        for s in &self.secret_forms {
            redactor.add(s);
        }
    }
}

impl KubernetesProfile {
    /// Checks the shape at load: one of the two forms, complete, and an https server.
    pub fn check(&self) -> Result<(), String> {
        let inline = self.server.is_some()
            || self.ca.is_some()
            || self.token.is_some()
            || self.client_cert.is_some()
            || self.client_key.is_some();
        match (&self.kubeconfig, inline) {
            (Some(_), true) => {
                return Err("give either `kubeconfig` (and `context`) or `server`, `ca` and a credential, not both".into());
            }
            (Some(_), false) => return Ok(()),
            (None, false) => {
                return Err("give `kubeconfig` (e.g. \"file:~/.kube/config\", with `context`), or `server`, `ca` and `token` or `client_cert` + `client_key`".into());
            }
            (None, true) => {}
        }
        if self.context.is_some() {
            return Err("`context` names a kubeconfig context; add `kubeconfig`, or drop `context` with the inline form".into());
        }
        let server = self.server.as_deref().ok_or(
            "`server` is missing: give the API server URL, e.g. \"https://10.0.0.1:6443\"",
        )?;
        check_server(server).map_err(|why| format!("`server`: {why}"))?;
        if self.ca.is_none() {
            return Err(NO_CA_ADVICE.replace("{field}", "`ca`"));
        }
        match (&self.token, &self.client_cert, &self.client_key) {
            (_, Some(_), None) => Err("`client_cert` needs `client_key` (its private key)".into()),
            (_, None, Some(_)) => Err("`client_key` needs `client_cert` (the certificate it signs for)".into()),
            (None, None, None) => Err("no credential: give `token` (e.g. from `kubectl create token <serviceaccount>`) or `client_cert` + `client_key`".into()),
            _ => Ok(()),
        }
    }

    /// Reads the credentials now: the inline references, or the kubeconfig's context.
    pub fn resolve(&self) -> anyhow::Result<KubeCreds> {
        if let Some(kc) = &self.kubeconfig {
            let text = kc.resolve()?;
            // kubectl reads a relative path in a kubeconfig against the file's directory.
            let dir = kc
                .as_str()
                .strip_prefix("file:")
                .map(|p| super::shellexpand_home(p))
                .and_then(|p| std::path::Path::new(&p).parent().map(|d| d.to_path_buf()));
            return kubeconfig::resolve(
                &text,
                dir.as_deref(),
                self.context.as_deref(),
                kc.as_str(),
            );
        }
        let field = |r: &Option<SecretRef>| r.as_ref().map(SecretRef::resolve).transpose();
        let server = self.server.clone().unwrap_or_default();
        let ca_pem = field(&self.ca)?.unwrap_or_default();
        let client_cert = match (field(&self.client_cert)?, field(&self.client_key)?) {
            (Some(c), Some(k)) => Some((c, k)),
            _ => None,
        };
        Ok(KubeCreds {
            server,
            ca_pem,
            token: field(&self.token)?,
            client_cert,
            secret_forms: Vec::new(),
        })
    }

    /// The API server, for listings: inline, or from the kubeconfig when it reads cleanly.
    pub fn server(&self) -> Option<String> {
        match &self.server {
            Some(s) => Some(s.clone()),
            None => self.resolve().ok().map(|c| c.server),
        }
    }
}

/// Why a cluster without a CA is refused, and where to find one. `{field}` names the key.
pub(super) const NO_CA_ADVICE: &str = "no CA: infra trusts only the cluster's own CA, never public roots or an unverified server; give {field} (the cluster CA certificate, PEM: /etc/kubernetes/pki/ca.crt on a control-plane node, or `kubectl get configmap kube-root-ca.crt -n default -o jsonpath='{.data.ca\\.crt}'`)";

/// An API server URL must be https (the CA pins it) with a host and no credentials.
pub(super) fn check_server(server: &str) -> Result<(), String> {
    let url = url::Url::parse(server)
        .map_err(|e| format!("'{server}' is not a URL ({e}); write it as https://host:port"))?;
    if url.scheme() != "https" {
        return Err(format!(
            "'{server}' is not https; the API server's certificate is what the CA pins, so write https://"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("'{server}' has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "'{server}' carries a user or password; credentials go in `token` or `client_cert`"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "'{server}' has a query or fragment; give only scheme, host, port and an optional path prefix"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::profiles::{Profile, Profiles};

    fn parse_err(v: &str) -> String {
        format!(
            "{:#}",
            Profiles::parse(&format!(r#"{{"c": {v}}}"#), "p.json").unwrap_err()
        )
    }

    #[test]
    fn parses_both_forms_and_protected() {
        let p = Profiles::parse(
            r#"{"prod": {"type": "kubernetes", "kubeconfig": "file:~/.kube/config", "context": "prod", "protected": true},
                "lab": {"type": "kubernetes", "server": "https://127.0.0.1:6443", "ca": "file:/etc/lab/ca.pem", "token": "env:LAB_TOKEN"},
                "lab2": {"type": "kubernetes", "server": "https://k.example", "ca": "file:/ca", "client_cert": "file:/c", "client_key": "file:/k"},
                "api": {"type": "http", "base_url": "https://a", "protected": true}}"#,
            "p.json",
        )
        .unwrap();
        let prod = p.get("prod").unwrap();
        assert!(prod.is_kubernetes() && prod.protected());
        assert_eq!(prod.kind(), "kubernetes");
        let lab = p.get("lab").unwrap();
        assert!(lab.is_kubernetes() && !lab.protected());
        assert_eq!(lab.server().as_deref(), Some("https://127.0.0.1:6443"));
        assert!(matches!(p.get("lab2"), Some(Profile::Kubernetes(k)) if k.client_key.is_some()));
        assert!(p.get("api").unwrap().protected() && !p.get("api").unwrap().is_kubernetes());
    }

    #[test]
    fn refuses_incomplete_or_mixed_forms_with_advice() {
        let cases = [
            (r#"{"type": "kubernetes"}"#, "give `kubeconfig`"),
            (
                r#"{"type": "kubernetes", "kubeconfig": "file:/k", "server": "https://a"}"#,
                "not both",
            ),
            (
                r#"{"type": "kubernetes", "server": "https://a", "token": "env:T"}"#,
                "no CA",
            ),
            (
                r#"{"type": "kubernetes", "server": "http://a", "ca": "file:/ca", "token": "env:T"}"#,
                "not https",
            ),
            (
                r#"{"type": "kubernetes", "server": "https://a", "ca": "file:/ca"}"#,
                "kubectl create token",
            ),
            (
                r#"{"type": "kubernetes", "server": "https://a", "ca": "file:/ca", "client_cert": "file:/c"}"#,
                "needs `client_key`",
            ),
            (
                r#"{"type": "kubernetes", "server": "https://a", "ca": "file:/ca", "token": "env:T", "context": "x"}"#,
                "add `kubeconfig`",
            ),
            (
                r#"{"type": "kubernetes", "server": "https://u:p@a", "ca": "file:/ca", "token": "env:T"}"#,
                "user or password",
            ),
            (
                r#"{"type": "kubernetes", "server": "https://a", "ca": "file:/ca", "token": "s3cret-literal"}"#,
                "env:VAR",
            ),
            (
                r#"{"type": "kubernetes", "kubeconfig": "file:/k", "insecure": true}"#,
                "insecure",
            ),
        ];
        for (v, want) in cases {
            let msg = parse_err(v);
            assert!(msg.contains("profile 'c'"), "{v}: {msg}");
            assert!(msg.contains(want), "{v}: want '{want}' in: {msg}");
            assert!(!msg.contains("s3cret-literal"), "{msg}");
        }
    }

    #[test]
    fn inline_credentials_are_read_when_used() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let tok = dir.path().join("token");
        std::fs::write(&ca, "CA-PEM\n").unwrap();
        std::fs::write(&tok, "first-token\n").unwrap();
        let p = Profiles::parse(
            &serde_json::json!({"c": {"type": "kubernetes", "server": "https://k:6443",
                "ca": format!("file:{}", ca.display()), "token": format!("file:{}", tok.display())}})
            .to_string(),
            "p.json",
        )
        .unwrap();
        let Some(Profile::Kubernetes(k)) = p.get("c") else {
            panic!()
        };
        let c = k.resolve().unwrap();
        assert_eq!(c.token.as_deref(), Some("first-token"));
        assert_eq!(c.ca_pem, "CA-PEM");
        std::fs::write(&tok, "rotated-token").unwrap();
        assert_eq!(k.resolve().unwrap().token.as_deref(), Some("rotated-token"));
        assert!(!format!("{c:?}").contains("first-token"));
        let r = crate::redact::Redactor::new();
        c.register(&r);
        assert_eq!(r.scrub_str("x first-token y"), "x [REDACTED] y");
    }
}
