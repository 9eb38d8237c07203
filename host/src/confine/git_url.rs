//! git's URL rewriting (`url.<base>.insteadOf` / `pushInsteadOf`) as git applies it to a push
//! URL, so the host can prove the URL it checked is the URL git will use; and which transport a
//! URL takes, so only that one is switched on for the push.

/// One rewrite rule: URLs starting with `prefix` become `base` + the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The `<base>` of `url.<base>.*`.
    pub base: String,
    /// The prefix it replaces.
    pub prefix: String,
    /// A `pushInsteadOf` rule (else `insteadOf`).
    pub push: bool,
}

/// The rules in the output of `git config -z --get-regexp '^url\.'` (`key\nvalue\0`…).
pub fn rules(config: &[u8]) -> Vec<Rule> {
    let mut out = Vec::new();
    for entry in config.split(|b| *b == 0).filter(|e| !e.is_empty()) {
        let text = String::from_utf8_lossy(entry);
        let Some((key, value)) = text.split_once('\n') else {
            continue;
        };
        let Some(rest) = key.strip_prefix("url.") else {
            continue;
        };
        let lower = rest.to_ascii_lowercase();
        let (base, push) = if lower.ends_with(".pushinsteadof") {
            (&rest[..rest.len() - ".pushinsteadof".len()], true)
        } else if lower.ends_with(".insteadof") {
            (&rest[..rest.len() - ".insteadof".len()], false)
        } else {
            continue;
        };
        out.push(Rule {
            base: base.to_string(),
            prefix: value.to_string(),
            push,
        });
    }
    out
}

/// `url` rewritten as `git push` rewrites it: the longest matching `pushInsteadOf` prefix,
/// else the longest matching `insteadOf` prefix, else unchanged.
pub fn rewrite_for_push(url: &str, rules: &[Rule]) -> String {
    for push in [true, false] {
        let best = rules
            .iter()
            .filter(|r| r.push == push && !r.prefix.is_empty() && url.starts_with(&r.prefix))
            .max_by_key(|r| r.prefix.len());
        if let Some(r) = best {
            return format!("{}{}", r.base, &url[r.prefix.len()..]);
        }
    }
    url.to_string()
}

/// The transport a URL uses, as `protocol.<name>.allow` names it; `None` for one the host does
/// not push over (remote helpers such as `ext::`, which run commands).
pub fn transport(url: &str) -> Option<&'static str> {
    if url.starts_with("file://") || url.starts_with('/') {
        return Some("file");
    }
    for (scheme, name) in [
        ("ssh://", "ssh"),
        ("git+ssh://", "ssh"),
        ("ssh+git://", "ssh"),
        ("https://", "https"),
        ("http://", "http"),
        ("git://", "git"),
    ] {
        if url.starts_with(scheme) {
            return Some(name);
        }
    }
    // scp-like `user@host:path`: a colon before any slash, and no `::` (a remote helper).
    match (url.find(':'), url.find('/')) {
        _ if url.contains("::") => None,
        (Some(c), Some(s)) if c < s => Some("ssh"),
        (Some(_), None) => Some("ssh"),
        _ => None,
    }
}

/// The TCP port a URL connects to (its explicit port, else its transport's default); `None`
/// for `file` URLs, which connect to nothing.
pub fn port(url: &str) -> Option<u16> {
    let default = match transport(url)? {
        "ssh" => 22,
        "https" => 443,
        "http" => 80,
        "git" => 9418,
        _ => return None,
    };
    // `scheme://[user@]host[:port]/…`; the scp-like form has no port.
    let Some((_, rest)) = url.split_once("://") else {
        return Some(default);
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let explicit = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once("]:").map(|(_, p)| p),
        None => host_port.rsplit_once(':').map(|(_, p)| p),
    };
    Some(explicit.and_then(|p| p.parse().ok()).unwrap_or(default))
}

/// The local path of a `file` URL.
pub fn file_path(url: &str) -> Option<&str> {
    url.strip_prefix("file://")
        .or_else(|| url.starts_with('/').then_some(url))
}

/// The password of a URL's userinfo (`https://user:pass@host/…`), as written and
/// percent-decoded, so both spellings can be scrubbed; nothing for URLs without one.
pub fn userinfo_password(url: &str) -> Vec<String> {
    let Some(raw) = url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_string))
    else {
        return Vec::new();
    };
    let decoded = percent_decode(&raw);
    let mut out = vec![raw.clone()];
    if decoded != raw {
        out.push(decoded);
    }
    out
}

/// `%XX` escapes decoded (invalid ones kept as written).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewriting_follows_git() {
        let cfg = b"url.git@evil.example:.insteadof\ngit@github.com:\0url.file:///srv/x/.pushInsteadOf\nhttps://h/\0url.https://h/a/.insteadof\nhttps://h/\0";
        let r = rules(cfg);
        assert_eq!(r.len(), 3);
        assert_eq!(
            rewrite_for_push("git@github.com:acme/x.git", &r),
            "git@evil.example:acme/x.git"
        );
        assert_eq!(rewrite_for_push("https://h/y", &r), "file:///srv/x/y");
        assert_eq!(rewrite_for_push("ssh://other/z", &r), "ssh://other/z");
    }

    #[test]
    fn transports() {
        assert_eq!(transport("file:///srv/r.git"), Some("file"));
        assert_eq!(transport("/srv/r.git"), Some("file"));
        assert_eq!(transport("git@github.com:acme/x.git"), Some("ssh"));
        assert_eq!(transport("ssh://git@h:22/x"), Some("ssh"));
        assert_eq!(transport("https://github.com/acme/x"), Some("https"));
        assert_eq!(transport("ext::sh -c touch% /tmp/x"), None);
        assert_eq!(transport("relative/path"), None);
        assert_eq!(port("ssh://git@h:2222/x"), Some(2222));
        assert_eq!(port("git@github.com:acme/x.git"), Some(22));
        assert_eq!(port("https://u:p@h/x"), Some(443));
        assert_eq!(port("https://[::1]:8443/x"), Some(8443));
        assert_eq!(port("file:///srv/x"), None);
    }

    #[test]
    fn a_userinfo_password_is_found_in_both_spellings() {
        assert_eq!(
            userinfo_password("https://agent:p%40ss@forge.example/acme/app.git"),
            vec!["p%40ss".to_string(), "p@ss".to_string()]
        );
        assert!(userinfo_password("https://agent@forge.example/x.git").is_empty());
        assert!(userinfo_password("git@github.com:acme/x.git").is_empty());
    }
}
