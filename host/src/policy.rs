//! The policy: what each plugin may reach, read from TOML. Deny by default.
//!
//! A plugin with no `[plugin.<name>]` section is granted nothing; a section grants only the
//! capability sub-sections it contains. Every key the format accepts is enforced by one of the
//! checks below, and every other key is refused at load, naming the key and the file, so a
//! reviewer never reads a setting that silently does nothing. Patterns (hosts, CIDRs, ports,
//! globs, pins) are validated at load too: a policy that loads is one the checks understand.
//!
//! The checks return a [`Decision`]; a denial carries advice for the operator, because the agent
//! that triggered it cannot change the policy and needs to say what would.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::{Value, json};
use toml::de::{DeTable, DeValue};

use crate::flags::Flags;
use crate::profiles::SecretRef;

/// The locked-down policy compiled into the binary, used when the state directory has none.
pub const DEFAULT_POLICY: &str = include_str!("../../policies/default.toml");

/// How messages name the embedded default policy.
pub const EMBEDDED_ORIGIN: &str = "embedded default";

/// The capability names a plugin section may grant: every `infra:host` interface but `types`
/// (which holds only shared records), from the one list in [`crate::caps::ALL`].
pub const CAPS: &[&str] = match crate::caps::ALL.split_first() {
    Some((_types, grantable)) => grantable,
    None => &[],
};

/// The largest linear memory a wasm32 instance can address, in MiB.
const MAX_MEMORY_MIB: u64 = 4096;

/// The outcome of a policy check.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The plugin may go ahead.
    Allow,
    /// The plugin may not; the text says why and what the operator would change.
    Deny(String),
}

impl Decision {
    /// Whether the check passed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    /// The denial's reason, if denied.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Decision::Allow => None,
            Decision::Deny(reason) => Some(reason),
        }
    }

    /// `Ok(())` when allowed, else the reason, for `?` in capability code.
    pub fn into_result(self) -> Result<(), String> {
        match self {
            Decision::Allow => Ok(()),
            Decision::Deny(reason) => Err(reason),
        }
    }
}

/// A policy that could not be loaded; the message names the file, the place and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    /// The text is not TOML.
    Syntax {
        /// The file path or [`EMBEDDED_ORIGIN`].
        origin: String,
        /// 1-based line of the error, when known.
        line: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// A key the format does not have (a typo, or a setting from another version).
    UnknownKey {
        /// The file path or [`EMBEDDED_ORIGIN`].
        origin: String,
        /// The section holding the key, e.g. `[plugin.http.http]`.
        section: String,
        /// The key as written.
        key: String,
        /// 1-based line of the key, when known.
        line: Option<usize>,
        /// The keys that section accepts.
        allowed: Vec<String>,
    },
    /// A known key with a value the checks cannot use.
    Invalid {
        /// The file path or [`EMBEDDED_ORIGIN`].
        origin: String,
        /// Where: a section, or a key in a section, e.g. `hosts in [plugin.http.http]`.
        place: String,
        /// 1-based line of the value, when known.
        line: Option<usize>,
        /// What is wrong and how to write it instead.
        message: String,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |line: &Option<usize>| line.map(|l| format!(" (line {l})")).unwrap_or_default();
        match self {
            PolicyError::Syntax {
                origin,
                line,
                message,
            } => write!(
                f,
                "policy {origin}{} is not valid TOML: {message}; fix the syntax and start infra again",
                at(line)
            ),
            PolicyError::UnknownKey {
                origin,
                section,
                key,
                line,
                allowed,
            } => {
                let allowed = if allowed.is_empty() {
                    "none (the section's presence is the grant)".to_string()
                } else {
                    allowed.join(", ")
                };
                write!(
                    f,
                    "unknown key '{key}' in {section} of {origin}{}; allowed keys: {allowed}",
                    at(line)
                )
            }
            PolicyError::Invalid {
                origin,
                place,
                line,
                message,
            } => write!(f, "{place} of {origin}{}: {message}", at(line)),
        }
    }
}

impl std::error::Error for PolicyError {}

/// Resource limits for plugin calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// Default per-call deadline.
    pub timeout_ms: u64,
    /// A call's own `timeout_ms` is clamped to this.
    pub max_timeout_ms: u64,
    /// Linear memory per plugin instance.
    pub memory_mib: u64,
    /// Most bytes a plugin may return from one call.
    pub output_bytes: u64,
    /// Results larger than this are spilled to an artifact with a preview.
    pub inline_bytes: u64,
    /// Most bytes of one response body or output stream a capability keeps in host memory; an
    /// agent's `max_bytes` / `max_output` is clamped to it.
    pub capture_bytes: u64,
    /// Most bytes of one stored artifact (a download, a spilled stream, a COPY); an agent's size
    /// argument is clamped to it.
    pub artifact_bytes: u64,
    /// Most bytes the artifact store may hold; oldest unpinned artifacts go first.
    pub artifacts_quota_bytes: u64,
    /// Most artifacts the store may hold; oldest unpinned artifacts go first.
    pub artifacts_quota_count: u64,
    /// Most tool calls one server runs at once; more are refused as busy.
    pub calls_in_flight: u64,
    /// Most calls of one plugin that run at once; more are refused as busy.
    pub plugin_calls_in_flight: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout_ms: 30_000,
            max_timeout_ms: 600_000,
            memory_mib: 64,
            output_bytes: 4 * 1024 * 1024,
            inline_bytes: 64 * 1024,
            capture_bytes: 16 * 1024 * 1024,
            artifact_bytes: 2 * 1024 * 1024 * 1024,
            artifacts_quota_bytes: 10 * 1024 * 1024 * 1024,
            artifacts_quota_count: 10_000,
            calls_in_flight: 64,
            plugin_calls_in_flight: 32,
        }
    }
}

/// What one plugin is granted. Absent capability sections grant nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginPolicy {
    /// The plugin's name, as in its `plugin.toml`.
    pub name: String,
    /// Lowercase hex sha256 the plugin's wasm must have, when pinned.
    pub sha256: Option<String>,
    /// Per-plugin override of [`Limits::timeout_ms`].
    pub timeout_ms: Option<u64>,
    /// Per-plugin override of [`Limits::memory_mib`].
    pub memory_mib: Option<u64>,
    /// `[plugin.<name>.http]`.
    pub http: Option<HttpGrant>,
    /// `[plugin.<name>.artifacts]` is present.
    pub artifacts: bool,
    /// `[plugin.<name>.log]` is present.
    pub log: bool,
    /// `[plugin.<name>.secrets]`.
    pub secrets: Option<SecretsGrant>,
    /// `[plugin.<name>.ssh]`.
    pub ssh: Option<SshGrant>,
    /// `[plugin.<name>.postgres]`.
    pub postgres: Option<PostgresGrant>,
    /// `[plugin.<name>.fs]`.
    pub fs: Option<FsGrant>,
    /// `[plugin.<name>.exec]`.
    pub exec: Option<ExecGrant>,
}

/// `[plugin.<name>.http]`: which hosts and profiles the plugin may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpGrant {
    /// Hosts the plugin may reach.
    pub hosts: Vec<HostPattern>,
    /// Hosts it may never reach, checked on names and on every resolved address.
    pub deny_hosts: Vec<HostPattern>,
    /// `profiles.json` entries it may name.
    pub profiles: Vec<Glob>,
}

/// `[plugin.<name>.secrets]`: secret names the plugin may read (only with secret export on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsGrant {
    /// Secret names.
    pub names: Vec<Glob>,
}

/// `[plugin.<name>.ssh]`: the `targets.json` entries the plugin may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshGrant {
    /// Target names.
    pub targets: Vec<Glob>,
}

/// `[plugin.<name>.postgres]`: Postgres profiles, and whether every session is read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresGrant {
    /// Profile names.
    pub profiles: Vec<Glob>,
    /// Forces read-only transactions whatever the call asks (default `true`).
    pub read_only: bool,
}

/// `[plugin.<name>.fs]`: named roots the plugin may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsGrant {
    /// Root names.
    pub roots: Vec<Glob>,
    /// Only reads (default `true`).
    pub read_only: bool,
    /// `unsafe = true`: any path, but only while `INFRA_UNSAFE_LOCAL=1`.
    pub allow_unsafe: bool,
}

/// `[plugin.<name>.exec]`: programs the plugin may run, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecGrant {
    /// Program names.
    pub programs: Vec<Glob>,
    /// Root names a program's working directory may lie in.
    pub roots: Vec<Glob>,
    /// `unsafe = true`: any program, but only while `INFRA_UNSAFE_LOCAL=1`.
    pub allow_unsafe: bool,
}

/// A name pattern: `*` matches any run of characters, `?` any one; everything else is literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    /// Parses a pattern; refuses empty ones and whitespace, which are typos in a name.
    pub fn parse(text: &str) -> Result<Glob, String> {
        if text.is_empty() {
            return Err("an empty name matches nothing; remove it or write \"*\"".into());
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "'{text}' contains whitespace or control characters; names have none"
            ));
        }
        Ok(Glob(text.to_string()))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `name` matches, case-sensitively (profile and target names are JSON keys).
    pub fn matches(&self, name: &str) -> bool {
        glob_match(self.0.as_bytes(), name.as_bytes())
    }
}

/// Iterative wildcard match with single-star backtracking: linear in practice and never
/// exponential, so a hostile name cannot stall a check.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// A host pattern from `hosts` / `deny_hosts`, parsed and normalised at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    text: String,
    host: HostMatch,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Name(String),
    Subdomains(String),
    Ip(IpAddr),
    Net(IpNet),
}

/// A host to check, after the same normalisation the patterns went through.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Name(String),
    Ip(IpAddr),
}

