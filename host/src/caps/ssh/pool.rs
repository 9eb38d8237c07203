//! SSH connections, one per target, kept open and reused across calls.
//!
//! A connection is made on first use: TCP, key exchange, the host-key check (pin or TOFU), then
//! authentication with the target's key (decrypted with its passphrase) or password, all resolved
//! here in the host. It stays open with keepalives; a dropped one is noticed (closed handle, or a
//! channel that cannot open) and replaced on the next call.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};

use super::super::infra::host::types::CapError;
use crate::locked_file::Locked;
use crate::redact::Redactor;
use crate::targets::{HostKeyTrust, Target, Targets};

/// How long the TCP connect, key exchange and authentication may take together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Keepalive every this long without traffic from the server…
const KEEPALIVE: Duration = Duration::from_secs(15);
/// …and the connection is closed after this many unanswered.
const KEEPALIVE_MAX: usize = 3;

/// An open, authenticated connection.
pub type Conn = Arc<Handle<Client>>;

/// SSH connections, pooled per target.
#[derive(Default)]
pub struct Pool {
    targets: Arc<Targets>,
    /// Where TOFU host keys are recorded (`known_hosts.json` in the state directory).
    known_hosts: PathBuf,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Conn>>>>>,
    /// Connections made since start (for tests and diagnostics).
    connects: std::sync::atomic::AtomicU64,
}

impl Pool {
    /// A pool for `targets`, recording TOFU host keys in `known_hosts`.
    pub fn new(targets: Arc<Targets>, known_hosts: PathBuf) -> Self {
        Self {
            targets,
            known_hosts,
            ..Default::default()
        }
    }

    /// The targets this pool serves.
    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    /// Connections opened so far.
    pub fn connects(&self) -> u64 {
        self.connects.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn slot(&self, name: &str) -> Arc<tokio::sync::Mutex<Option<Conn>>> {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// The target's open connection, or a new one. `redactor` learns the secrets used.
    pub async fn get(&self, name: &str, redactor: &Redactor) -> Result<Conn, CapError> {
        let target = self.target(name)?;
        let slot = self.slot(name);
        let mut guard = slot.lock().await;
        if let Some(c) = guard.as_ref()
            && !c.is_closed()
        {
            return Ok(c.clone());
        }
        *guard = None;
        let conn = Arc::new(self.connect(name, target, redactor).await?);
        self.connects
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *guard = Some(conn.clone());
        Ok(conn)
    }

    /// Forgets `conn` if it is still the target's pooled connection (it failed).
    pub async fn discard(&self, name: &str, conn: &Conn) {
        let slot = self.slot(name);
        let mut guard = slot.lock().await;
        if guard.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            *guard = None;
        }
    }

    /// A target by name, or a not-found error listing the known ones.
    pub fn target(&self, name: &str) -> Result<&Target, CapError> {
        self.targets.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.targets.names().collect();
            CapError::NotFound(format!(
                "no target '{name}' in {}; known targets: {}",
                self.targets.origin(),
                if known.is_empty() {
                    "none (add one: see the targets.json format in README.md (section State))"
                        .to_string()
                } else {
                    known.join(", ")
                }
            ))
        })
    }

    async fn connect(
        &self,
        name: &str,
        target: &Target,
        redactor: &Redactor,
    ) -> Result<Handle<Client>, CapError> {
        let trust = target
            .trust(name, self.targets.origin())
            .map_err(CapError::Denied)?;
        let key = load_key(name, target, redactor)?;
        let password = match &target.password {
            Some(r) => {
                let p = r
                    .resolve()
                    .map_err(|e| CapError::Failed(format!("target '{name}': {e:#}")))?;
                redactor.add(&p);
                Some(p)
            }
            None => None,
        };
        let config = Arc::new(client::Config {
            keepalive_interval: Some(KEEPALIVE),
            keepalive_max: KEEPALIVE_MAX,
            nodelay: true,
            ..Default::default()
        });
        let seen = Arc::new(Mutex::new(None));
        let handler = Client {
            trust: trust.clone(),
            endpoint: target.endpoint(),
            known_hosts: self.known_hosts.clone(),
            seen: seen.clone(),
        };
        let endpoint = target.endpoint();
        let work = async {
            let mut handle = client::connect(config, (target.host.as_str(), target.port), handler)
                .await
                .map_err(|e| {
                    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).take();
                    match seen {
                        Some(Seen::Mismatch { expected, actual }) => CapError::Failed(format!(
                            "the host key of target '{name}' ({endpoint}) does not match: expected {expected}, the server presented {actual}; refusing to connect. If the server's key really changed, update host_key in {}{}",
                            self.targets.origin(),
                            if trust == HostKeyTrust::Tofu {
                                format!(" or remove '{endpoint}' from {}", self.known_hosts.display())
                            } else {
                                String::new()
                            }
                        )),
                        Some(Seen::Unrecorded(why)) => CapError::Failed(format!(
                            "target '{name}' ({endpoint}) uses host_key \"tofu\", and its record cannot be checked: {why}"
                        )),
                        None => CapError::Failed(format!(
                            "cannot connect to target '{name}' ({endpoint}): {e}"
                        )),
                    }
                })?;
            let user = target.user.clone();
            let mut ok = false;
            if let Some(key) = key {
                let hash = handle
                    .best_supported_rsa_hash()
                    .await
                    .ok()
                    .flatten()
                    .flatten();
                let res = handle
                    .authenticate_publickey(
                        user.clone(),
                        PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                    )
                    .await
                    .map_err(|e| {
                        CapError::Failed(format!(
                            "target '{name}' ({endpoint}): authentication failed: {e}"
                        ))
                    })?;
                ok = res.success();
            }
            if !ok && let Some(p) = password {
                let res = handle
                    .authenticate_password(user.clone(), p)
                    .await
                    .map_err(|e| {
                        CapError::Failed(format!(
                            "target '{name}' ({endpoint}): authentication failed: {e}"
                        ))
                    })?;
                ok = res.success();
            }
            if !ok {
                let _ = handle
                    .disconnect(russh::Disconnect::ByApplication, "", "en")
                    .await;
                return Err(CapError::Denied(format!(
                    "target '{name}' ({endpoint}): the server refused to authenticate user '{user}' with the configured {}; check the user and that the key is in the server's authorized_keys",
                    match (&target.key_file, &target.key, &target.password) {
                        (_, _, Some(_)) if target.key_file.is_none() && target.key.is_none() =>
                            "password",
                        (_, _, Some(_)) => "key and password",
                        _ => "key",
                    }
                )));
            }
            Ok(handle)
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, work).await {
            Ok(r) => r,
            Err(_) => Err(CapError::Timeout(format!(
                "connecting to target '{name}' ({endpoint}) took longer than {} s",
                CONNECT_TIMEOUT.as_secs()
            ))),
        }
    }
}

