//! The policy's tests: loading, refusals and their messages, and every check through `Policy`.
//! The pattern matcher's own tests sit beside it in `pattern.rs`.

use std::net::IpAddr;

use toml::de::DeTable;

use super::error::locate;
use super::*;
use crate::flags::Flags;

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

/// A policy granting plugin `p` http to `hosts`, minus `deny`.
pub(super) fn http_policy(hosts: &[&str], deny: &[&str]) -> Policy {
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
    let e = load_err("[plugin.p.http]\nhosts = ['*']\ndeny_hosts = ['10.0.0.1:22']\n").to_string();
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
    for cap in Cap::ALL.iter().map(|c| c.name()) {
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
    let off = p.check_exec_program("r", "sh", &Flags::SAFE);
    assert!(
        off.reason()
            .is_some_and(|r| r.contains("INFRA_UNSAFE_LOCAL=1")),
        "an unsafe grant without the flag names the flag: {off:?}"
    );
    assert!(
        !p.check_exec_program("s", "sh", &Flags::SAFE)
            .reason()
            .unwrap()
            .contains("INFRA_UNSAFE_LOCAL"),
        "no unsafe grant: the advice is the allowlist"
    );
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
        [
            "gitops", "http", "k8s", "local", "pipeline", "psql", "repo", "ssh"
        ]
    );
    // repo: the directory infra started in, read-only, git and kubectl, no remote, no network.
    let workspace = p.root("workspace").expect("the workspace root");
    assert!(workspace.read_only && workspace.path == std::path::Path::new("."));
    assert!(p.check_fs_root("repo", "workspace").is_allowed());
    assert!(p.fs_read_only("repo"));
    assert!(
        p.check_exec_program("repo", "git", &Flags::SAFE)
            .is_allowed()
    );
    assert!(
        !p.check_exec_program("repo", "sh", &Flags::SAFE)
            .is_allowed()
    );
    assert!(!p.exec_grant("repo").expect("exec grant").network);
    assert!(
        !p.check_git_remote("repo", "git@github.com:acme/x.git")
            .is_allowed()
    );
    // gitops: terraform in the read-only workspace (it writes nowhere until a root is added),
    // no network.
    assert!(
        p.check_exec_program("gitops", "terraform", &Flags::SAFE)
            .is_allowed()
    );
    assert!(!p.exec_grant("gitops").expect("exec grant").network);
    assert!(!p.root("workspace").expect("workspace").protected);
    // gitops: kubectl (render, plan) in the workspace too; no git, no remote (propose needs the
    // operator's grants).
    assert!(
        p.check_exec_program("gitops", "kubectl", &Flags::SAFE)
            .is_allowed()
    );
    assert!(
        !p.check_exec_program("gitops", "git", &Flags::SAFE)
            .is_allowed()
    );
    assert!(p.check_exec_root("gitops", "workspace").is_allowed());
    assert!(
        !p.check_git_remote("gitops", "git@github.com:acme/x.git")
            .is_allowed()
    );
    // local: unsafe grants that hold only with the flag.
    let on = Flags {
        unsafe_local: true,
        ..Flags::SAFE
    };
    assert!(!p.fs_unsafe("local", &Flags::SAFE) && p.fs_unsafe("local", &on));
    assert!(!p.exec_unsafe("local", &Flags::SAFE) && p.exec_unsafe("local", &on));
    assert!(
        !p.check_exec_program("local", "sh", &Flags::SAFE)
            .is_allowed()
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
    let text = include_str!("../../../policies/examples.toml");
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
        if Cap::parse(key).is_some() {
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
        .filter(|k| Cap::parse(k).is_some())
        .collect();
    caps.sort_unstable();
    let mut all: Vec<&str> = Cap::ALL.iter().map(|c| c.name()).collect();
    all.sort_unstable();
    assert_eq!(
        caps, all,
        "Cap::ALL and the plugin section's keys must agree"
    );
}

#[test]
fn a_root_can_be_protected() {
    let p = load(
        "[roots]\nprod = { path = '/srv/prod', read_only = false, protected = true }\nlab = { path = '/srv/lab' }\n",
    );
    assert!(p.root("prod").expect("prod").protected);
    assert!(!p.root("lab").expect("lab").protected);
}
