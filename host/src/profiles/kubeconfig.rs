//! Reading one context of a kubeconfig: its cluster (server, CA) and user (token or client
//! certificate). What would make infra run a program (`exec`, `auth-provider`), trust any
//! server (`insecure-skip-tls-verify`, no CA) or send a password is refused, with what to use
//! instead.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use base64::Engine as _;
use serde::Deserialize;

use super::kubernetes::{KubeCreds, NO_CA_ADVICE, check_server};

/// The parts of a kubeconfig infra reads; other keys (preferences, extensions) are ignored.
#[derive(Deserialize)]
struct Config {
    #[serde(rename = "current-context", default)]
    current_context: Option<String>,
    #[serde(default)]
    clusters: Option<Vec<Named<Cluster>>>,
    #[serde(default)]
    users: Option<Vec<NamedUser>>,
    #[serde(default)]
    contexts: Option<Vec<NamedContext>>,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    cluster: T,
}

#[derive(Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: Option<User>,
}

#[derive(Deserialize)]
struct NamedContext {
    name: String,
    context: ContextRef,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    server: Option<String>,
    certificate_authority: Option<String>,
    certificate_authority_data: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
    proxy_url: Option<String>,
    tls_server_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct User {
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<String>,
    client_certificate: Option<String>,
    client_certificate_data: Option<String>,
    client_key: Option<String>,
    client_key_data: Option<String>,
    exec: Option<serde_yaml_ng::Value>,
    auth_provider: Option<serde_yaml_ng::Value>,
    username: Option<String>,
    password: Option<String>,
    #[serde(rename = "as")]
    impersonate: Option<String>,
}

#[derive(Deserialize)]
struct ContextRef {
    cluster: String,
    user: String,
}

/// Resolves `context` (or the current context) of the kubeconfig `text`. `dir` is the file's
/// directory, against which relative paths are read; `origin` names the kubeconfig in errors.
pub fn resolve(
    text: &str,
    dir: Option<&Path>,
    context: Option<&str>,
    origin: &str,
) -> anyhow::Result<KubeCreds> {
    let cfg: Config = serde_yaml_ng::from_str(text).map_err(|e| {
        // serde_yaml's message quotes no values, only positions and expected types.
        anyhow!("kubeconfig {origin} is not a kubeconfig ({e}); check it with `kubectl config view --kubeconfig <file>`")
    })?;
    let contexts = cfg.contexts.unwrap_or_default();
    let names = || {
        let n: Vec<&str> = contexts.iter().map(|c| c.name.as_str()).collect();
        if n.is_empty() {
            "none".to_string()
        } else {
            n.join(", ")
        }
    };
    let wanted = match context.or(cfg.current_context.as_deref()) {
        Some(c) if !c.is_empty() => c,
        _ => bail!(
            "kubeconfig {origin} has no current-context; name one in the profile's `context` (contexts: {})",
            names()
        ),
    };
    let ctx = contexts.iter().find(|c| c.name == wanted).ok_or_else(|| {
        anyhow!(
            "kubeconfig {origin} has no context '{wanted}'; contexts: {}",
            names()
        )
    })?;
    let at = format!("context '{wanted}' of kubeconfig {origin}");
    let cluster = cfg
        .clusters
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.name == ctx.context.cluster)
        .ok_or_else(|| {
            anyhow!(
                "{at} names cluster '{}', which is not in its clusters",
                ctx.context.cluster
            )
        })?
        .cluster;
    let user = cfg
        .users
        .unwrap_or_default()
        .into_iter()
        .find(|u| u.name == ctx.context.user)
        .ok_or_else(|| {
            anyhow!(
                "{at} names user '{}', which is not in its users",
                ctx.context.user
            )
        })?
        .user
        .ok_or_else(|| {
            anyhow!(
                "{at}: user '{}' has no credentials; {USE_INSTEAD}",
                ctx.context.user
            )
        })?;
    let files = Files { dir };
    let mut creds = cluster_part(&cluster, &files).with_context(|| at.clone())?;
    user_part(&user, &files, &mut creds)
        .with_context(|| format!("{at}, user '{}'", ctx.context.user))?;
    Ok(creds)
}

/// What to use instead of a refused way to log in.
const USE_INSTEAD: &str = "use a token or client cert: `kubectl create token <serviceaccount> -n <namespace>` and put it in the user's `token` or `tokenFile` (or the profile's inline `token`), or a client certificate (`client-certificate`/`client-key`)";

