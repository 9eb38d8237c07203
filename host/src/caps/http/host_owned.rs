//! The parts of a request that are the host's to decide, whoever asks: methods that reflect or
//! tunnel, and headers that address, encode or frame the exchange.

/// Methods refused, with why.
const METHODS: &[(&str, &str)] = &[
    (
        "TRACE",
        "it makes the server echo the request, injected credentials included, back into the body",
    ),
    (
        "TRACK",
        "it makes the server echo the request, injected credentials included, back into the body",
    ),
    (
        "CONNECT",
        "it opens a tunnel through the server to a host the policy never checked",
    ),
];

/// Request headers refused, with why and what to do instead.
const HEADERS: &[(&str, &str)] = &[
    (
        "host",
        "the host addresses the request from the URL, and another Host would reach a virtual host the policy never checked; put that host in `url`",
    ),
    (
        "accept-encoding",
        "a compressed body hides a reflected secret from the scrubber, so the host asks for identity encoding itself; remove it",
    ),
    (
        "te",
        "a transfer coding hides a reflected secret from the scrubber; remove it",
    ),
    (
        "transfer-encoding",
        "the host frames the request body itself; remove it",
    ),
    (
        "content-length",
        "the host frames the request body itself; remove it",
    ),
    (
        "upgrade",
        "switching protocols would leave HTTP and the host's checks; remove it",
    ),
];

/// Why `method` is refused, if it is.
pub fn refused_method(method: &str) -> Option<String> {
    METHODS
        .iter()
        .find(|(m, _)| m.eq_ignore_ascii_case(method.trim()))
        .map(|(m, why)| {
            format!("{m} is refused: {why}; use GET, HEAD or the method the API documents")
        })
}

/// Why header `name` is refused, if it is.
pub fn refused_header(name: &str) -> Option<String> {
    HEADERS
        .iter()
        .find(|(h, _)| h.eq_ignore_ascii_case(name.trim()))
        .map(|(_, why)| format!("'{}' is the host's to set: {why}", name.trim()))
}

/// Headers the host sends with every request, in place of the ones refused above.
pub const SENT: &[(&str, &str)] = &[
    // Told `identity`, a server sends the body as is, where the scrubber can read it. One that
    // compresses anyway breaks HTTP; its reflection reaches the agent compressed (a residual
    // risk: such a server is hostile, and then it holds the secret already).
    ("accept-encoding", "identity"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_case_and_padding_is_caught() {
        for m in ["TRACE", "trace", "Track", " CONNECT "] {
            assert!(refused_method(m).is_some(), "{m}");
        }
        for m in ["GET", "POST", "PATCH", "OPTIONS", "PROPFIND"] {
            assert!(refused_method(m).is_none(), "{m}");
        }
        for h in [
            "Host",
            "HOST",
            "accept-encoding",
            "Accept-Encoding ",
            "TE",
            "Transfer-Encoding",
        ] {
            let why = refused_header(h).unwrap_or_else(|| panic!("{h}"));
            assert!(why.contains("host's to set"), "{why}");
        }
        for h in ["Accept", "X-Host", "Content-Type", "Tenant"] {
            assert!(refused_header(h).is_none(), "{h}");
        }
    }
}
