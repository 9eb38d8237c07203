//! What a profile's credentials add to a request, and teaching the redactor their wire form.

use base64::Engine as _;

use crate::caps::infra::host::types::CapError;
use crate::profiles::{HttpAuth, HttpProfile};

/// Teaches `redactor` the header values a profile's auth sends. The wire form of a credential
/// (e.g. base64 of user:password) is as secret as the credential: a server, a remote command or
/// a database may echo it back long before any http call used the profile.
pub(super) fn register_auth(auth: &[(String, String)], redactor: &crate::redact::Redactor) {
    for (name, value) in auth {
        if is_plain_header(name) {
            continue;
        }
        redactor.add(value);
        // "Bearer <token>" / "Basic <base64>": the credential also appears on its own.
        if name.eq_ignore_ascii_case("authorization")
            && let Some((_, encoded)) = value.split_once(' ')
        {
            redactor.add(encoded);
        }
    }
}

/// Literal profile headers that carry no credential. Their values are everyday words
/// ("application/json") that, registered as secrets, would be erased from every output; every
/// other literal header is treated as a secret, since API keys end up there.
fn is_plain_header(name: &str) -> bool {
    const PLAIN: &[&str] = &[
        "accept",
        "accept-language",
        "content-type",
        "user-agent",
        "cache-control",
        "x-github-api-version",
    ];
    PLAIN.iter().any(|p| p.eq_ignore_ascii_case(name))
}

/// Registers the wire form of every http profile's credentials whose references resolve now,
/// and the values of its literal `headers`, which often carry keys too; and every Kubernetes
/// profile's token and client key (from a kubeconfig too, with their base64 spellings).
pub fn register_profile_secrets(
    profiles: &crate::profiles::Profiles,
    redactor: &crate::redact::Redactor,
) {
    for p in profiles.values() {
        match p {
            crate::profiles::Profile::Http(h) => {
                if let Ok(sent) = profile_headers(h) {
                    register_auth(&sent, redactor);
                }
            }
            crate::profiles::Profile::Kubernetes(k) => {
                // One that cannot be read now is reported when a call uses it.
                if let Ok(creds) = k.resolve() {
                    creds.register(redactor);
                }
            }
            _ => {}
        }
    }
}

/// Every header a profile adds: its auth, resolved now, then its literal `headers`.
pub(super) fn profile_headers(profile: &HttpProfile) -> Result<Vec<(String, String)>, CapError> {
    let mut sent = auth_headers(profile)?;
    sent.extend(profile.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(sent)
}

/// The headers a profile's auth adds, resolved now.
fn auth_headers(profile: &HttpProfile) -> Result<Vec<(String, String)>, CapError> {
    let resolve = |r: &crate::profiles::SecretRef| {
        r.resolve().map_err(|e| CapError::Failed(format!("{e:#}")))
    };
    Ok(match &profile.auth {
        None => vec![],
        Some(HttpAuth::Bearer { token }) => vec![(
            "authorization".into(),
            format!("Bearer {}", resolve(token)?),
        )],
        Some(HttpAuth::Basic { user, password }) => {
            let raw = format!("{user}:{}", resolve(password)?);
            vec![(
                "authorization".into(),
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                ),
            )]
        }
        Some(HttpAuth::Header { name, value }) => vec![(name.clone(), resolve(value)?)],
    })
}