/// The server and its CA.
fn cluster_part(c: &Cluster, files: &Files<'_>) -> anyhow::Result<KubeCreds> {
    if c.insecure_skip_tls_verify {
        bail!(
            "insecure-skip-tls-verify: true is refused: it would send the token to whatever answers; {}",
            NO_CA_ADVICE.replace("{field}", "certificate-authority(-data)")
        );
    }
    if c.proxy_url.is_some() {
        bail!(
            "proxy-url is not supported: infra connects to the API server itself, so its address checks apply; remove proxy-url or use a context without it"
        );
    }
    if c.tls_server_name.is_some() {
        bail!(
            "tls-server-name is not supported: the server's certificate must name the host in `server`; point `server` at that name"
        );
    }
    let server = c
        .server
        .clone()
        .ok_or_else(|| anyhow!("the cluster has no `server`"))?;
    check_server(&server).map_err(|why| anyhow!("server: {why}"))?;
    let ca_pem = match (&c.certificate_authority_data, &c.certificate_authority) {
        (Some(data), _) => decode("certificate-authority-data", data)?,
        (None, Some(path)) => files.read("certificate-authority", path)?,
        (None, None) => bail!(
            "{}",
            NO_CA_ADVICE.replace(
                "{field}",
                "certificate-authority or certificate-authority-data"
            )
        ),
    };
    Ok(KubeCreds {
        server,
        ca_pem,
        token: None,
        client_cert: None,
        secret_forms: Vec::new(),
    })
}

/// The user's token or client certificate, into `creds`.
fn user_part(u: &User, files: &Files<'_>, creds: &mut KubeCreds) -> anyhow::Result<()> {
    if let Some(exec) = &u.exec {
        let command = exec
            .get("command")
            .and_then(|c| c.as_str())
            .unwrap_or("a program");
        bail!(
            "it authenticates with `exec` ({command}), which would run a program on this machine for every request; {USE_INSTEAD}"
        );
    }
    if u.auth_provider.is_some() {
        bail!(
            "it authenticates with `auth-provider`, which would run a program or refresh tokens behind infra's back; {USE_INSTEAD}"
        );
    }
    if u.username.is_some() || u.password.is_some() {
        bail!(
            "username/password (basic auth) is refused: Kubernetes removed it in 1.19 and it would send a reusable password; {USE_INSTEAD}"
        );
    }
    if u.impersonate.is_some() {
        bail!(
            "`as` (impersonation) is not supported; give the identity's own token or certificate"
        );
    }
    creds.token = match (&u.token, &u.token_file) {
        (Some(t), _) => Some(t.trim().to_string()),
        (None, Some(path)) => Some(files.read("tokenFile", path)?.trim().to_string()),
        (None, None) => None,
    };
    let cert = match (&u.client_certificate_data, &u.client_certificate) {
        (Some(d), _) => Some(decode("client-certificate-data", d)?),
        (None, Some(p)) => Some(files.read("client-certificate", p)?),
        (None, None) => None,
    };
    let key = match (&u.client_key_data, &u.client_key) {
        (Some(d), _) => {
            // The base64 form is as secret as the key: a dump of the kubeconfig shows it.
            creds.secret_forms.push(d.trim().to_string());
            Some(decode("client-key-data", d)?)
        }
        (None, Some(p)) => Some(files.read("client-key", p)?),
        (None, None) => None,
    };
    creds.client_cert = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (Some(_), None) => bail!("it has a client certificate but no client-key(-data)"),
        (None, Some(_)) => bail!("it has a client key but no client-certificate(-data)"),
        (None, None) => None,
    };
    if creds.token.is_none() && creds.client_cert.is_none() {
        bail!("it has no token and no client certificate; {USE_INSTEAD}");
    }
    Ok(())
}

/// A `*-data` field: base64 of PEM text.
fn decode(field: &str, data: &str) -> anyhow::Result<String> {
    let compact: String = data.split_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| anyhow!("{field} is not base64 ({e}); it holds the PEM file base64-encoded (base64 -w0 <file>)"))?;
    String::from_utf8(bytes).map_err(|_| anyhow!("{field} does not decode to PEM text"))
}

/// Files a kubeconfig names, relative to its own directory as kubectl reads them.
struct Files<'a> {
    dir: Option<&'a Path>,
}

