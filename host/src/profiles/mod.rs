//! `profiles.json`: named HTTP and Postgres endpoints, Kubernetes clusters, and SSH keys for
//! programs (`ssh-key`), whose credentials the host injects.
//!
//! Secret fields hold references (`env:VAR`, `file:PATH`), never values: a literal is refused at
//! load so that a profile file can be shared and reviewed.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

mod kubeconfig;
mod kubernetes;

pub use kubernetes::{KubeCreds, KubernetesProfile};

/// A reference to a secret: `env:VAR` or `file:PATH`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String")]
pub struct SecretRef(String);

impl TryFrom<String> for SecretRef {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.starts_with("env:") || s.starts_with("file:") {
            Ok(Self(s))
        } else {
            Err(
                "a secret must be a reference, `env:VAR` or `file:PATH`, never the value itself"
                    .into(),
            )
        }
    }
}

impl SecretRef {
    /// The reference as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The reference in a form a grant can name exactly: `env:` with a plain variable name, or
    /// `file:` with an absolute path (or `~/…`) that has no `.`/`..` components or empty parts.
    pub fn canonical(self) -> Result<SecretRef, String> {
        if let Some(var) = self.0.strip_prefix("env:") {
            let ok = !var.is_empty()
                && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !var.as_bytes()[0].is_ascii_digit();
            return if ok {
                Ok(self)
            } else {
                Err(format!(
                    "'{}': an environment variable name is letters, digits and '_'",
                    self.0
                ))
            };
        }
        let path = self.0.trim_start_matches("file:");
        let rest = path.strip_prefix("~/").or_else(|| path.strip_prefix('/'));
        let Some(rest) = rest else {
            return Err(format!(
                "'{}': give an absolute path (file:/...) or one under ~/ (file:~/...)",
                self.0
            ));
        };
        if rest.split('/').any(|part| matches!(part, "" | "." | "..")) {
            return Err(format!(
                "'{}': the path may not contain '.', '..' or '//'; write the real path of the file",
                self.0
            ));
        }
        Ok(self)
    }

    /// Reads the secret's value now (so rotation needs no restart).
    pub fn resolve(&self) -> anyhow::Result<String> {
        if let Some(var) = self.0.strip_prefix("env:") {
            std::env::var(var).with_context(|| {
                format!(
                    "secret {} is not set; export {var} in the environment infra runs in",
                    self.0
                )
            })
        } else {
            let path = self.0.trim_start_matches("file:");
            let path = shellexpand_home(path);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read secret file {path} (from {})", self.0))?;
            Ok(text.trim_end_matches(['\n', '\r']).to_string())
        }
    }
}

pub(crate) fn shellexpand_home(p: &str) -> String {
    match (p.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => p.to_string(),
    }
}

/// How the host authenticates an HTTP profile's requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum HttpAuth {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: SecretRef,
    },
    /// `Authorization: Basic base64(user:password)`.
    Basic {
        /// The user name (not secret).
        user: String,
        /// The password.
        password: SecretRef,
    },
    /// Any header, e.g. `X-Api-Key`.
    Header {
        /// Header name.
        name: String,
        /// Header value.
        value: SecretRef,
    },
}

/// An HTTP endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProfile {
    /// Base URL that relative request paths are joined to.
    pub base_url: String,
    /// Auth the host injects.
    pub auth: Option<HttpAuth>,
    /// Extra headers sent with every request to the profile's origin, and never on a redirect
    /// that leaves it. Their values are treated as secrets (API keys end up here) and scrubbed
    /// from every output — except those of `Accept`, `Accept-Language`, `Content-Type`,
    /// `User-Agent`, `Cache-Control` and `X-GitHub-Api-Version`, which carry no credential.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Writes through it need a user's approval (see the guard).
    #[serde(default)]
    pub protected: bool,
}

