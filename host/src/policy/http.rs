//! `[plugin.<name>.http]`: which hosts and profiles a plugin may use, and the host check every
//! request (and every address a name resolves to) goes through.

use std::net::IpAddr;

use serde::Deserialize;
use serde_json::{Value, json};

use super::error::PolicyError;
use super::pattern::{
    Glob, HostPattern, Target, canonical_ip, host_port, is_unspecified, normalize_host,
};
use super::plugin::{CapGrant, strs};
use super::section::Section;
use super::{Decision, Policy};

/// `[plugin.<name>.http]`: which hosts and profiles the plugin may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Hosts the plugin may reach.
    pub hosts: Vec<HostPattern>,
    /// Hosts it may never reach, checked on names and on every resolved address.
    pub deny_hosts: Vec<HostPattern>,
    /// `profiles.json` entries it may name.
    pub profiles: Vec<Glob>,
}

/// The section as serde reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    deny_hosts: Vec<String>,
    #[serde(default)]
    profiles: Vec<String>,
}

impl CapGrant for Grant {
    type Raw = Raw;
    const TAKES_PROFILES: bool = true;

    fn load(raw: Raw, at: &Section<'_, '_>) -> Result<Self, PolicyError> {
        let hosts = at.hosts("hosts", &raw.hosts)?;
        let deny_hosts = at.hosts("deny_hosts", &raw.deny_hosts)?;
        // The resolved-address check cannot see the port, so a port on a deny entry
        // would block less (or more) than it says; refuse it rather than guess.
        if let Some((i, d)) = deny_hosts
            .iter()
            .enumerate()
            .find(|(_, d)| d.port.is_some())
        {
            return Err(at.invalid(
                "deny_hosts",
                Some(i),
                format!(
                    "'{d}' has a port, but deny_hosts blocks a host on every port; drop the ':port'"
                ),
            ));
        }
        Ok(Grant {
            hosts,
            deny_hosts,
            profiles: at.globs("profiles", &raw.profiles)?,
        })
    }

    fn summary(&self) -> Value {
        fn hosts(hs: &[HostPattern]) -> Vec<&str> {
            hs.iter().map(HostPattern::as_str).collect()
        }
        json!({"hosts": hosts(&self.hosts), "deny_hosts": hosts(&self.deny_hosts), "profiles": strs(&self.profiles)})
    }

    fn profiles(&self) -> &[Glob] {
        &self.profiles
    }
}

impl Policy {
    /// Whether the plugin may send a request to `host:port`: the host must match `hosts` and
    /// none of `deny_hosts`. `host` is a name or an IP literal (IPv6 with or without brackets).
    /// An unspecified address (`0.0.0.0/8`, `::`, in any spelling) is always denied.
    pub fn check_http_target(&self, plugin: &str, host: &str, port: u16) -> Decision {
        let target = match normalize_host(host) {
            Ok(t) => t,
            Err(why) => {
                return Decision::Deny(format!(
                    "policy: {why}; give the URL a DNS name or an IP address"
                ));
            }
        };
        let shown = host_port(&target, port);
        if let Target::Ip(ip) = target
            && is_unspecified(ip)
        {
            return unspecified_denied(&shown);
        }
        let grant = self.plugin(plugin).and_then(|p| p.http.as_ref());
        let Some(grant) = grant.filter(|g| g.hosts.iter().any(|h| h.matches_target(&target, port)))
        else {
            return self.deny(format!(
                "plugin '{plugin}' has no grant for host {shown}; add it under [plugin.{plugin}.http] hosts in"
            ));
        };
        match grant.deny_hosts.iter().find(|d| d.matches_host(&target)) {
            Some(d) => self.deny_listed(plugin, &shown, d),
            None => Decision::Allow,
        }
    }

    /// Whether the plugin may reach `host:port` as the server of a profile it was granted (a
    /// Kubernetes cluster): the profile names the server, so `hosts` need not list it, but
    /// `deny_hosts` and the unspecified-address rule still apply.
    pub fn check_http_profile_server(&self, plugin: &str, host: &str, port: u16) -> Decision {
        let target = match normalize_host(host) {
            Ok(t) => t,
            Err(why) => {
                return Decision::Deny(format!(
                    "policy: {why}; give the profile's server a DNS name or an IP address"
                ));
            }
        };
        let shown = host_port(&target, port);
        if let Target::Ip(ip) = target
            && is_unspecified(ip)
        {
            return unspecified_denied(&shown);
        }
        let Some(grant) = self.plugin(plugin).and_then(|p| p.http.as_ref()) else {
            return self.deny(format!(
                "plugin '{plugin}' has no [plugin.{plugin}.http] grant for {shown}; add the section with its profiles in"
            ));
        };
        match grant.deny_hosts.iter().find(|d| d.matches_host(&target)) {
            Some(d) => self.deny_listed(plugin, &shown, d),
            None => Decision::Allow,
        }
    }

    /// Whether the plugin may connect to an address a granted name resolved to: denied when
    /// the address falls in an IP or CIDR entry of `deny_hosts`, so a DNS name cannot smuggle
    /// a request to a blocked address. An unspecified address is always denied.
    pub fn check_http_addr(&self, plugin: &str, ip: IpAddr) -> Decision {
        if is_unspecified(ip) {
            return unspecified_denied(&format!("{ip} (a resolved address)"));
        }
        let Some(grant) = self.plugin(plugin).and_then(|p| p.http.as_ref()) else {
            return self.deny(format!(
                "plugin '{plugin}' has no grant for address {ip}; add it under [plugin.{plugin}.http] hosts in"
            ));
        };
        let target = Target::Ip(canonical_ip(ip));
        match grant
            .deny_hosts
            .iter()
            .find(|d| d.is_address() && d.matches_host(&target))
        {
            Some(d) => self.deny_listed(plugin, &format!("{ip} (a resolved address)"), d),
            None => Decision::Allow,
        }
    }

    fn deny_listed(&self, plugin: &str, shown: &str, entry: &HostPattern) -> Decision {
        Decision::Deny(format!(
            "policy: plugin '{plugin}' may not reach {shown}: it matches deny_hosts entry '{entry}' \
             under [plugin.{plugin}.http] in {}; the block is deliberate (e.g. cloud metadata), so \
             use another host, or ask the operator to remove the entry",
            self.edit_target()
        ))
    }
}

/// The denial of an unspecified address, whatever the policy grants.
fn unspecified_denied(shown: &str) -> Decision {
    Decision::Deny(format!(
        "policy: {shown} is an unspecified address (0.0.0.0/8 or ::): it names no host, and a \
         connection to it reaches this machine past any loopback entry of deny_hosts, so it is \
         always refused; write 127.0.0.1 or [::1] if you mean this machine (and the policy grants it)"
    ))
}
