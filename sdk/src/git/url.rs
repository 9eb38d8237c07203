//! Remote URLs as outputs show them.

/// `url` with the password of its user part replaced by `***`: a URL may carry a credential
/// the host does not know about, and it must not reach the agent.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((user, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    match user.split_once(':') {
        Some((name, _)) => format!("{scheme}://{name}:***@{host}{path}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(
            mask_url("https://me:s3cret@forge.example/a.git"),
            "https://me:***@forge.example/a.git"
        );
        assert_eq!(
            mask_url("git@github.com:acme/x.git"),
            "git@github.com:acme/x.git"
        );
        assert_eq!(mask_url("ssh://git@h:22/x"), "ssh://git@h:22/x");
    }
}
