//! `targets.json`: named SSH targets whose keys and passwords the host injects.
//!
//! Like `profiles.json`, secret fields hold references (`env:VAR`, `file:PATH`), never values.
//! Every target says how its server's host key is trusted: a pinned `SHA256:…` fingerprint, or
//! `"tofu"` (the first key seen is recorded in the state directory and a changed one refused).
//! There is no accept-anything default: a target without `host_key` (a `targets.json` of the tool
//! infra replaces) is read — its secrets are still scrubbed — and every use of it is refused
//! with what to add.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use crate::profiles::SecretRef;
use crate::redact::Redactor;

/// How a target's host key is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyTrust {
    /// Exactly this fingerprint (`SHA256:<base64>`, as `ssh-keygen -lf` prints it).
    Pin(String),
    /// Trust on first use: the first key seen is recorded; a different one later is refused.
    Tofu,
}

impl TryFrom<String> for HostKeyTrust {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("tofu") {
            Ok(Self::Tofu)
        } else if let Some(b64) = s.strip_prefix("SHA256:")
            && !b64.is_empty()
        {
            Ok(Self::Pin(format!("SHA256:{}", b64.trim_end_matches('='))))
        } else {
            Err(format!(
                "host_key '{s}' is neither a \"SHA256:…\" fingerprint (ssh-keygen -lf <host key>.pub) nor \"tofu\""
            ))
        }
    }
}

impl<'de> Deserialize<'de> for HostKeyTrust {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::try_from(s).map_err(serde::de::Error::custom)
    }
}

/// One SSH server and how to log in to it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Host name or address.
    pub host: String,
    /// Port (22).
    #[serde(default = "default_port")]
    pub port: u16,
    /// Remote user (`username` in the tool infra replaces).
    #[serde(alias = "username")]
    pub user: String,
    /// Path of an OpenSSH private key file (`~/` expands to `$HOME`).
    pub key_file: Option<String>,
    /// The private key itself, by reference (`env:VAR` or `file:PATH`).
    pub key: Option<SecretRef>,
    /// The key's passphrase, by reference.
    pub passphrase: Option<SecretRef>,
    /// A password for password authentication, by reference.
    pub password: Option<SecretRef>,
    /// How the server's host key is trusted: `"SHA256:…"` or `"tofu"`. Without it the target
    /// cannot be used ([`Target::trust`] says what to add).
    #[serde(default)]
    pub host_key: Option<HostKeyTrust>,
    /// Changes on this server need a user's approval (see the guard).
    #[serde(default)]
    pub protected: bool,
}

fn default_port() -> u16 {
    22
}

impl Target {
    /// How its host key is trusted, or what to add to `origin` when it does not say.
    pub fn trust(&self, name: &str, origin: &str) -> Result<HostKeyTrust, String> {
        self.host_key.clone().ok_or_else(|| {
            format!(
                "target '{name}' in {origin} has no host_key, so infra will not connect to it: pin \
                 the server's key with \"host_key\": \"SHA256:…\" (ssh-keygen -lf its .pub) or \
                 trust it on first use with \"host_key\": \"tofu\""
            )
        })
    }

    /// Whether the operator marked it `"protected": true`.
    pub fn protected(&self) -> bool {
        self.protected
    }

    /// `host:port`, as shown in messages and used as the TOFU record's key.
    pub fn endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The key file path with `~/` expanded.
    pub fn key_path(&self) -> Option<String> {
        self.key_file
            .as_deref()
            .map(|p| match (p.strip_prefix("~/"), std::env::var("HOME")) {
                (Some(rest), Ok(home)) => format!("{home}/{rest}"),
                _ => p.to_string(),
            })
    }
}

/// All targets, by name.
pub type Targets = crate::named::Named<Target>;

