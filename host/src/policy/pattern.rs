//! The pattern matcher, pure: name globs, host patterns, and the canonical forms of host names
//! and addresses that both the patterns and the checked targets go through.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// A name pattern: `*` matches any run of characters, `?` any one; everything else is literal.
///
/// Hand-written rather than `globset`, for its semantics: the names it matches (profiles, ssh
/// targets, secrets, roots, programs) may hold `[`, `]`, `{`, `}` and `\` literally, which
/// `globset` reads as classes, alternations and escapes — a pattern would then match other names
/// than it says, and policies that load today would be refused. It is also twenty lines with no
/// regex engine behind it, linear in practice, and never exponential on a hostile name.
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
    pub(super) host: HostMatch,
    pub(super) port: Option<u16>,
}

/// What the host part of a pattern matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HostMatch {
    Any,
    Name(String),
    Subdomains(String),
    Ip(IpAddr),
    Net(IpNet),
}

/// A host to check, after the same normalisation the patterns went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
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

    /// Whether the pattern admits `target` on `port`.
    pub(super) fn matches_target(&self, target: &Target, port: u16) -> bool {
        self.port.is_none_or(|p| p == port) && self.matches_host(target)
    }

    /// Whether the pattern's host part matches `target`, whatever the port.
    pub(super) fn matches_host(&self, target: &Target) -> bool {
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
    pub(super) fn is_address(&self) -> bool {
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
pub(super) fn normalize_host(host: &str) -> Result<Target, String> {
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
pub(super) fn canonical_ip(ip: IpAddr) -> IpAddr {
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
pub(super) fn is_unspecified(ip: IpAddr) -> bool {
    ip_forms(ip).iter().any(|f| match f {
        IpAddr::V4(v4) => v4.octets()[0] == 0,
        IpAddr::V6(v6) => v6.is_unspecified(),
    })
}

/// `host:port` as messages show it (IPv6 in brackets).
pub(super) fn host_port(target: &Target, port: u16) -> String {
    match target {
        Target::Name(n) => format!("{n}:{port}"),
        Target::Ip(IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
        Target::Ip(ip) => format!("{ip}:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use crate::policy::tests::http_policy;

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
}