impl HostPattern {
    /// Parses `*`, `name`, `*.name`, an IP, a CIDR, each with an optional `:port` or `:*`
    /// (IPv6 in brackets when a port follows).
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let (host, port) = split_host_port(text)?;
        let port = match port {
            None | Some("*") => None,
            Some(p) => Some(parse_port(p)?),
        };
        let host = if host == "*" {
            HostMatch::Any
        } else if host.contains('/') {
            let net: IpNet = host.parse().map_err(|_| {
                format!("'{host}' is not a CIDR block; write it like 10.0.0.0/8 or fd00::/8")
            })?;
            HostMatch::Net(canonical_net(net.trunc()))
        } else if let Some(rest) = host.strip_prefix("*.") {
            match normalize_host(rest)? {
                Target::Name(name) => HostMatch::Subdomains(name),
                Target::Ip(_) => {
                    return Err(format!(
                        "'*.{rest}' puts a wildcard on an IP address; use a CIDR such as 10.0.0.0/8"
                    ));
                }
            }
        } else if host.contains('*') {
            return Err(format!(
                "'{host}' has a '*' inside a name; '*' may stand alone or lead as '*.example.com'"
            ));
        } else {
            match normalize_host(host)? {
                Target::Name(name) => HostMatch::Name(name),
                Target::Ip(ip) => HostMatch::Ip(ip),
            }
        };
        Ok(HostPattern {
            text: text.to_string(),
            host,
            port,
        })
    }

    /// The pattern as written in the policy.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn matches_target(&self, target: &Target, port: u16) -> bool {
        self.port.is_none_or(|p| p == port) && self.matches_host(target)
    }

    fn matches_host(&self, target: &Target) -> bool {
        match (&self.host, target) {
            (HostMatch::Any, _) => true,
            (HostMatch::Name(n), Target::Name(t)) => n == t,
            (HostMatch::Subdomains(s), Target::Name(t)) => t
                .strip_suffix(s.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            (HostMatch::Ip(a), Target::Ip(ip)) => ip_forms(*ip).contains(a),
            (HostMatch::Net(net), Target::Ip(ip)) => ip_forms(*ip).iter().any(|f| net.contains(f)),
            _ => false,
        }
    }

    /// Whether this pattern names a specific address or network (and so applies to resolutions).
    fn is_address(&self) -> bool {
        matches!(self.host, HostMatch::Ip(_) | HostMatch::Net(_))
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn split_host_port(text: &str) -> Result<(&str, Option<&str>), String> {
    if text.is_empty() {
        return Err("an empty host pattern matches nothing; remove it or write \"*\"".into());
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("'{text}' opens '[' without closing ']'; write [::1]:8080"))?;
        if inside.parse::<Ipv6Addr>().is_err() && inside.parse::<ipnet::Ipv6Net>().is_err() {
            return Err(format!(
                "'{inside}' inside brackets is not an IPv6 address or block; write [::1] or [fd00::/8]"
            ));
        }
        return match after {
            "" => Ok((inside, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((inside, Some(port))),
                None => Err(format!(
                    "'{text}' has '{after}' after ']'; only ':port' or ':*' may follow"
                )),
            },
        };
    }
    match text.matches(':').count() {
        0 => Ok((text, None)),
        // More than one colon can only be a bare IPv6 address or block, which takes no port.
        1 => {
            let (host, port) = text.split_once(':').unwrap_or((text, ""));
            Ok((host, Some(port)))
        }
        _ => Ok((text, None)),
    }
}

fn parse_port(port: &str) -> Result<u16, String> {
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!(
            "port '{port}' is not a port; write a number from 1 to 65535, or '*' for any port"
        )),
    }
}

/// Normalises a host the way a URL parser does, so the policy and the request agree on what
/// a host is: lowercase, trailing dot dropped, IDNA applied, and IPv4 in any spelling
/// (`2852039166`, `0xa9.0xfe.0xa9.0xfe`, `%31...`) turned into an address.
fn normalize_host(host: &str) -> Result<Target, String> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(Target::Ip(canonical_ip(ip)));
    }
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    if trimmed.is_empty() {
        return Err("an empty host".into());
    }
    match url::Host::parse(trimmed) {
        Ok(url::Host::Domain(name)) => {
            let name = name.to_ascii_lowercase();
            let label_ok = |l: &str| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            };
            if name.len() > 253 || !name.split('.').all(label_ok) {
                return Err(format!(
                    "'{host}' is not a host name; names are dot-separated labels of letters, digits, '-' and '_'"
                ));
            }
            Ok(Target::Name(name))
        }
        Ok(url::Host::Ipv4(ip)) => Ok(Target::Ip(IpAddr::V4(ip))),
        Ok(url::Host::Ipv6(ip)) => Ok(Target::Ip(canonical_ip(IpAddr::V6(ip)))),
        Err(e) => Err(format!("'{host}' is not a host name ({e})")),
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) reaches the IPv4 host, so it is that host.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(IpNet::V4)
                .unwrap_or(net),
            None => net,
        },
        other => other,
    }
}

/// Every address an address may stand for on the wire: itself (canonical), and the IPv4
/// address a translation or tunnel mechanism would carry it to — the NAT64 prefixes
/// `64:ff9b::/96` (RFC 6052) and `64:ff9b:1::/96` (RFC 8215, local use), 6to4 `2002:a.b.c.d::/48`
/// (RFC 3056) and the deprecated IPv4-compatible `::a.b.c.d` — so a deny of 169.254.169.254 also
/// covers `64:ff9b::a9fe:a9fe`, `2002:a9fe:a9fe::` and `::a9fe:a9fe`.
fn ip_forms(ip: IpAddr) -> Vec<IpAddr> {
    let ip = canonical_ip(ip);
    let mut forms = vec![ip];
    if let IpAddr::V6(v6) = ip {
        let s = v6.segments();
        let o = v6.octets();
        let low = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
        if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || s[..6] == [0x64, 0xff9b, 1, 0, 0, 0] {
            forms.push(IpAddr::V4(low));
        }
        if s[0] == 0x2002 {
            forms.push(IpAddr::V4(Ipv4Addr::new(o[2], o[3], o[4], o[5])));
        }
        // `::` and `::1` are IPv6's own unspecified and loopback addresses, not IPv4-compatible
        // ones: only an embedded address outside 0.0.0.0/8 is read as IPv4.
        if s[..6] == [0; 6] && o[12] != 0 {
            forms.push(IpAddr::V4(low));
        }
    }
    forms
}

/// Whether `ip`, in any of its forms, is an unspecified address (`0.0.0.0/8`, `::`). Such an
/// address names no host, yet the kernel turns a connection to it into one to this machine
/// (Linux picks a local address, typically 127.0.0.1): it would walk past every loopback entry
/// of `deny_hosts`.
fn is_unspecified(ip: IpAddr) -> bool {
    ip_forms(ip).iter().any(|f| match f {
        IpAddr::V4(v4) => v4.octets()[0] == 0,
        IpAddr::V6(v6) => v6.is_unspecified(),
    })
}

/// The denial of an unspecified address, whatever the policy grants.
fn unspecified_denied(shown: &str) -> Decision {
    Decision::Deny(format!(
        "policy: {shown} is an unspecified address (0.0.0.0/8 or ::): it names no host, and a \
         connection to it reaches this machine past any loopback entry of deny_hosts, so it is \
         always refused; write 127.0.0.1 or [::1] if you mean this machine (and the policy grants it)"
    ))
}