impl Files<'_> {
    fn read(&self, field: &str, path: &str) -> anyhow::Result<String> {
        let expanded = super::shellexpand_home(path);
        let p = PathBuf::from(&expanded);
        let full = if p.is_absolute() {
            p
        } else {
            match self.dir {
                Some(d) => d.join(p),
                None => bail!(
                    "{field} '{path}' is relative, and a kubeconfig read from a variable has no directory; give an absolute path"
                ),
            }
        };
        std::fs::read_to_string(&full)
            .with_context(|| format!("cannot read {field} {}", full.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nS0VZLWJvZHktbGluZS1vZi1hLXByaXZhdGUta2V5\n-----END PRIVATE KEY-----\n";

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    /// A kubeconfig with one cluster and the given user and cluster extras.
    fn config(cluster_extra: &str, user: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: main\n\
             clusters:\n- name: c\n  cluster:\n    server: https://10.0.0.1:6443\n{cluster_extra}\
             users:\n- name: u\n  user:\n{user}\
             contexts:\n- name: main\n  context:\n    cluster: c\n    user: u\n    namespace: apps\n\
             - name: other\n  context:\n    cluster: c\n    user: u\n"
        )
    }

    fn ca_data() -> String {
        format!("    certificate-authority-data: {}\n", b64(CA))
    }

    fn err(text: &str) -> String {
        format!("{:#}", resolve(text, None, None, "kc").unwrap_err())
    }

    #[test]
    fn token_and_inline_data() {
        let c = resolve(
            &config(&ca_data(), "    token: tok-123\n"),
            None,
            None,
            "kc",
        )
        .unwrap();
        assert_eq!(c.server, "https://10.0.0.1:6443");
        assert_eq!(c.ca_pem, CA);
        assert_eq!(c.token.as_deref(), Some("tok-123"));
        assert!(c.client_cert.is_none());
    }

    #[test]
    fn client_cert_data_registers_the_base64_key_too() {
        let user = format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64("CERT"),
            b64(KEY)
        );
        let c = resolve(&config(&ca_data(), &user), None, Some("other"), "kc").unwrap();
        assert_eq!(c.client_cert, Some(("CERT".to_string(), KEY.to_string())));
        assert_eq!(c.secret_forms, vec![b64(KEY)]);
        let r = crate::redact::Redactor::new();
        c.register(&r);
        let shown = format!("key {} and {}", b64(KEY), KEY);
        let clean = r.scrub_str(&shown);
        assert!(
            !clean.contains("S0VZLWJvZHkt") && !clean.contains(&b64(KEY)),
            "{clean}"
        );
    }

    #[test]
    fn relative_files_are_read_beside_the_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), CA).unwrap();
        std::fs::write(dir.path().join("tok"), "from-file\n").unwrap();
        let text = config(
            "    certificate-authority: ca.crt\n",
            "    tokenFile: tok\n",
        );
        let c = resolve(&text, Some(dir.path()), None, "kc").unwrap();
        assert_eq!(
            (c.ca_pem.as_str(), c.token.as_deref()),
            (CA, Some("from-file"))
        );
        let msg = format!("{:#}", resolve(&text, None, None, "kc").unwrap_err());
        assert!(msg.contains("absolute path"), "{msg}");
    }

    #[test]
    fn every_refusal_says_why_and_what_instead() {
        let ca = ca_data();
        let cases = [
            (
                config(
                    &ca,
                    "    exec:\n      command: aws\n      args: [eks, get-token]\n",
                ),
                vec![
                    "`exec` (aws)",
                    "would run a program",
                    "kubectl create token",
                ],
            ),
            (
                config(&ca, "    auth-provider:\n      name: gcp\n"),
                vec!["auth-provider", "kubectl create token"],
            ),
            (
                config(&ca, "    username: admin\n    password: hunter2\n"),
                vec!["username/password", "token or client cert"],
            ),
            (
                config("    insecure-skip-tls-verify: true\n", "    token: t0k3n\n"),
                vec![
                    "insecure-skip-tls-verify: true is refused",
                    "certificate-authority",
                ],
            ),
            (
                config("", "    token: t0k3n\n"),
                vec!["no CA", "kube-root-ca.crt"],
            ),
            (
                config(&ca, "    client-certificate-data: Q0VSVA==\n"),
                vec!["no client-key"],
            ),
            (
                config(&ca, "    {}\n"),
                vec!["no token and no client certificate"],
            ),
            (
                config(
                    &format!("{ca}    proxy-url: http://proxy:3128\n"),
                    "    token: t0k3n\n",
                ),
                vec!["proxy-url"],
            ),
            (
                config(&ca, "    token: t0k3n\n    as: admin\n"),
                vec!["impersonation"],
            ),
            (
                config(
                    "    certificate-authority-data: not*base64\n",
                    "    token: t0k3n\n",
                ),
                vec!["certificate-authority-data is not base64"],
            ),
        ];
        for (text, wants) in cases {
            let msg = err(&text);
            assert!(msg.contains("context 'main' of kubeconfig kc"), "{msg}");
            for w in wants {
                assert!(msg.contains(w), "want '{w}' in: {msg}");
            }
            assert!(!msg.contains("hunter2") && !msg.contains("t0k3n"), "{msg}");
        }
    }

    #[test]
    fn missing_or_unknown_context_lists_the_contexts() {
        let text = config(&ca_data(), "    token: t\n");
        let msg = format!(
            "{:#}",
            resolve(&text, None, Some("prod"), "kc").unwrap_err()
        );
        assert!(
            msg.contains("no context 'prod'") && msg.contains("main, other"),
            "{msg}"
        );
        let no_current = text.replace("current-context: main\n", "");
        let msg = err(&no_current);
        assert!(
            msg.contains("no current-context") && msg.contains("`context`"),
            "{msg}"
        );
        let msg = err("clusters: [unclosed");
        assert!(msg.contains("is not a kubeconfig"), "{msg}");
    }
}