impl Targets {
    /// Loads `path`; a missing file means no targets.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        Self::load_with(path, "targets", target)
    }

    /// Parses targets from JSON text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Self> {
        Self::parse_with(text, origin, "targets", target)
    }

    /// Registers every secret the targets hold with `redactor`: passphrases and passwords, and
    /// private keys (`key` or the content of `key_file`) whole and line by line, so a key
    /// shown on any target is scrubbed even before its own target was used. One that cannot
    /// be read now is reported when a call uses it.
    pub fn register_secrets(&self, redactor: &Redactor) {
        for t in self.values() {
            for r in [&t.passphrase, &t.password].into_iter().flatten() {
                if let Ok(v) = r.resolve() {
                    redactor.add(&v);
                }
            }
            let key = match (&t.key, t.key_path()) {
                (Some(r), _) => r.resolve().ok(),
                (None, Some(path)) => std::fs::read_to_string(path).ok(),
                (None, None) => None,
            };
            if let Some(k) = key {
                redactor.add_private_key(&k);
            }
        }
    }
}

/// One target, checked for a host key and exactly one kind of key.
fn target(name: &str, value: serde_json::Value, origin: &str) -> anyhow::Result<Target> {
    let target: Target = serde_json::from_value(value).with_context(|| {
        format!(
            "target '{name}' in {origin} is invalid; see the targets.json format in README.md \
             (section State)"
        )
    })?;
    if target.host_key.is_none() {
        tracing::warn!("{}", target.trust(name, origin).unwrap_err());
    }
    if target.key_file.is_some() && target.key.is_some() {
        anyhow::bail!("target '{name}' in {origin} gives both key_file and key; keep one of them");
    }
    if target.key_file.is_none() && target.key.is_none() && target.password.is_none() {
        anyhow::bail!(
            "target '{name}' in {origin} has no credential: give key_file, key or password"
        );
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_format() {
        let t = Targets::parse(
            r#"{ "prod": { "host": "10.0.0.5", "port": 22, "user": "deploy",
                 "key_file": "~/.ssh/id_ed25519", "passphrase": "env:PROD_KEY_PASS",
                 "host_key": "SHA256:abc" },
                 "lab": { "host": "lab", "user": "root", "password": "file:/p", "host_key": "tofu" } }"#,
            "targets.json",
        )
        .unwrap();
        let prod = t.get("prod").unwrap();
        assert_eq!(prod.host_key, Some(HostKeyTrust::Pin("SHA256:abc".into())));
        assert_eq!(prod.endpoint(), "10.0.0.5:22");
        assert_eq!(t.get("lab").unwrap().host_key, Some(HostKeyTrust::Tofu));
        assert_eq!(t.get("lab").unwrap().port, 22);
        assert!(!prod.protected() && !t.get("lab").unwrap().protected());
        let p = Targets::parse(
            r#"{"db": {"host": "h", "user": "u", "password": "env:P", "host_key": "tofu", "protected": true}}"#,
            "t.json",
        )
        .unwrap();
        assert!(p.get("db").unwrap().protected());
        // The two secret references (a key file is a path, not a secret reference).
        assert!(prod.key.is_none() && prod.passphrase.is_some() && prod.password.is_none());
        let lab = t.get("lab").unwrap();
        assert!(lab.key.is_none() && lab.passphrase.is_none() && lab.password.is_some());
    }

    #[test]
    fn reads_the_replaced_tools_shape_and_demands_the_host_key_at_use() {
        let t = Targets::parse(
            r#"{"old": {"host": "h", "username": "u", "key_file": "/k"},
                "new": {"host": "h", "user": "u", "key_file": "/k", "host_key": "tofu"}}"#,
            "t.json",
        )
        .expect("one target without host_key does not refuse the file");
        let old = t.get("old").unwrap();
        assert_eq!(old.user, "u");
        let why = old.trust("old", "t.json").unwrap_err();
        assert!(
            why.contains("\"host_key\": \"tofu\"") && why.contains("t.json"),
            "{why}"
        );
        assert_eq!(
            t.get("new").unwrap().trust("new", "t.json"),
            Ok(HostKeyTrust::Tofu)
        );
    }

    #[test]
    fn refuses_a_literal_secret_or_a_bad_host_key() {
        let err = Targets::parse(
            r#"{"x": {"host": "h", "user": "u", "password": "hunter2", "host_key": "tofu"}}"#,
            "t.json",
        )
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("env:VAR") && !msg.contains("hunter2"), "{msg}");
        let err = Targets::parse(
            r#"{"x": {"host": "h", "user": "u", "password": "env:P", "host_key": "yes"}}"#,
            "t.json",
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("SHA256"), "{err:#}");
    }
}