fn host_port(target: &Target, port: u16) -> String {
    match target {
        Target::Name(n) => format!("{n}:{port}"),
        Target::Ip(IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
        Target::Ip(ip) => format!("{ip}:{port}"),
    }
}

// ---- the file format, as serde sees it; every struct refuses unknown keys ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    limits: Option<RawLimits>,
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    #[serde(default)]
    plugin: BTreeMap<String, RawPlugin>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    timeout_ms: Option<u64>,
    max_timeout_ms: Option<u64>,
    memory_mib: Option<u64>,
    output_bytes: Option<u64>,
    inline_bytes: Option<u64>,
    capture_bytes: Option<u64>,
    artifact_bytes: Option<u64>,
    artifacts_quota_bytes: Option<u64>,
    artifacts_quota_count: Option<u64>,
    calls_in_flight: Option<u64>,
    plugin_calls_in_flight: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    sha256: Option<String>,
    timeout_ms: Option<u64>,
    memory_mib: Option<u64>,
    http: Option<RawHttp>,
    artifacts: Option<RawPresence>,
    log: Option<RawPresence>,
    secrets: Option<RawSecrets>,
    ssh: Option<RawSsh>,
    postgres: Option<RawPostgres>,
    fs: Option<RawFs>,
    exec: Option<RawExec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    deny_hosts: Vec<String>,
    #[serde(default)]
    profiles: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPresence {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecrets {
    #[serde(default)]
    names: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSsh {
    #[serde(default)]
    targets: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPostgres {
    #[serde(default)]
    profiles: Vec<String>,
    read_only: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFs {
    #[serde(default)]
    roots: Vec<String>,
    read_only: Option<bool>,
    #[serde(rename = "unsafe")]
    allow_unsafe: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExec {
    #[serde(default)]
    programs: Vec<String>,
    #[serde(default)]
    roots: Vec<String>,
    #[serde(rename = "unsafe")]
    allow_unsafe: Option<bool>,
}

/// A loaded, validated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    origin: String,
    limits: Limits,
    /// `[secrets]`: logical secret names → references, written by the operator.
    secrets: BTreeMap<String, SecretRef>,
    plugins: BTreeMap<String, PluginPolicy>,
}

impl Policy {
    /// Parses and validates a policy; `origin` (a path, or [`EMBEDDED_ORIGIN`]) names it in
    /// messages.
    pub fn load(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let doc = DeTable::parse(text).map_err(|e| PolicyError::Syntax {
            origin: origin.to_string(),
            line: e.span().map(|s| line_at(text, s.start)),
            message: e.message().to_string(),
        })?;
        let raw: RawPolicy =
            toml::from_str(text).map_err(|e| serde_error(&e, doc.get_ref(), text, origin))?;
        Loader {
            text,
            origin,
            doc: doc.get_ref(),
        }
        .build(raw)
    }

    /// The policy compiled into the binary.
    pub fn embedded_default() -> Result<Policy, PolicyError> {
        Policy::load(DEFAULT_POLICY, EMBEDDED_ORIGIN)
    }

    /// Where the policy came from: a file path or [`EMBEDDED_ORIGIN`].
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The global limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The grants of one plugin, if the policy has a section for it.
    pub fn plugin(&self, name: &str) -> Option<&PluginPolicy> {
        self.plugins.get(name)
    }

    /// The names of every plugin the policy has a section for, sorted.
    pub fn plugin_names(&self) -> impl Iterator<Item = &str> {
        self.plugins.keys().map(String::as_str)
    }

    /// The sha256 a plugin's wasm must have, if the policy pins it.
    pub fn sha256_pin(&self, plugin: &str) -> Option<&str> {
        self.plugin(plugin)?.sha256.as_deref()
    }

    /// The deadline of one call: the call's own `timeout_ms`, else the plugin's, else the
    /// default, clamped to `1..=max_timeout_ms`.
    pub fn call_timeout_ms(&self, plugin: Option<&str>, requested: Option<u64>) -> u64 {
        let plugin_default = plugin.and_then(|p| self.plugin(p)?.timeout_ms);
        requested
            .or(plugin_default)
            .unwrap_or(self.limits.timeout_ms)
            .clamp(1, self.limits.max_timeout_ms)
    }

    /// The plugin's default deadline: its own `timeout_ms`, else `limits.timeout_ms`.
    pub fn timeout_ms(&self, plugin: &str) -> u64 {
        self.plugin(plugin)
            .and_then(|p| p.timeout_ms)
            .unwrap_or(self.limits.timeout_ms)
    }

    /// The linear memory limit for one instance of the plugin, in MiB (a `usize`, because the
    /// runtime sizes memory in host bytes; the value is at most 4096).
    pub fn memory_mib(&self, plugin: &str) -> usize {
        let mib = self
            .plugin(plugin)
            .and_then(|p| p.memory_mib)
            .unwrap_or(self.limits.memory_mib);
        // Load-time validation caps every value at MAX_MEMORY_MIB, so this never saturates.
        usize::try_from(mib).unwrap_or(usize::MAX)
    }

    /// Whether the plugin has the capability's section at all (`artifacts`, `log`, ...).
    pub fn check_cap(&self, plugin: &str, cap: &str) -> Decision {
        let Some(p) = self.plugin(plugin) else {
            return self.deny(format!(
                "plugin '{plugin}' has no grant for capability '{cap}'; add [plugin.{plugin}.{cap}] to"
            ));
        };
        let present = match cap {
            "http" => p.http.is_some(),
            "ssh" => p.ssh.is_some(),
            "postgres" => p.postgres.is_some(),
            "fs" => p.fs.is_some(),
            "exec" => p.exec.is_some(),
            "secrets" => p.secrets.is_some(),
            "artifacts" => p.artifacts,
            "log" => p.log,
            other => {
                return Decision::Deny(format!(
                    "policy: '{other}' is not a capability; capabilities are {}",
                    CAPS.join(", ")
                ));
            }
        };
        if present {
            Decision::Allow
        } else {
            self.deny(format!(
                "plugin '{plugin}' has no grant for capability '{cap}'; add [plugin.{plugin}.{cap}] to"
            ))
        }
    }

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

    /// Whether the plugin may name `profile` through capability `cap` (`http` or `postgres`).
    pub fn check_profile(&self, plugin: &str, cap: &str, profile: &str) -> Decision {
        let p = self.plugin(plugin);
        let globs = match cap {
            "http" => p.and_then(|p| p.http.as_ref()).map(|g| &g.profiles),
            "postgres" => p.and_then(|p| p.postgres.as_ref()).map(|g| &g.profiles),
            other => {
                return Decision::Deny(format!(
                    "policy: capability '{other}' takes no profiles; profiles belong to http and postgres"
                ));
            }
        };
        self.check_names(
            globs,
            profile,
            &format!("plugin '{plugin}' has no grant for {cap} profile '{profile}'; add it under [plugin.{plugin}.{cap}] profiles in"),
        )
    }

    /// Whether the policy grants the plugin secret `name`. A grant alone releases nothing: the
    /// secrets capability must also require `INFRA_ALLOW_SECRET_EXPORT=1`, which it checks
    /// first, because flags are enforced in `caps` whatever the policy says.
    /// The reference the operator mapped the logical secret `name` to under `[secrets]`.
    pub fn secret_ref(&self, name: &str) -> Option<&SecretRef> {
        self.secrets.get(name)
    }

    /// May `plugin` read the secret named `name` (a logical name of `[secrets]`)? The caller — the
    /// secrets capability — must also require `INFRA_ALLOW_SECRET_EXPORT=1`.
    pub fn check_secret(&self, plugin: &str, name: &str) -> Decision {
        if let Err(why) = check_secret_name(name) {
            return Decision::Deny(format!("policy: secret name '{name}': {why}"));
        }
        let globs = self
            .plugin(plugin)
            .and_then(|p| p.secrets.as_ref())
            .map(|g| &g.names);
        self.check_names(
            globs,
            name,
            &format!("plugin '{plugin}' has no grant for secret '{name}'; add it under [plugin.{plugin}.secrets] names in"),
        )
    }

    /// Whether the plugin may use SSH target `target` of `targets.json`.
    pub fn check_ssh_target(&self, plugin: &str, target: &str) -> Decision {
        let globs = self
            .plugin(plugin)
            .and_then(|p| p.ssh.as_ref())
            .map(|g| &g.targets);
        self.check_names(
            globs,
            target,
            &format!("plugin '{plugin}' has no grant for ssh target '{target}'; add it under [plugin.{plugin}.ssh] targets in"),
        )
    }

    /// Whether every Postgres session of the plugin must be read-only (true without a grant).
    pub fn postgres_read_only(&self, plugin: &str) -> bool {
        self.plugin(plugin)
            .and_then(|p| p.postgres.as_ref())
            .is_none_or(|g| g.read_only)
    }

    /// Whether the plugin may use fs root `root`.
    pub fn check_fs_root(&self, plugin: &str, root: &str) -> Decision {
        let globs = self
            .plugin(plugin)
            .and_then(|p| p.fs.as_ref())
            .map(|g| &g.roots);
        self.check_names(
            globs,
            root,
            &format!("plugin '{plugin}' has no grant for fs root '{root}'; add it under [plugin.{plugin}.fs] roots in"),
        )
    }

    /// Whether the plugin's fs access is read-only (true without a grant).
    pub fn fs_read_only(&self, plugin: &str) -> bool {
        self.plugin(plugin)
            .and_then(|p| p.fs.as_ref())
            .is_none_or(|g| g.read_only)
    }

    /// Whether the plugin's fs access may leave its roots: `unsafe = true` and the flag.
    pub fn fs_unsafe(&self, plugin: &str, flags: &Flags) -> bool {
        flags.unsafe_local
            && self
                .plugin(plugin)
                .and_then(|p| p.fs.as_ref())
                .is_some_and(|g| g.allow_unsafe)
    }

    /// Whether the plugin may run `program`: listed in `programs`, or `unsafe = true` with
    /// `INFRA_UNSAFE_LOCAL=1`.
    pub fn check_exec_program(&self, plugin: &str, program: &str, flags: &Flags) -> Decision {
        let grant = self.plugin(plugin).and_then(|p| p.exec.as_ref());
        let decision = self.check_names(
            grant.map(|g| &g.programs),
            program,
            &format!("plugin '{plugin}' has no grant for program '{program}'; add it under [plugin.{plugin}.exec] programs in"),
        );
        if !decision.is_allowed() && self.exec_unsafe(plugin, flags) {
            return Decision::Allow;
        }
        decision
    }

    /// Whether the plugin may run a program with its working directory in root `root`.
    pub fn check_exec_root(&self, plugin: &str, root: &str) -> Decision {
        let globs = self
            .plugin(plugin)
            .and_then(|p| p.exec.as_ref())
            .map(|g| &g.roots);
        self.check_names(
            globs,
            root,
            &format!("plugin '{plugin}' has no grant for exec root '{root}'; add it under [plugin.{plugin}.exec] roots in"),
        )
    }

    /// Whether the plugin's exec may leave its allowlists: `unsafe = true` and the flag.
    pub fn exec_unsafe(&self, plugin: &str, flags: &Flags) -> bool {
        flags.unsafe_local
            && self
                .plugin(plugin)
                .and_then(|p| p.exec.as_ref())
                .is_some_and(|g| g.allow_unsafe)
    }

    /// What the policy grants the plugin, as JSON for `infra plugins` and reviewers.
    pub fn grants_summary(&self, plugin: &str) -> Value {
        let limits = json!({
            "timeout_ms": self.call_timeout_ms(Some(plugin), None),
            "max_timeout_ms": self.limits.max_timeout_ms,
            "memory_mib": self.memory_mib(plugin),
        });
        let Some(p) = self.plugin(plugin) else {
            return json!({
                "plugin": plugin,
                "policy": self.origin,
                "granted": false,
                "sha256_pin": null,
                "limits": limits,
                "caps": {},
                "advice": format!(
                    "the policy grants plugin '{plugin}' nothing; add [plugin.{plugin}.<capability>] sections to {}",
                    self.edit_target()
                ),
            });
        };
        fn strs(globs: &[Glob]) -> Vec<&str> {
            globs.iter().map(Glob::as_str).collect()
        }
        fn hosts(hs: &[HostPattern]) -> Vec<&str> {
            hs.iter().map(HostPattern::as_str).collect()
        }
        let mut caps = serde_json::Map::new();
        if let Some(g) = &p.http {
            caps.insert(
                "http".into(),
                json!({"hosts": hosts(&g.hosts), "deny_hosts": hosts(&g.deny_hosts), "profiles": strs(&g.profiles)}),
            );
        }
        if p.artifacts {
            caps.insert("artifacts".into(), json!({}));
        }
        if p.log {
            caps.insert("log".into(), json!({}));
        }
        if let Some(g) = &p.secrets {
            caps.insert(
                "secrets".into(),
                json!({"names": strs(&g.names), "requires_flag": "INFRA_ALLOW_SECRET_EXPORT"}),
            );
        }
        if let Some(g) = &p.ssh {
            caps.insert("ssh".into(), json!({"targets": strs(&g.targets)}));
        }
        if let Some(g) = &p.postgres {
            caps.insert(
                "postgres".into(),
                json!({"profiles": strs(&g.profiles), "read_only": g.read_only}),
            );
        }
        if let Some(g) = &p.fs {
            caps.insert(
                "fs".into(),
                json!({"roots": strs(&g.roots), "read_only": g.read_only, "unsafe": g.allow_unsafe,
                       "unsafe_requires_flag": "INFRA_UNSAFE_LOCAL"}),
            );
        }
        if let Some(g) = &p.exec {
            caps.insert(
                "exec".into(),
                json!({"programs": strs(&g.programs), "roots": strs(&g.roots), "unsafe": g.allow_unsafe,
                       "unsafe_requires_flag": "INFRA_UNSAFE_LOCAL"}),
            );
        }
        json!({
            "plugin": plugin,
            "policy": self.origin,
            "granted": !caps.is_empty(),
            "sha256_pin": p.sha256,
            "limits": limits,
            "caps": caps,
        })
    }

    fn check_names(&self, globs: Option<&Vec<Glob>>, name: &str, advice: &str) -> Decision {
        match globs {
            Some(globs) if globs.iter().any(|g| g.matches(name)) => Decision::Allow,
            _ => self.deny(advice.to_string()),
        }
    }

    /// Builds a denial whose advice ends with where to make the change ("... in"/"... to" + it).
    fn deny(&self, advice: String) -> Decision {
        Decision::Deny(format!("policy: {advice} {}", self.edit_target()))
    }

    /// The file an operator edits to change this policy. The embedded default cannot be edited,
    /// so advice then points at the state directory's policy.toml, which replaces it.
    fn edit_target(&self) -> String {
        if self.origin == EMBEDDED_ORIGIN {
            "policy.toml in the state directory (it replaces the embedded default; start from a copy of policies/default.toml)".to_string()
        } else {
            self.origin.clone()
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

/// Turns raw serde values into checked grants, naming file, section and line on any error.
struct Loader<'a> {
    text: &'a str,
    origin: &'a str,
    doc: &'a DeTable<'a>,
}

impl Loader<'_> {
    fn build(&self, raw: RawPolicy) -> Result<Policy, PolicyError> {
        let limits = self.limits(raw.limits)?;
        let secrets = self.secret_map(raw.secrets)?;
        let mut plugins = BTreeMap::new();
        for (name, rp) in raw.plugin {
            let p = self.plugin(&name, rp, &limits)?;
            plugins.insert(name, p);
        }
        Ok(Policy {
            origin: self.origin.to_string(),
            limits,
            secrets,
            plugins,
        })
    }

    fn invalid(
        &self,
        path: &[&str],
        key: Option<&str>,
        index: Option<usize>,
        message: String,
    ) -> PolicyError {
        let section = section_name(path);
        let place = match key {
            Some(k) => format!("{k} in {section}"),
            None => section,
        };
        let mut full: Vec<&str> = path.to_vec();
        full.extend(key);
        PolicyError::Invalid {
            origin: self.origin.to_string(),
            place,
            line: locate(self.doc, &full, index).map(|s| line_at(self.text, s.start)),
            message,
        }
    }

    fn limits(&self, raw: Option<RawLimits>) -> Result<Limits, PolicyError> {
        let d = Limits::default();
        let Some(raw) = raw else { return Ok(d) };
        let l = Limits {
            timeout_ms: raw.timeout_ms.unwrap_or(d.timeout_ms),
            max_timeout_ms: raw.max_timeout_ms.unwrap_or(d.max_timeout_ms),
            memory_mib: raw.memory_mib.unwrap_or(d.memory_mib),
            output_bytes: raw.output_bytes.unwrap_or(d.output_bytes),
            inline_bytes: raw.inline_bytes.unwrap_or(d.inline_bytes),
            capture_bytes: raw.capture_bytes.unwrap_or(d.capture_bytes),
            artifact_bytes: raw.artifact_bytes.unwrap_or(d.artifact_bytes),
            artifacts_quota_bytes: raw.artifacts_quota_bytes.unwrap_or(d.artifacts_quota_bytes),
            artifacts_quota_count: raw.artifacts_quota_count.unwrap_or(d.artifacts_quota_count),
            calls_in_flight: raw.calls_in_flight.unwrap_or(d.calls_in_flight),
            plugin_calls_in_flight: raw
                .plugin_calls_in_flight
                .unwrap_or(d.plugin_calls_in_flight),
        };
        let p = ["limits"];
        for (key, v) in [
            ("timeout_ms", l.timeout_ms),
            ("max_timeout_ms", l.max_timeout_ms),
            ("memory_mib", l.memory_mib),
            ("output_bytes", l.output_bytes),
            ("inline_bytes", l.inline_bytes),
            ("capture_bytes", l.capture_bytes),
            ("artifact_bytes", l.artifact_bytes),
            ("artifacts_quota_bytes", l.artifacts_quota_bytes),
            ("artifacts_quota_count", l.artifacts_quota_count),
            ("calls_in_flight", l.calls_in_flight),
            ("plugin_calls_in_flight", l.plugin_calls_in_flight),
        ] {
            if v == 0 {
                return Err(self.invalid(&p, Some(key), None, "0 would make every call fail; give a positive number or remove the key for the default".into()));
            }
        }
        if l.timeout_ms > l.max_timeout_ms {
            return Err(self.invalid(
                &p,
                Some("timeout_ms"),
                None,
                format!(
                    "{} exceeds max_timeout_ms = {}; lower it or raise max_timeout_ms",
                    l.timeout_ms, l.max_timeout_ms
                ),
            ));
        }
        if l.memory_mib > MAX_MEMORY_MIB {
            return Err(self.invalid(&p, Some("memory_mib"), None, format!(
                "{} MiB is more than a wasm32 instance can address; give at most {MAX_MEMORY_MIB}",
                l.memory_mib
            )));
        }
        if l.inline_bytes > l.output_bytes {
            return Err(self.invalid(&p, Some("inline_bytes"), None, format!(
                "{} exceeds output_bytes = {}, so nothing could ever spill to an artifact; keep inline_bytes at or below output_bytes",
                l.inline_bytes, l.output_bytes
            )));
        }
        Ok(l)
    }

    fn plugin(
        &self,
        name: &str,
        raw: RawPlugin,
        limits: &Limits,
    ) -> Result<PluginPolicy, PolicyError> {
        let path = ["plugin", name];
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(self.invalid(&path, None, None, format!(
                "'{name}' is not a plugin name; plugin names are letters, digits, '-' and '_', as in plugin.toml"
            )));
        }
        let sha256 = match raw.sha256 {
            None => None,
            Some(s) => {
                let hex = s.to_ascii_lowercase();
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(self.invalid(&path, Some("sha256"), None, format!(
                        "'{s}' is not a sha256; give the 64 hex digits `infra plugins` shows for the binary"
                    )));
                }
                Some(hex)
            }
        };
        if let Some(t) = raw.timeout_ms
            && (t == 0 || t > limits.max_timeout_ms)
        {
            return Err(self.invalid(
                &path,
                Some("timeout_ms"),
                None,
                format!(
                    "{t} is outside 1..={} (limits.max_timeout_ms); pick a value in that range",
                    limits.max_timeout_ms
                ),
            ));
        }
        if let Some(m) = raw.memory_mib
            && (m == 0 || m > MAX_MEMORY_MIB)
        {
            return Err(self.invalid(
                &path,
                Some("memory_mib"),
                None,
                format!("{m} is outside 1..={MAX_MEMORY_MIB} MiB; pick a value in that range"),
            ));
        }
        let http = match raw.http {
            None => None,
            Some(h) => {
                let sec = ["plugin", name, "http"];
                let hosts = self.hosts(&sec, "hosts", &h.hosts)?;
                let deny_hosts = self.hosts(&sec, "deny_hosts", &h.deny_hosts)?;
                // The resolved-address check cannot see the port, so a port on a deny entry
                // would block less (or more) than it says; refuse it rather than guess.
                if let Some((i, d)) = deny_hosts
                    .iter()
                    .enumerate()
                    .find(|(_, d)| d.port.is_some())
                {
                    return Err(self.invalid(&sec, Some("deny_hosts"), Some(i), format!(
                        "'{d}' has a port, but deny_hosts blocks a host on every port; drop the ':port'"
                    )));
                }
                Some(HttpGrant {
                    hosts,
                    deny_hosts,
                    profiles: self.globs(&sec, "profiles", &h.profiles)?,
                })
            }
        };
        let secrets = match raw.secrets {
            None => None,
            Some(s) => Some(SecretsGrant {
                names: self.secret_globs(name, &s.names)?,
            }),
        };
        let ssh = match raw.ssh {
            None => None,
            Some(s) => Some(SshGrant {
                targets: self.globs(&["plugin", name, "ssh"], "targets", &s.targets)?,
            }),
        };
        let postgres = match raw.postgres {
            None => None,
            Some(s) => Some(PostgresGrant {
                profiles: self.globs(&["plugin", name, "postgres"], "profiles", &s.profiles)?,
                read_only: s.read_only.unwrap_or(true),
            }),
        };
        let fs = match raw.fs {
            None => None,
            Some(s) => Some(FsGrant {
                roots: self.globs(&["plugin", name, "fs"], "roots", &s.roots)?,
                read_only: s.read_only.unwrap_or(true),
                allow_unsafe: s.allow_unsafe.unwrap_or(false),
            }),
        };
        let exec = match raw.exec {
            None => None,
            Some(s) => {
                let sec = ["plugin", name, "exec"];
                Some(ExecGrant {
                    programs: self.globs(&sec, "programs", &s.programs)?,
                    roots: self.globs(&sec, "roots", &s.roots)?,
                    allow_unsafe: s.allow_unsafe.unwrap_or(false),
                })
            }
        };
        Ok(PluginPolicy {
            name: name.to_string(),
            sha256,
            timeout_ms: raw.timeout_ms,
            memory_mib: raw.memory_mib,
            http,
            artifacts: raw.artifacts.is_some(),
            log: raw.log.is_some(),
            secrets,
            ssh,
            postgres,
            fs,
            exec,
        })
    }

    fn hosts(
        &self,
        sec: &[&str],
        key: &str,
        raw: &[String],
    ) -> Result<Vec<HostPattern>, PolicyError> {
        raw.iter()
            .enumerate()
            .map(|(i, h)| {
                HostPattern::parse(h).map_err(|why| {
                    self.invalid(
                        sec,
                        Some(key),
                        Some(i),
                        format!("host pattern '{h}' is malformed: {why}"),
                    )
                })
            })
            .collect()
    }

    /// `[secrets]`: every name a logical name, every reference `env:VAR` or an absolute
    /// `file:` path with no `.`/`..` components (a grant must mean one file, not a family of
    /// paths that walk out of a directory).
    fn secret_map(
        &self,
        raw: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, SecretRef>, PolicyError> {
        let mut map = BTreeMap::new();
        for (name, reference) in raw {
            if let Err(why) = check_secret_name(&name) {
                return Err(self.invalid(&["secrets"], Some(&name), None, why));
            }
            let r = SecretRef::try_from(reference)
                .and_then(|r| r.canonical())
                .map_err(|why| self.invalid(&["secrets"], Some(&name), None, why))?;
            map.insert(name, r);
        }
        Ok(map)
    }

    /// Grants of `[plugin.<name>.secrets] names`: globs over logical names, never references.
    fn secret_globs(&self, plugin: &str, raw: &[String]) -> Result<Vec<Glob>, PolicyError> {
        let sec = ["plugin", plugin, "secrets"];
        for (i, g) in raw.iter().enumerate() {
            if g.contains([':', '/']) {
                return Err(self.invalid(&sec, Some("names"), Some(i), format!(
                    "'{g}' looks like a reference; grant logical names, and map each to its reference under [secrets] (e.g. acme-key = \"file:/run/secrets/acme\")"
                )));
            }
        }
        self.globs(&sec, "names", raw)
    }

    fn globs(&self, sec: &[&str], key: &str, raw: &[String]) -> Result<Vec<Glob>, PolicyError> {
        raw.iter()
            .enumerate()
            .map(|(i, g)| {
                Glob::parse(g).map_err(|why| {
                    self.invalid(
                        sec,
                        Some(key),
                        Some(i),
                        format!("name pattern is malformed: {why}"),
                    )
                })
            })
            .collect()
    }
}

/// A logical secret name: letters, digits, `.`, `_`, `-`, starting with a letter or digit, at
/// most 128 bytes — so it can never be read as a path or a reference.
pub fn check_secret_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err("a secret name is a logical name (letters, digits, '.', '_', '-'; starts with a letter or digit; at most 128 bytes) that the operator maps to a reference under [secrets]".into())
    }
}

fn section_name(path: &[&str]) -> String {
    if path.is_empty() {
        "the top level".to_string()
    } else {
        format!("[{}]", path.join("."))
    }
}

fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The span of the value at `path` (and array element `index`) in the parsed document.
fn locate(doc: &DeTable<'_>, path: &[&str], index: Option<usize>) -> Option<Range<usize>> {
    let (first, rest) = path.split_first()?;
    let (_, value) = doc.iter().find(|(k, _)| k.get_ref().as_ref() == *first)?;
    match (rest.is_empty(), value.get_ref()) {
        (true, DeValue::Array(items)) if index.is_some() => items.get(index?).map(|v| v.span()),
        (true, _) => Some(value.span()),
        (false, DeValue::Table(t)) => locate(t, rest, index),
        (false, _) => None,
    }
}

/// Where in the document a span lies: the path of the table holding it and the key it is under.
fn find_path(doc: &DeTable<'_>, span: &Range<usize>, path: &mut Vec<String>) -> Option<String> {
    for (k, v) in doc.iter() {
        let key = k.get_ref().to_string();
        if k.span() == *span {
            return Some(key);
        }
        let vs = v.span();
        if let DeValue::Table(t) = v.get_ref() {
            path.push(key.clone());
            if let Some(found) = find_path(t, span, path) {
                return Some(found);
            }
            path.pop();
        }
        if vs.start <= span.start && span.end <= vs.end && !matches!(v.get_ref(), DeValue::Table(_))
        {
            return Some(key);
        }
    }
    None
}

/// Rewrites serde's "unknown field `x`, expected one of `a`, `b`" (which has no section and no
/// file) into the policy's own message, using the error's span to find the section.
fn serde_error(e: &toml::de::Error, doc: &DeTable<'_>, text: &str, origin: &str) -> PolicyError {
    let message = e.message();
    let line = e.span().map(|s| line_at(text, s.start));
    let mut path = Vec::new();
    let key = e.span().and_then(|s| find_path(doc, &s, &mut path));
    let path_refs: Vec<&str> = path.iter().map(String::as_str).collect();
    if message.starts_with("unknown field `") {
        // The key comes from the document (it may itself contain a backtick); the allowed keys
        // are the backquoted names serde lists after it.
        let key = key.unwrap_or_else(|| message.split('`').nth(1).unwrap_or("?").to_string());
        let listed = message
            .strip_prefix(&format!("unknown field `{key}`"))
            .unwrap_or(message);
        let allowed = listed
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        return PolicyError::UnknownKey {
            origin: origin.to_string(),
            section: section_name(&path_refs),
            key,
            line,
            allowed,
        };
    }
    let section = section_name(&path_refs);
    PolicyError::Invalid {
        origin: origin.to_string(),
        place: match key {
            Some(k) => format!("{k} in {section}"),
            None => section,
        },
        line,
        message: format!("{message}; write it as in policies/examples.toml"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "/etc/infra/policy.toml";

    fn load(text: &str) -> Policy {
        Policy::load(text, ORIGIN).unwrap_or_else(|e| panic!("policy should load: {e}"))
    }

    fn load_err(text: &str) -> PolicyError {
        match Policy::load(text, ORIGIN) {
            Ok(_) => panic!("policy should be refused:\n{text}"),
            Err(e) => e,
        }
    }

    fn http_policy(hosts: &[&str], deny: &[&str]) -> Policy {
        let q = |v: &[&str]| {
            v.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        load(&format!(
            "[plugin.p.http]\nhosts = [{}]\ndeny_hosts = [{}]\n",
            q(hosts),
            q(deny)
        ))
    }

    fn allowed(p: &Policy, host: &str, port: u16) -> bool {
        p.check_http_target("p", host, port).is_allowed()
    }

    #[test]
    fn unknown_key_at_every_level_is_refused_naming_key_section_and_file() {
        let cases: &[(&str, &str, &str, &[&str])] = &[
            (
                "hostz = 1\n",
                "hostz",
                "the top level",
                &["limits", "plugin"],
            ),
            (
                "[limits]\ntimeout = 5\n",
                "timeout",
                "[limits]",
                &[
                    "timeout_ms",
                    "max_timeout_ms",
                    "memory_mib",
                    "output_bytes",
                    "inline_bytes",
                    "capture_bytes",
                    "artifact_bytes",
                    "artifacts_quota_bytes",
                    "artifacts_quota_count",
                    "calls_in_flight",
                    "plugin_calls_in_flight",
                ],
            ),
            (
                "[plugin.http]\nsha = 'x'\n",
                "sha",
                "[plugin.http]",
                &[
                    "sha256",
                    "timeout_ms",
                    "memory_mib",
                    "http",
                    "artifacts",
                    "log",
                    "secrets",
                    "ssh",
                    "postgres",
                    "fs",
                    "exec",
                ],
            ),
            (
                "[plugin.http.htpp]\nhosts = []\n",
                "htpp",
                "[plugin.http]",
                &["http"],
            ),
            (
                "[plugin.http.http]\nhosts = ['*']\nhostz = ['a']\n",
                "hostz",
                "[plugin.http.http]",
                &["hosts", "deny_hosts", "profiles"],
            ),
            (
                "[plugin.http.artifacts]\nmax = 1\n",
                "max",
                "[plugin.http.artifacts]",
                &[],
            ),
            (
                "[plugin.http.log]\nlevel = 'x'\n",
                "level",
                "[plugin.http.log]",
                &[],
            ),
            (
                "[plugin.x.secrets]\nname = ['a']\n",
                "name",
                "[plugin.x.secrets]",
                &["names"],
            ),
            (
                "[plugin.x.ssh]\ntarget = ['a']\n",
                "target",
                "[plugin.x.ssh]",
                &["targets"],
            ),
            (
                "[plugin.x.postgres]\nreadonly = true\n",
                "readonly",
                "[plugin.x.postgres]",
                &["profiles", "read_only"],
            ),
            (
                "[plugin.x.fs]\nroot = ['repo']\n",
                "root",
                "[plugin.x.fs]",
                &["roots", "read_only", "unsafe"],
            ),
            (
                "[plugin.x.exec]\nprogram = ['git']\n",
                "program",
                "[plugin.x.exec]",
                &["programs", "roots", "unsafe"],
            ),
            (
                "[plugin]\nhttp = { http = { hosts = ['*'], zz = 1 } }\n",
                "zz",
                "[plugin.http.http]",
                &["hosts"],
            ),
            (
                "[plugin]\nx.fs.roots = ['a']\nx.fs.writable = true\n",
                "writable",
                "[plugin.x.fs]",
                &["roots"],
            ),
        ];
        for (text, key, section, allowed) in cases {
            let err = load_err(text);
            let msg = err.to_string();
            match &err {
                PolicyError::UnknownKey {
                    key: k,
                    section: s,
                    origin,
                    allowed: a,
                    line,
                } => {
                    assert_eq!(k, key, "{msg}");
                    assert_eq!(s, section, "{msg}");
                    assert_eq!(origin, ORIGIN);
                    assert!(line.is_some(), "{msg}");
                    for want in *allowed {
                        assert!(
                            a.iter().any(|x| x == want),
                            "allowed keys of {section} should list {want}: {msg}"
                        );
                    }
                }
                other => panic!("expected UnknownKey for {text:?}, got {other:?}"),
            }
            assert!(
                msg.contains(&format!("unknown key '{key}' in {section} of {ORIGIN}")),
                "{msg}"
            );
            assert!(msg.contains("allowed keys: "), "{msg}");
        }
    }

    #[test]
    fn unknown_key_message_reads_as_specified() {
        let msg = load_err("[plugin.http.http]\nhosts = ['*']\nhostz = 1\n").to_string();
        assert_eq!(
            msg,
            format!(
                "unknown key 'hostz' in [plugin.http.http] of {ORIGIN} (line 3); allowed keys: hosts, deny_hosts, profiles"
            )
        );
    }

    #[test]
    fn syntax_and_type_errors_name_file_place_and_line() {
        let e = load_err("[plugin.http.http]\nhosts = [\n");
        assert!(
            matches!(e, PolicyError::Syntax { line: Some(2), .. }),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with(&format!("policy {ORIGIN} (line 2) is not valid TOML"))
        );

        let e = load_err("[plugin.http.http]\nhosts = 'example.com'\n").to_string();
        assert!(
            e.contains(&format!("hosts in [plugin.http.http] of {ORIGIN} (line 2)")),
            "{e}"
        );

        let e = load_err("[plugin.http]\nartifacts = true\n").to_string();
        assert!(e.contains("artifacts in [plugin.http]"), "{e}");

        let e = load_err("[limits]\ntimeout_ms = -5\n").to_string();
        assert!(e.contains("timeout_ms in [limits]"), "{e}");
    }

    #[test]
    fn malformed_patterns_are_refused_with_their_location() {
        for (pattern, why) in [
            ("foo*.example.com", "'*' may stand alone"),
            ("example.com:0", "port '0'"),
            ("example.com:65536", "port '65536'"),
            ("example.com:http", "port 'http'"),
            ("10.0.0.0/33", "CIDR"),
            ("[::1", "without closing"),
            ("[example.com]:80", "not an IPv6"),
            ("[::1]x", "only ':port'"),
            ("", "empty"),
            ("exa mple.com", "not a host name"),
            ("a..b", "not a host name"),
            ("*.10.0.0.1", "wildcard on an IP"),
        ] {
            let text = format!("[plugin.p.http]\nhosts = [\n  \"*\",\n  {pattern:?},\n]\n");
            let e = load_err(&text);
            let msg = e.to_string();
            assert!(
                matches!(e, PolicyError::Invalid { line: Some(4), .. }),
                "{pattern:?}: {msg}"
            );
            assert!(msg.contains("hosts in [plugin.p.http]"), "{msg}");
            assert!(
                msg.contains(why),
                "{pattern:?} should be refused for {why:?}: {msg}"
            );
        }
        let e =
            load_err("[plugin.p.http]\nhosts = ['*']\ndeny_hosts = ['10.0.0.1:22']\n").to_string();
        assert!(
            e.contains("deny_hosts in [plugin.p.http]") && e.contains("(line 3)"),
            "{e}"
        );
        let e = load_err("[plugin.p.ssh]\ntargets = ['prod', 'a b']\n").to_string();
        assert!(
            e.contains("targets in [plugin.p.ssh]") && e.contains("whitespace"),
            "{e}"
        );
    }

    #[test]
    fn unlisted_plugin_is_denied_everything_with_advice() {
        let p = load("[plugin.http.http]\nhosts = ['*']\n");
        let flags = Flags {
            unsafe_local: true,
            allow_secret_export: true,
        };
        let decisions = [
            p.check_http_target("ghost", "example.com", 443),
            p.check_http_addr("ghost", "1.1.1.1".parse().unwrap()),
            p.check_profile("ghost", "http", "github"),
            p.check_profile("ghost", "postgres", "db"),
            p.check_secret("ghost", "github-token"),
            p.check_ssh_target("ghost", "prod"),
            p.check_fs_root("ghost", "repo"),
            p.check_exec_program("ghost", "git", &flags),
            p.check_exec_root("ghost", "repo"),
        ];
        for d in decisions {
            let reason = d.reason().expect("an unlisted plugin must be denied");
            assert!(
                reason.starts_with("policy: plugin 'ghost' has no grant"),
                "{reason}"
            );
            assert!(reason.contains("[plugin.ghost."), "{reason}");
            assert!(reason.ends_with(ORIGIN), "{reason}");
        }
        for cap in CAPS {
            let d = p.check_cap("ghost", cap);
            assert_eq!(
                d.reason(),
                Some(format!("policy: plugin 'ghost' has no grant for capability '{cap}'; add [plugin.ghost.{cap}] to {ORIGIN}").as_str())
            );
        }
        assert!(p.postgres_read_only("ghost"));
        assert!(p.fs_read_only("ghost"));
        assert!(!p.fs_unsafe("ghost", &flags));
        assert!(!p.exec_unsafe("ghost", &flags));
        assert_eq!(p.sha256_pin("ghost"), None);
        assert_eq!(p.grants_summary("ghost")["granted"], false);
    }

    #[test]
    fn a_section_grants_only_the_capabilities_it_lists() {
        let p = load("[plugin.x.log]\n");
        assert!(p.check_cap("x", "log").is_allowed());
        for cap in [
            "http",
            "ssh",
            "postgres",
            "fs",
            "exec",
            "secrets",
            "artifacts",
        ] {
            assert!(!p.check_cap("x", cap).is_allowed(), "{cap}");
        }
        assert!(!p.check_cap("x", "wasi:sockets").is_allowed());
        let d = p.check_http_target("x", "example.com", 443);
        assert_eq!(
            d.reason(),
            Some(format!("policy: plugin 'x' has no grant for host example.com:443; add it under [plugin.x.http] hosts in {ORIGIN}").as_str())
        );
    }

    #[test]
    fn subdomain_glob_matches_subdomains_only() {
        let p = http_policy(&["*.example.com"], &[]);
        assert!(allowed(&p, "a.example.com", 443));
        assert!(allowed(&p, "a.b.example.com", 443));
        assert!(
            allowed(&p, "A.Example.COM.", 443),
            "case and trailing dot are ignored"
        );
        assert!(
            !allowed(&p, "example.com", 443),
            "the apex is not a subdomain"
        );
        assert!(!allowed(&p, "badexample.com", 443));
        assert!(!allowed(&p, "example.com.evil.org", 443));
        assert!(!allowed(&p, ".example.com", 443));
        assert!(!allowed(&p, "a.example.co", 443));
    }

    #[test]
    fn exact_names_match_case_insensitively_and_nothing_else() {
        let p = http_policy(&["Example.COM."], &[]);
        assert!(allowed(&p, "example.com", 80));
        assert!(allowed(&p, "EXAMPLE.com.", 80));
        assert!(!allowed(&p, "www.example.com", 80));
        assert!(!allowed(&p, "example.com.evil.org", 80));
        assert!(!allowed(&p, "xexample.com", 80));
        assert!(
            !allowed(&p, "93.184.216.34", 80),
            "a name grant does not grant its address"
        );
        assert!(!allowed(&p, "exa mple.com", 80));
        // IDNA: the Unicode spelling and the punycode spelling are one host.
        let p = http_policy(&["bücher.example"], &[]);
        assert!(allowed(&p, "xn--bcher-kva.example", 443));
    }

    #[test]
    fn ports_restrict_when_given() {
        let p = http_policy(
            &[
                "api.example.com:443",
                "dev.example.com:*",
                "any.example.com",
                "*:8443",
            ],
            &[],
        );
        assert!(allowed(&p, "api.example.com", 443));
        assert!(!allowed(&p, "api.example.com", 80));
        assert!(!allowed(&p, "api.example.com", 4430));
        assert!(allowed(&p, "dev.example.com", 1));
        assert!(allowed(&p, "dev.example.com", 65535));
        assert!(
            allowed(&p, "any.example.com", 8080),
            "no port means any port"
        );
        assert!(allowed(&p, "elsewhere.org", 8443));
        assert!(!allowed(&p, "elsewhere.org", 443));
    }

    #[test]
    fn ipv6_patterns_and_targets() {
        let p = http_policy(&["[::1]:8080", "2001:db8::1", "[fd00::/8]"], &[]);
        assert!(allowed(&p, "::1", 8080));
        assert!(allowed(&p, "[::1]", 8080));
        assert!(
            allowed(&p, "[0:0:0:0:0:0:0:1]", 8080),
            "non-canonical spelling is the same address"
        );
        assert!(!allowed(&p, "[::1]", 8081));
        assert!(allowed(&p, "[2001:db8::1]", 1234));
        assert!(allowed(&p, "2001:DB8:0::1", 1234));
        assert!(!allowed(&p, "[2001:db8::2]", 1234));
        assert!(allowed(&p, "[fd12:3456::1]", 443));
        assert!(!allowed(&p, "[fe80::1]", 443));
        let d = p.check_http_target("p", "[2001:db8::2]", 443);
        assert!(
            d.reason().unwrap().contains("host [2001:db8::2]:443"),
            "{d:?}"
        );
    }

    #[test]
    fn cidr_patterns() {
        let p = http_policy(
            &["10.0.0.0/8", "192.168.1.7", "10.1.2.3/16:22"],
            &["10.66.0.0/16"],
        );
        assert!(allowed(&p, "10.0.0.1", 443));
        assert!(allowed(&p, "10.255.255.255", 443));
        assert!(!allowed(&p, "11.0.0.1", 443));
        assert!(
            !allowed(&p, "10.66.1.1", 443),
            "deny_hosts CIDR wins over the grant"
        );
        assert!(allowed(&p, "192.168.1.7", 443));
        assert!(!allowed(&p, "192.168.1.8", 443));
        assert!(
            allowed(&p, "[::ffff:10.1.1.1]", 443),
            "mapped IPv6 is its IPv4 address"
        );
        assert!(!allowed(&p, "[::ffff:10.66.1.1]", 443));
        assert!(
            !allowed(&p, "internal.example.com", 443),
            "IP grants do not grant names"
        );
    }

    #[test]
    fn deny_hosts_beat_a_wildcard_grant_on_names_and_on_resolved_addresses() {
        let p = http_policy(
            &["*"],
            &[
                "169.254.169.254",
                "fd00:ec2::254",
                "metadata.google.internal",
                "*.internal.corp",
            ],
        );
        assert!(allowed(&p, "example.com", 443));
        assert!(!allowed(&p, "metadata.google.internal", 80));
        assert!(!allowed(&p, "METADATA.GOOGLE.INTERNAL.", 80));
        assert!(!allowed(&p, "db.internal.corp", 80));
        assert!(!allowed(&p, "169.254.169.254", 80));
        assert!(!allowed(&p, "[fd00:ec2::254]", 80));
        // A granted name whose DNS answer is the metadata address is stopped at connect time.
        assert!(allowed(&p, "rebind.attacker.example", 80));
        let d = p.check_http_addr("p", "169.254.169.254".parse().unwrap());
        let reason = d
            .reason()
            .expect("resolved metadata address must be denied");
        assert!(
            reason.contains("deny_hosts entry '169.254.169.254'"),
            "{reason}"
        );
        assert!(reason.contains(ORIGIN), "{reason}");
        assert!(
            !p.check_http_addr("p", "fd00:ec2::254".parse().unwrap())
                .is_allowed()
        );
        assert!(
            p.check_http_addr("p", "93.184.216.34".parse().unwrap())
                .is_allowed()
        );
        assert!(
            p.check_http_addr("p", "169.254.169.253".parse().unwrap())
                .is_allowed()
        );
    }

    #[test]
    fn alternative_spellings_of_a_denied_address_are_denied() {
        let p = http_policy(&["*"], &["169.254.169.254", "127.0.0.0/8"]);
        for host in [
            "169.254.169.254.",
            "2852039166",
            "0xa9fea9fe",
            "0xa9.0xfe.0xa9.0xfe",
            "0251.0376.0251.0376",
            "169.254.43518",
            "%31%36%39.254.169.254",
            "::ffff:169.254.169.254",
            "[::ffff:a9fe:a9fe]",
            "[64:ff9b::a9fe:a9fe]",
            "127.1",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(!allowed(&p, host, 80), "{host} must be denied");
        }
        for ip in [
            "::ffff:169.254.169.254",
            "::ffff:127.0.0.2",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(
                !p.check_http_addr("p", ip).is_allowed(),
                "{ip} must be denied after resolution"
            );
        }
    }

    #[test]
    fn mapped_ipv6_deny_entries_cover_the_ipv4_address() {
        let p = http_policy(&["*"], &["::ffff:169.254.169.254", "[::ffff:10.0.0.0/104]"]);
        assert!(
            !p.check_http_addr("p", "169.254.169.254".parse().unwrap())
                .is_allowed()
        );
        assert!(
            !p.check_http_addr("p", "10.1.2.3".parse().unwrap())
                .is_allowed()
        );
        assert!(
            p.check_http_addr("p", "11.1.2.3".parse().unwrap())
                .is_allowed()
        );
    }

    #[test]
    fn name_deny_entries_do_not_apply_to_addresses_and_vice_versa() {
        let p = http_policy(&["*"], &["metadata.google.internal"]);
        assert!(
            p.check_http_addr("p", "169.254.169.254".parse().unwrap())
                .is_allowed()
        );
        let p = load("[plugin.p.artifacts]\n");
        assert!(
            !p.check_http_addr("p", "1.1.1.1".parse().unwrap())
                .is_allowed(),
            "no http grant at all"
        );
    }

    #[test]
    fn invalid_target_hosts_are_denied() {
        let p = http_policy(&["*"], &[]);
        for host in ["", ".", "exa mple.com", "a/b", "[::1", "a..b", "foo@bar"] {
            assert!(!allowed(&p, host, 80), "{host:?} must be denied");
        }
    }

    #[test]
    fn unspecified_addresses_are_denied_whatever_the_grant() {
        let loopback_denied = http_policy(&["*"], &["127.0.0.0/8", "::1"]);
        let nothing_denied = http_policy(&["*"], &[]);
        for p in [&loopback_denied, &nothing_denied] {
            for host in [
                "0.0.0.0",
                "0",
                "0x0",
                "0.0",
                "000.0.0.0",
                "0.0.0.0.",
                "0.1.2.3",
                "[::]",
                "::",
                "[0:0:0:0:0:0:0:0]",
                "[::ffff:0.0.0.0]",
                "[::ffff:0:0]",
                "[64:ff9b::]",
                "[2002::]",
            ] {
                let d = p.check_http_target("p", host, 8080);
                let reason = d
                    .reason()
                    .unwrap_or_else(|| panic!("{host} must be denied"));
                assert!(
                    reason.contains("unspecified") && reason.contains("127.0.0.1"),
                    "{host}: {reason}"
                );
            }
            for ip in ["0.0.0.0", "::", "::ffff:0.0.0.0", "0.255.0.1"] {
                let ip: IpAddr = ip.parse().unwrap();
                assert!(
                    !p.check_http_addr("p", ip).is_allowed(),
                    "{ip} must be denied after resolution"
                );
            }
        }
        // `::1` is IPv6 loopback, not the IPv4-compatible 0.0.0.1: no false unspecified denial.
        assert!(allowed(&nothing_denied, "[::1]", 80));
        assert!(!allowed(&loopback_denied, "[::1]", 80));
        for host in [
            "[::ffff:127.0.0.1]",
            "[::127.0.0.1]",
            "[64:ff9b::127.0.0.1]",
            "[64:ff9b:1::7f00:1]",
            "[2002:7f00:1::]",
        ] {
            let ip: IpAddr = host.trim_matches(['[', ']']).parse().unwrap();
            assert!(!allowed(&loopback_denied, host, 80), "{host} is loopback");
            assert!(
                !loopback_denied.check_http_addr("p", ip).is_allowed(),
                "{host} resolved is loopback"
            );
        }
    }

    /// Property tests over spellings: whatever form an agent writes a denied address in, the
    /// policy sees the address.
    mod spellings {
        use super::*;
        use proptest::prelude::*;

        /// The embedded default's deny entries, split into IPv4 blocks, IPv6 blocks and names.
        fn default_denials() -> (Vec<ipnet::Ipv4Net>, Vec<ipnet::Ipv6Net>, Vec<String>) {
            let p = Policy::embedded_default().expect("the default policy loads");
            let grant = p
                .plugin("http")
                .and_then(|g| g.http.clone())
                .expect("http grant");
            let (mut v4, mut v6, mut names) = (vec![], vec![], vec![]);
            for d in grant.deny_hosts {
                match d.host {
                    HostMatch::Ip(ip) => match IpNet::from(ip) {
                        IpNet::V4(n) => v4.push(n),
                        IpNet::V6(n) => v6.push(n),
                    },
                    HostMatch::Net(IpNet::V4(n)) => v4.push(n),
                    HostMatch::Net(IpNet::V6(n)) => v6.push(n),
                    HostMatch::Name(n) => names.push(n),
                    HostMatch::Subdomains(_) | HostMatch::Any => {}
                }
            }
            // Unspecified addresses are denied by infra itself, so they join the property.
            v4.push("0.0.0.0/8".parse().unwrap());
            (v4, v6, names)
        }

        /// An address inside `net`, chosen by `pick`.
        fn v4_in(net: ipnet::Ipv4Net, pick: u32) -> Ipv4Addr {
            let host_bits = 32 - u32::from(net.prefix_len());
            let mask = if host_bits == 32 {
                u32::MAX
            } else {
                (1u32 << host_bits) - 1
            };
            Ipv4Addr::from(u32::from(net.network()) | (pick & mask))
        }

        fn v6_in(net: ipnet::Ipv6Net, pick: u128) -> Ipv6Addr {
            let host_bits = 128 - u32::from(net.prefix_len());
            let mask = if host_bits == 128 {
                u128::MAX
            } else {
                (1u128 << host_bits) - 1
            };
            Ipv6Addr::from(u128::from(net.network()) | (pick & mask))
        }

        /// One number in the base `base` picks (decimal, octal with leading zeros, hex in
        /// either case), as WHATWG URL parsing and inet_aton read it.
        fn number(n: u32, base: u8) -> String {
            match base % 5 {
                0 => n.to_string(),
                1 => format!("0{n:o}"),
                2 => format!("00{n:o}"),
                3 => format!("0x{n:x}"),
                _ => format!("0X{n:X}"),
            }
        }

        /// `ip` written the way `style` picks, with per-part bases from `bases`.
        fn spell_v4(ip: Ipv4Addr, style: u8, bases: [u8; 4]) -> String {
            let [a, b, c, d] = ip.octets().map(u32::from);
            let n = u32::from(ip);
            let h = |x: u32| format!("{x:x}");
            match style % 12 {
                0 => format!(
                    "{}.{}.{}.{}",
                    number(a, bases[0]),
                    number(b, bases[1]),
                    number(c, bases[2]),
                    number(d, bases[3])
                ),
                1 => number(n, bases[0]),
                2 => format!(
                    "{}.{}.{}",
                    number(a, bases[0]),
                    number(b, bases[1]),
                    number(c << 8 | d, bases[2])
                ),
                3 => format!(
                    "{}.{}",
                    number(a, bases[0]),
                    number(b << 16 | c << 8 | d, bases[1])
                ),
                4 => format!("{ip}."),
                5 => format!("[::ffff:{ip}]"),
                6 => format!("[::FFFF:{}:{}]", h(a << 8 | b), h(c << 8 | d)),
                7 => format!("[64:ff9b::{ip}]"),
                8 => format!("[64:ff9b:1::{}:{}]", h(a << 8 | b), h(c << 8 | d)),
                9 => format!("[2002:{}:{}::1]", h(a << 8 | b), h(c << 8 | d)),
                10 => {
                    // Percent-encoded digits, decoded by the URL parser before the IPv4 parse.
                    let text = ip.to_string();
                    let (first, rest) = text.split_at(1);
                    format!("%{:02X}{rest}", first.as_bytes()[0])
                }
                _ => format!("[0:0:0:0:0:ffff:{}:{}]", h(a << 8 | b), h(c << 8 | d)),
            }
        }

        fn spell_v6(ip: Ipv6Addr, style: u8) -> String {
            let full = ip
                .segments()
                .iter()
                .map(|s| format!("{s:04x}"))
                .collect::<Vec<_>>()
                .join(":");
            match style % 5 {
                0 => format!("[{ip}]"),
                1 => format!("[{}]", ip.to_string().to_uppercase()),
                2 => format!("[{full}]"),
                3 => format!("[{}]", full.to_uppercase()),
                _ => ip.to_string(),
            }
        }

        fn spell_name(name: &str, flips: u64, dot: bool) -> String {
            let mut out: String = name
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if flips >> (i % 64) & 1 == 1 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            if dot {
                out.push('.');
            }
            out
        }

        /// Whether the policy allows `host` the way the capability sees it: as the host of a
        /// parsed URL, in the URL parser's canonical form.
        fn via_url(p: &Policy, host: &str, port: u16) -> Result<bool, TestCaseError> {
            let url = url::Url::parse(&format!("http://{host}:{port}/"))
                .map_err(|e| TestCaseError::fail(format!("{host}: {e}")))?;
            let parsed = url.host_str().unwrap_or_default();
            Ok(p.check_http_target("http", parsed, port).is_allowed())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn any_spelling_of_a_denied_ipv4_address_is_denied(
                which in any::<usize>(), pick in any::<u32>(), style in any::<u8>(),
                bases in any::<[u8; 4]>(), port in 1u16..,
            ) {
                let (v4, _, _) = default_denials();
                let p = Policy::embedded_default().unwrap();
                let ip = v4_in(v4[which % v4.len()], pick);
                let host = spell_v4(ip, style, bases);
                prop_assert!(
                    !p.check_http_target("http", &host, port).is_allowed(),
                    "{} as {} was allowed", ip, host
                );
                prop_assert!(!via_url(&p, &host, port)?, "{} as {} in a URL was allowed", ip, host);
                // And as an address a name resolved to, in each of its wire forms.
                for form in [IpAddr::V4(ip), IpAddr::V6(ip.to_ipv6_mapped())] {
                    prop_assert!(
                        !p.check_http_addr("http", form).is_allowed(),
                        "{} resolved was allowed", form
                    );
                }
            }

            #[test]
            fn any_spelling_of_a_denied_ipv6_address_is_denied(
                which in any::<usize>(), pick in any::<u128>(), style in any::<u8>(), port in 1u16..,
            ) {
                let (_, v6, _) = default_denials();
                let p = Policy::embedded_default().unwrap();
                let ip = v6_in(v6[which % v6.len()], pick);
                let host = spell_v6(ip, style);
                prop_assert!(
                    !p.check_http_target("http", &host, port).is_allowed(),
                    "{} was allowed", host
                );
                let bracketed = if host.starts_with('[') { host.clone() } else { format!("[{host}]") };
                prop_assert!(!via_url(&p, &bracketed, port)?, "{} in a URL was allowed", host);
                prop_assert!(!p.check_http_addr("http", IpAddr::V6(ip)).is_allowed());
            }

            #[test]
            fn any_spelling_of_a_denied_name_is_denied(
                which in any::<usize>(), flips in any::<u64>(), dot in any::<bool>(), port in 1u16..,
            ) {
                let (_, _, names) = default_denials();
                let p = Policy::embedded_default().unwrap();
                let host = spell_name(&names[which % names.len()], flips, dot);
                prop_assert!(
                    !p.check_http_target("http", &host, port).is_allowed(),
                    "{} was allowed", host
                );
                prop_assert!(!via_url(&p, &host, port)?, "{} in a URL was allowed", host);
            }

            #[test]
            fn every_spelling_names_the_same_address(ip in any::<u32>(), style in any::<u8>(), bases in any::<[u8; 4]>()) {
                let ip = Ipv4Addr::from(ip);
                let host = spell_v4(ip, style, bases);
                let target = normalize_host(&host).map_err(TestCaseError::fail)?;
                let Target::Ip(seen) = target else { return Err(TestCaseError::fail(format!("{host} read as a name"))) };
                prop_assert!(ip_forms(seen).contains(&IpAddr::V4(ip)), "{} read as {}", host, seen);
            }

            #[test]
            fn a_cidr_pattern_matches_exactly_its_block(net in any::<u32>(), len in 0u8..=32, ip in any::<u32>()) {
                let net = ipnet::Ipv4Net::new(Ipv4Addr::from(net), len).unwrap().trunc();
                let pattern = HostPattern::parse(&net.to_string()).map_err(TestCaseError::fail)?;
                let ip = Ipv4Addr::from(ip);
                prop_assert_eq!(pattern.matches_host(&Target::Ip(IpAddr::V4(ip))), net.contains(&ip));
                let mapped = HostPattern::parse(&format!("[::ffff:{}/{}]", net.network(), u32::from(len) + 96))
                    .map_err(TestCaseError::fail)?;
                prop_assert_eq!(mapped.matches_host(&Target::Ip(IpAddr::V4(ip))), net.contains(&ip));
            }

            #[test]
            fn parsing_hostile_text_never_panics(text in "\\PC{0,40}", port in any::<u16>()) {
                let _ = HostPattern::parse(&text);
                let p = http_policy(&["*"], &["127.0.0.0/8"]);
                let _ = p.check_http_target("p", &text, port);
            }
        }
    }

    #[test]
    fn sha256_pin_is_validated_and_normalised() {
        let hex = "AB".repeat(32);
        let p = load(&format!("[plugin.x]\nsha256 = \"{hex}\"\n[plugin.y.log]\n"));
        assert_eq!(p.sha256_pin("x"), Some("ab".repeat(32).as_str()));
        assert_eq!(p.sha256_pin("y"), None);
        assert_eq!(
            p.grants_summary("x")["granted"],
            false,
            "a pin alone grants nothing"
        );
        for bad in [
            "abc",
            &"g".repeat(64),
            &"a".repeat(65),
            &format!("sha256:{}", "a".repeat(64)),
        ] {
            let e = load_err(&format!("[plugin.x]\nsha256 = {bad:?}\n")).to_string();
            assert!(
                e.contains("sha256 in [plugin.x]") && e.contains("(line 2)"),
                "{e}"
            );
        }
    }

    #[test]
    fn profiles_secrets_targets_use_globs() {
        let p = load(
            "[plugin.x.http]\nprofiles = ['github', 'gitlab-*']\n\
             [plugin.x.postgres]\nprofiles = ['app-?b']\n\
             [plugin.x.secrets]\nnames = ['github-*']\n\
             [plugin.x.ssh]\ntargets = ['prod-*', 'staging']\n",
        );
        assert!(p.check_profile("x", "http", "github").is_allowed());
        assert!(p.check_profile("x", "http", "gitlab-ci").is_allowed());
        assert!(
            !p.check_profile("x", "http", "GitHub").is_allowed(),
            "names are case-sensitive"
        );
        assert!(!p.check_profile("x", "http", "github2").is_allowed());
        assert!(
            !p.check_profile("x", "postgres", "github").is_allowed(),
            "http profiles are not postgres profiles"
        );
        assert!(p.check_profile("x", "postgres", "app-db").is_allowed());
        assert!(!p.check_profile("x", "postgres", "app-dbx").is_allowed());
        assert!(!p.check_profile("x", "ssh", "github").is_allowed());
        assert!(p.check_ssh_target("x", "prod-1").is_allowed());
        assert!(p.check_ssh_target("x", "staging").is_allowed());
        assert!(!p.check_ssh_target("x", "staging-2").is_allowed());
        assert!(!p.check_ssh_target("x", "xprod-1").is_allowed());
        assert!(
            p.check_http_target("x", "example.com", 443)
                .reason()
                .is_some(),
            "profiles grant no hosts"
        );
    }

    #[test]
    fn glob_matching_edges() {
        let g = |p: &str, s: &str| Glob::parse(p).unwrap().matches(s);
        assert!(g("*", ""));
        assert!(g("*", "anything"));
        assert!(g("a*b*c", "abc"));
        assert!(g("a*b*c", "aXXbYYc"));
        assert!(!g("a*b*c", "aXXbYY"));
        assert!(g("**", "x"));
        assert!(!g("a?", "a"));
        // A pathological pattern finishes quickly instead of backtracking exponentially.
        let long = "a".repeat(10_000);
        assert!(!g("*a*a*a*a*a*a*a*a*b", &long));
    }

    #[test]
    fn secrets_need_a_grant() {
        let p = load("[plugin.x.secrets]\nnames = ['github-*']\n");
        assert!(p.check_secret("x", "github-token").is_allowed());
        let d = p.check_secret("x", "aws-key");
        assert_eq!(
            d.reason(),
            Some(format!("policy: plugin 'x' has no grant for secret 'aws-key'; add it under [plugin.x.secrets] names in {ORIGIN}").as_str())
        );
        assert!(!p.check_secret("y", "github-token").is_allowed());
    }

    #[test]
    fn postgres_read_only_defaults_to_true() {
        let p = load(
            "[plugin.a.postgres]\nprofiles = ['*']\n[plugin.b.postgres]\nprofiles = ['*']\nread_only = false\n",
        );
        assert!(p.postgres_read_only("a"));
        assert!(!p.postgres_read_only("b"));
        assert!(p.postgres_read_only("c"));
    }

    #[test]
    fn fs_and_exec_unsafe_need_the_flag() {
        let p = load(
            "[plugin.r.fs]\nroots = ['repo']\nread_only = false\nunsafe = true\n\
             [plugin.r.exec]\nprograms = ['git']\nroots = ['repo']\nunsafe = true\n\
             [plugin.s.fs]\nroots = ['repo']\n[plugin.s.exec]\nprograms = ['git']\n",
        );
        let on = Flags {
            unsafe_local: true,
            allow_secret_export: false,
        };
        assert!(p.check_fs_root("r", "repo").is_allowed());
        assert!(!p.check_fs_root("r", "home").is_allowed());
        assert!(!p.fs_read_only("r"));
        assert!(p.fs_read_only("s"));
        assert!(!p.fs_unsafe("r", &Flags::SAFE));
        assert!(p.fs_unsafe("r", &on));
        assert!(!p.fs_unsafe("s", &on));
        assert!(p.check_exec_program("r", "git", &Flags::SAFE).is_allowed());
        assert!(!p.check_exec_program("r", "sh", &Flags::SAFE).is_allowed());
        assert!(
            p.check_exec_program("r", "sh", &on).is_allowed(),
            "unsafe + flag lifts the allowlist"
        );
        assert!(
            !p.check_exec_program("s", "sh", &on).is_allowed(),
            "the flag alone lifts nothing"
        );
        assert!(p.check_exec_root("r", "repo").is_allowed());
        assert!(!p.check_exec_root("s", "repo").is_allowed());
    }

    #[test]
    fn limits_defaults_overrides_clamping_and_validation() {
        let p = load("");
        assert_eq!(*p.limits(), Limits::default());
        assert_eq!(p.call_timeout_ms(None, None), 30_000);
        assert_eq!(p.call_timeout_ms(None, Some(10_000_000)), 600_000);
        assert_eq!(p.call_timeout_ms(None, Some(0)), 1);

        let p = load(
            "[limits]\ntimeout_ms = 1000\nmax_timeout_ms = 5000\nmemory_mib = 32\n[plugin.x]\ntimeout_ms = 4000\nmemory_mib = 128\n",
        );
        assert_eq!(p.call_timeout_ms(Some("x"), None), 4000);
        assert_eq!(p.timeout_ms("x"), 4000);
        assert_eq!(p.timeout_ms("y"), 1000);
        assert_eq!(p.call_timeout_ms(Some("y"), None), 1000);
        assert_eq!(p.call_timeout_ms(Some("x"), Some(9000)), 5000);
        assert_eq!(p.memory_mib("x"), 128);
        assert_eq!(p.memory_mib("y"), 32);

        for (text, place) in [
            ("[limits]\ntimeout_ms = 0\n", "timeout_ms in [limits]"),
            ("[limits]\ntimeout_ms = 700000\n", "timeout_ms in [limits]"),
            ("[limits]\nmemory_mib = 5000\n", "memory_mib in [limits]"),
            (
                "[limits]\ninline_bytes = 10\noutput_bytes = 5\n",
                "inline_bytes in [limits]",
            ),
            (
                "[plugin.x]\ntimeout_ms = 600001\n",
                "timeout_ms in [plugin.x]",
            ),
            ("[plugin.x]\nmemory_mib = 0\n", "memory_mib in [plugin.x]"),
            ("[plugin.\"a b\".log]\n", "[plugin.a b]"),
        ] {
            let e = load_err(text).to_string();
            assert!(e.starts_with(place) && e.contains(ORIGIN), "{text:?}: {e}");
        }
    }

    #[test]
    fn grants_summary_shows_what_is_granted() {
        let p = load(
            "[plugin.h.http]\nhosts = ['*']\ndeny_hosts = ['169.254.169.254']\nprofiles = ['*']\n[plugin.h.artifacts]\n",
        );
        let s = p.grants_summary("h");
        assert_eq!(s["granted"], true);
        assert_eq!(s["policy"], ORIGIN);
        assert_eq!(s["caps"]["http"]["hosts"], json!(["*"]));
        assert_eq!(s["caps"]["http"]["deny_hosts"], json!(["169.254.169.254"]));
        assert_eq!(s["caps"]["artifacts"], json!({}));
        assert!(s["caps"].get("log").is_none());
        assert_eq!(s["limits"]["timeout_ms"], 30_000);
    }

    #[test]
    fn embedded_default_is_locked_down() {
        let p = Policy::embedded_default().expect("policies/default.toml must load");
        assert_eq!(p.origin(), EMBEDDED_ORIGIN);
        assert_eq!(
            p.plugin_names().collect::<Vec<_>>(),
            ["http", "psql", "ssh"]
        );
        assert!(p.check_http_target("http", "example.com", 443).is_allowed());
        for host in [
            "169.254.169.254",
            "[fd00:ec2::254]",
            "metadata.google.internal",
            "100.100.100.200",
            "169.254.170.2",
        ] {
            assert!(
                !p.check_http_target("http", host, 80).is_allowed(),
                "{host}"
            );
        }
        for ip in [
            "169.254.169.254",
            "fd00:ec2::254",
            "100.100.100.200",
            "169.254.170.2",
            "::ffff:169.254.169.254",
        ] {
            assert!(
                !p.check_http_addr("http", ip.parse().unwrap()).is_allowed(),
                "{ip}"
            );
        }
        assert!(p.check_profile("http", "http", "github").is_allowed());
        assert!(p.check_cap("http", "artifacts").is_allowed());
        assert!(p.check_cap("http", "log").is_allowed());
        for cap in ["ssh", "postgres", "fs", "exec", "secrets"] {
            assert!(!p.check_cap("http", cap).is_allowed(), "{cap}");
        }
        assert!(!p.check_secret("http", "x").is_allowed());
        // The ssh plugin: a remote command gets 45 s unless the call says otherwise.
        assert_eq!(p.timeout_ms("ssh"), 45_000);
        assert_eq!(p.call_timeout_ms(Some("ssh"), None), 45_000);
        assert_eq!(p.timeout_ms("http"), 30_000);
        // The embedded file cannot be edited, so advice points at the file that replaces it.
        let d = p.check_ssh_target("repo", "prod");
        assert!(
            d.reason()
                .unwrap()
                .contains("policy.toml in the state directory"),
            "{d:?}"
        );
    }

    /// Serde's own list of the keys a section accepts, read back from its refusal of a probe key,
    /// so this test follows the structs instead of a second hand-kept list.
    fn accepted_keys(section: &str) -> Vec<String> {
        let text = if section.is_empty() {
            "__probe = 1\n".to_string()
        } else {
            format!("[{section}]\n__probe = 1\n")
        };
        match Policy::load(&text, ORIGIN) {
            Err(PolicyError::UnknownKey { allowed, .. }) => allowed,
            other => panic!("probe of [{section}] should be refused as unknown, got {other:?}"),
        }
    }

    #[test]
    fn examples_file_loads_and_shows_every_key_of_every_section() {
        let text = include_str!("../../policies/examples.toml");
        let policy = Policy::load(text, "policies/examples.toml").unwrap_or_else(|e| panic!("{e}"));
        let doc = DeTable::parse(text).unwrap();
        let doc = doc.get_ref();
        let has = |path: &[&str]| locate(doc, path, None).is_some();
        for key in accepted_keys("") {
            assert!(has(&[&key]), "examples.toml lacks top-level [{key}]");
        }
        for key in accepted_keys("limits") {
            assert!(has(&["limits", &key]), "examples.toml lacks limits.{key}");
        }
        let plugin_keys = accepted_keys("plugin.x");
        for key in &plugin_keys {
            let shown = policy.plugin_names().any(|p| has(&["plugin", p, key]));
            assert!(shown, "no plugin in examples.toml shows key {key}");
            if CAPS.contains(&key.as_str()) {
                for sub in accepted_keys(&format!("plugin.x.{key}")) {
                    let shown = policy
                        .plugin_names()
                        .any(|p| has(&["plugin", p, key, &sub]));
                    assert!(shown, "examples.toml never shows [plugin.*.{key}] {sub}");
                }
            }
        }
        let mut caps: Vec<&str> = plugin_keys
            .iter()
            .map(String::as_str)
            .filter(|k| CAPS.contains(k))
            .collect();
        caps.sort_unstable();
        let mut all = CAPS.to_vec();
        all.sort_unstable();
        assert_eq!(caps, all, "CAPS and the plugin section's keys must agree");
    }
}