/// A PostgreSQL database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresProfile {
    /// Host name or address.
    pub host: String,
    /// Port (5432).
    #[serde(default = "default_pg_port")]
    pub port: u16,
    /// Role.
    pub user: String,
    /// Database name.
    pub database: String,
    /// Password reference.
    pub password: Option<SecretRef>,
    /// Force read-only transactions.
    #[serde(default)]
    pub read_only: bool,
    /// Writes through it need a user's approval (see the guard).
    #[serde(default)]
    pub protected: bool,
}

fn default_pg_port() -> u16 {
    5432
}

/// An SSH key for programs `exec` and `git` run (`git push` over ssh): the host writes the key
/// (decrypted) and the pinned known_hosts into the run's home and points `GIT_SSH_COMMAND` at
/// them; the plugin never sees either.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshKeyProfile {
    /// The private key (OpenSSH or PEM), e.g. `file:/etc/infra/deploy_ed25519`.
    pub key: SecretRef,
    /// Its passphrase, when the key is encrypted.
    pub passphrase: Option<SecretRef>,
    /// The known_hosts file the server's key must be in (`StrictHostKeyChecking=yes`).
    pub known_hosts: SecretRef,
    /// Writes through it need a user's approval (see the guard).
    #[serde(default)]
    pub protected: bool,
}

/// One entry of `profiles.json`, told apart by its `"type"`.
#[derive(Debug, Clone)]
pub enum Profile {
    /// An HTTP API.
    Http(HttpProfile),
    /// A Postgres database.
    Postgres(PostgresProfile),
    /// An SSH key for programs.
    SshKey(SshKeyProfile),
    /// A Kubernetes API server: its CA pinned, a token or client certificate injected.
    Kubernetes(KubernetesProfile),
}

impl Profile {
    /// The `"type"` it was written with.
    pub fn kind(&self) -> &'static str {
        match self {
            Profile::Http(_) => "http",
            Profile::Postgres(_) => "postgres",
            Profile::SshKey(_) => "ssh-key",
            Profile::Kubernetes(_) => "kubernetes",
        }
    }

    /// Whether the operator marked it `"protected": true`: writes through it need a user's
    /// approval, whatever the policy allows.
    pub fn protected(&self) -> bool {
        match self {
            Profile::Http(p) => p.protected,
            Profile::Postgres(p) => p.protected,
            Profile::SshKey(p) => p.protected,
            Profile::Kubernetes(p) => p.protected,
        }
    }

    /// Whether it is a Kubernetes cluster (its writes go through the guard).
    pub fn is_kubernetes(&self) -> bool {
        matches!(self, Profile::Kubernetes(_))
    }

    /// The endpoint it reaches, as shown in listings (never a secret): the base URL, the
    /// cluster server (read from the kubeconfig now; none when it cannot be read), or
    /// `host:port/database`.
    pub fn server(&self) -> Option<String> {
        match self {
            Profile::Http(p) => Some(p.base_url.clone()),
            Profile::Postgres(p) => Some(format!("{}:{}/{}", p.host, p.port, p.database)),
            Profile::SshKey(_) => None,
            Profile::Kubernetes(k) => k.server(),
        }
    }
}

/// All profiles, by name.
pub type Profiles = crate::named::Named<Profile>;

impl Profiles {
    /// Loads `path`; a missing file means no profiles.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        Self::load_with(path, "profiles", profile)
    }

    /// Parses profiles from JSON text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Self> {
        Self::parse_with(text, origin, "profiles", profile)
    }

    /// Every secret reference of every profile (to register their values with the redactor).
    pub fn secret_refs(&self) -> Vec<&SecretRef> {
        let mut refs = Vec::new();
        for p in self.values() {
            match p {
                Profile::Http(h) => match &h.auth {
                    Some(HttpAuth::Bearer { token }) => refs.push(token),
                    Some(HttpAuth::Basic { password, .. }) => refs.push(password),
                    Some(HttpAuth::Header { value, .. }) => refs.push(value),
                    None => {}
                },
                Profile::Postgres(pg) => refs.extend(pg.password.iter()),
                Profile::SshKey(k) => {
                    refs.push(&k.key);
                    refs.extend(k.passphrase.iter());
                }
                // A kubeconfig's secrets are inside it: registered from its parsed form
                // (caps::http::register_profile_secrets), not as the whole file.
                Profile::Kubernetes(k) => refs.extend(k.token.iter()),
            }
        }
        refs
    }
}