/// Reads and decrypts the target's private key, if it has one.
fn load_key(
    name: &str,
    target: &Target,
    redactor: &Redactor,
) -> Result<Option<PrivateKey>, CapError> {
    let failed = |m: String| CapError::Failed(format!("target '{name}': {m}"));
    let text = match (&target.key_file, &target.key) {
        (Some(_), _) => {
            let path = target.key_path().unwrap_or_default();
            let t = std::fs::read_to_string(&path)
                .map_err(|e| failed(format!("cannot read key_file {path}: {e}")))?;
            redactor.add_private_key(&t);
            t
        }
        (None, Some(r)) => {
            let t = r.resolve().map_err(|e| failed(format!("{e:#}")))?;
            redactor.add_private_key(&t);
            t
        }
        (None, None) => return Ok(None),
    };
    let passphrase = match &target.passphrase {
        Some(r) => {
            let p = r.resolve().map_err(|e| failed(format!("{e:#}")))?;
            redactor.add(&p);
            Some(p)
        }
        None => None,
    };
    russh::keys::decode_secret_key(&text, passphrase.as_deref())
        .map(Some)
        .map_err(|e| {
            failed(format!(
                "cannot load the private key ({e}){}",
                if passphrase.is_none() {
                    "; if it is encrypted, give its passphrase as \"passphrase\": \"env:VAR\""
                } else {
                    "; check the passphrase reference"
                }
            ))
        })
}

/// What the host-key check saw.
enum Seen {
    Mismatch {
        expected: String,
        actual: String,
    },
    /// `known_hosts.json` could not be read, parsed or written.
    Unrecorded(String),
}

/// The russh client handler: checks the server's host key.
pub struct Client {
    trust: HostKeyTrust,
    endpoint: String,
    known_hosts: PathBuf,
    seen: Arc<Mutex<Option<Seen>>>,
}

/// `SHA256:<base64>` of a server key, as `ssh-keygen -l` prints it.
fn fingerprint(key: &PublicKeyOrCertificate) -> String {
    let fp = match key {
        PublicKeyOrCertificate::PublicKey { key, .. } => key.fingerprint(HashAlg::Sha256),
        PublicKeyOrCertificate::Certificate(c) => c.public_key().fingerprint(HashAlg::Sha256),
    };
    fp.to_string().trim_end_matches('=').to_string()
}

/// Checks `actual` against the TOFU record of `endpoint`, recording it when there is none.
/// A file that cannot be read or parsed is an error, never an empty record: treating it as empty
/// would trust whatever key the server presents next. The check and the record happen under the
/// file's lock, re-read inside it, so another infra process recording a key meanwhile is never
/// overwritten (a lost record would trust the next key seen for that server).
fn tofu(path: &Path, endpoint: &str, actual: &str) -> Result<Option<String>, String> {
    let cannot = |what: &str, e: std::io::Error| format!("cannot {what} {}: {e}", path.display());
    let file = Locked::acquire(path).map_err(|e| cannot("lock", e))?;
    let mut known: BTreeMap<String, String> = match file.read().map_err(|e| cannot("read", e))? {
        Some(t) => serde_json::from_str(&t).map_err(|e| {
            format!(
                "{} is not valid JSON ({e}); it records the trusted host keys of \"tofu\" targets, so infra will not guess: fix or restore it (an object of \"host:port\": \"SHA256:…\"), or delete it to trust the next key seen for every tofu target",
                path.display()
            )
        })?,
        None => BTreeMap::new(),
    };
    if let Some(expected) = known.get(endpoint) {
        return Ok((expected != actual).then(|| expected.clone()));
    }
    known.insert(endpoint.to_string(), actual.to_string());
    let text = serde_json::to_string_pretty(&known).unwrap_or_default() + "\n";
    file.replace(text.as_bytes()).map_err(|e| {
        format!(
            "cannot record the host key of {endpoint} in {}: {e}",
            path.display()
        )
    })?;
    Ok(None)
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let actual = fingerprint(server_public_key);
        let expected = match &self.trust {
            HostKeyTrust::Pin(pin) => (pin != &actual).then(|| pin.clone()),
            HostKeyTrust::Tofu => match tofu(&self.known_hosts, &self.endpoint, &actual) {
                Ok(e) => e,
                Err(e) => {
                    *self.seen.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(Seen::Unrecorded(e));
                    return Ok(false);
                }
            },
        };
        match expected {
            None => Ok(true),
            Some(expected) => {
                *self.seen.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(Seen::Mismatch { expected, actual });
                Ok(false)
            }
        }
    }
}
