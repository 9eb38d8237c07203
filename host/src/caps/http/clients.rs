//! Pooled HTTP clients, one per plugin (and one per plugin and Kubernetes profile, which pins
//! the cluster's CA and presents its client certificate), whose DNS resolver enforces that
//! plugin's address grants.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::caps::infra::host::types::CapError;
use crate::policy::{Decision, Policy};
use crate::profiles::KubeCreds;

/// Pooled clients, one per plugin, so connections are reused across calls while each client's
/// resolver enforces only its own plugin's grants.
#[derive(Default)]
pub struct Clients {
    by_plugin: Mutex<HashMap<String, reqwest::Client>>,
    /// By (plugin, profile): the client and the fingerprint of the TLS material it was built
    /// with, so a rotated CA or certificate builds a new one.
    by_cluster: Mutex<HashMap<(String, String), ([u8; 32], reqwest::Client)>>,
}

/// The settings every client shares: no redirects followed by reqwest (the caller checks each
/// hop), no proxy, the plugin's resolver, bounded connects and idle connections.
fn builder(plugin: &str, policy: &Arc<Policy>) -> reqwest::ClientBuilder {
    let resolver = Arc::new(PolicyResolver {
        plugin: plugin.to_string(),
        policy: policy.clone(),
    });
    reqwest::Client::builder()
        .user_agent(concat!("infra/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve names where our resolver cannot check the addresses.
        .no_proxy()
        .dns_resolver(resolver)
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(90))
}

impl Clients {
    /// The client of `plugin`, built on first use.
    pub fn get(&self, plugin: &str, policy: &Arc<Policy>) -> Result<reqwest::Client, CapError> {
        let mut map = self.by_plugin.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get(plugin) {
            return Ok(c.clone());
        }
        let client = builder(plugin, policy)
            .build()
            .map_err(|e| CapError::Failed(format!("cannot build the HTTP client: {e}")))?;
        map.insert(plugin.to_string(), client.clone());
        Ok(client)
    }

    /// The client of `plugin` for Kubernetes profile `profile`: it trusts only the cluster's
    /// CA (no public or system roots) and presents the client certificate, if there is one.
    pub fn cluster(
        &self,
        plugin: &str,
        profile: &str,
        creds: &KubeCreds,
        policy: &Arc<Policy>,
    ) -> Result<reqwest::Client, CapError> {
        let fingerprint = creds.tls_fingerprint();
        let key = (plugin.to_string(), profile.to_string());
        let mut map = self.by_cluster.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((f, c)) = map.get(&key)
            && *f == fingerprint
        {
            return Ok(c.clone());
        }
        let bad = |what: &str, e: reqwest::Error| {
            CapError::Failed(format!(
                "profile '{profile}': the {what} is not usable PEM ({}); check it with `openssl x509 -in <file> -noout -text`",
                crate::caps::types::error_chain(&e)
            ))
        };
        let roots = reqwest::Certificate::from_pem_bundle(creds.ca_pem.as_bytes())
            .map_err(|e| bad("CA", e))?;
        if roots.is_empty() {
            return Err(CapError::Failed(format!(
                "profile '{profile}': the CA holds no certificate; give the cluster's CA certificate (PEM, -----BEGIN CERTIFICATE-----)"
            )));
        }
        let mut b = builder(plugin, policy).tls_certs_only(roots);
        if let Some((cert, key)) = &creds.client_cert {
            let pem = format!("{}\n{}", cert.trim_end(), key);
            b = b.identity(
                reqwest::Identity::from_pem(pem.as_bytes())
                    .map_err(|e| bad("client certificate or key", e))?,
            );
        }
        let client = b.build().map_err(|e| {
            CapError::Failed(format!(
                "profile '{profile}': cannot build its TLS client ({}); check `ca`, `client_cert` and `client_key`",
                crate::caps::types::error_chain(&e)
            ))
        })?;
        map.insert(key, (fingerprint, client.clone()));
        Ok(client)
    }
}

/// Raised by the resolver when every address of a name is denied.
#[derive(Debug)]
struct AddressDenied(String);

impl std::fmt::Display for AddressDenied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AddressDenied {}

/// Resolves names with the system resolver and drops the addresses the plugin may not reach.
struct PolicyResolver {
    plugin: String,
    policy: Arc<Policy>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let plugin = self.plugin.clone();
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut denied = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match policy.check_http_addr(&plugin, a.ip()) {
                    Decision::Allow => true,
                    Decision::Deny(reason) => {
                        denied = Some(format!("{host} resolves to {}: {reason}", a.ip()));
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), denied) {
                (true, Some(reason)) => Err(Box::new(AddressDenied(reason)) as _),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

/// The denial hidden in a reqwest error's source chain, if the resolver raised one.
pub(super) fn denial_in(err: &reqwest::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(d) = e.downcast_ref::<AddressDenied>() {
            return Some(d.0.clone());
        }
        source = e.source();
    }
    None
}