/// One profile, told apart by its `"type"`.
fn profile(name: &str, mut value: serde_json::Value, origin: &str) -> anyhow::Result<Profile> {
    let kind = value.as_object_mut().and_then(|o| o.remove("type"));
    let parsed = match kind.as_ref().and_then(|k| k.as_str()) {
        Some("http") => serde_json::from_value(value).map(Profile::Http),
        Some("postgres") => serde_json::from_value(value).map(Profile::Postgres),
        Some("ssh-key") => serde_json::from_value(value).map(Profile::SshKey),
        Some("kubernetes") => {
            let k: KubernetesProfile = serde_json::from_value(value).with_context(|| {
                format!("profile '{name}' in {origin} is invalid; see the kubernetes profile format in README.md (section State)")
            })?;
            k.check()
                .map_err(|why| anyhow::anyhow!("profile '{name}' in {origin}: {why}"))?;
            return Ok(Profile::Kubernetes(k));
        }
        _ => anyhow::bail!(
            "profile '{name}' in {origin} needs \"type\": \"http\", \"postgres\", \"ssh-key\" or \"kubernetes\""
        ),
    };
    parsed.with_context(|| {
        format!("profile '{name}' in {origin} is invalid; see the profiles.json format in README.md (section State)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_format() {
        let p = Profiles::parse(
            r#"{ "github": { "type": "http", "base_url": "https://api.github.com",
                   "auth": { "type": "bearer", "token": "env:GITHUB_TOKEN" } },
                 "app-db": { "type": "postgres", "host": "127.0.0.1", "port": 5432, "user": "app",
                   "database": "app", "password": "env:APP_DB_PASSWORD", "read_only": true } }"#,
            "profiles.json",
        )
        .unwrap();
        assert!(matches!(p.get("github"), Some(Profile::Http(_))));
        assert!(matches!(p.get("app-db"), Some(Profile::Postgres(pg)) if pg.read_only));
        assert_eq!(p.secret_refs().len(), 2);
    }

    #[test]
    fn parses_an_ssh_key_profile() {
        let p = Profiles::parse(
            r#"{"deploy": {"type": "ssh-key", "key": "file:/etc/infra/id_ed25519",
                 "passphrase": "env:DEPLOY_PASS", "known_hosts": "file:/etc/infra/known_hosts"}}"#,
            "p.json",
        )
        .unwrap();
        assert!(matches!(p.get("deploy"), Some(Profile::SshKey(k)) if k.passphrase.is_some()));
        assert_eq!(
            p.secret_refs().len(),
            2,
            "the key and its passphrase, not known_hosts"
        );
        let err = Profiles::parse(r#"{"d": {"type": "ssh-key", "key": "file:/k"}}"#, "p.json")
            .unwrap_err();
        assert!(format!("{err:#}").contains("known_hosts"), "{err:#}");
    }

    #[test]
    fn refuses_a_literal_secret() {
        let err = Profiles::parse(
            r#"{"x": {"type": "http", "base_url": "http://a", "auth": {"type": "bearer", "token": "hunter2"}}}"#,
            "p.json",
        )
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("profile 'x'") && msg.contains("env:VAR"),
            "{msg}"
        );
        assert!(
            !msg.contains("hunter2"),
            "the error must not echo the secret: {msg}"
        );
    }

    #[test]
    fn refuses_unknown_fields() {
        let err = Profiles::parse(
            r#"{"x": {"type": "http", "base_url": "http://a", "tokn": "env:A"}}"#,
            "p.json",
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("tokn"));
    }
}
