//! What the server quotes of a password, in every form it can take on the way out: JSON and
//! CSV escaping, and the server's own clipping of long values.

use std::borrow::Cow;

use crate::caps::infra::host::postgres::{CopyInResult, CopyResult, PgError, Rows, SqlError};
use crate::caps::infra::host::types::CapError;
use crate::redact::{MIN_SECRET_CHARS, REDACTED};

/// How a password reads once reflected inside a JSON string (rows, jsonl exports: `"`, `\` and
/// control characters escaped) or a quoted CSV field (csv exports: `"` doubled), when that
/// differs from the password itself: the scrubber matches bytes, so each form is a secret too.
pub(super) fn quoted_forms(pw: &str) -> Vec<String> {
    let json = crate::redact::json_form(pw);
    let csv = pw.replace('"', "\"\"");
    let mut forms: Vec<String> = vec![json, csv];
    forms.retain(|f| f != pw);
    forms.dedup();
    forms
}

/// The server clips what it quotes: values in "Failing row contains (…)" to 64 bytes followed by
/// `...`, identifiers to 63 bytes. A password clipped so is no longer the secret the scrubber
/// matches, so a prefix of it (at least [`MIN_SECRET_CHARS`] long) is redacted where a clipped
/// text ends: before `...`, before a closing quote (`"`, or `\"` inside JSON text) or at the end.
pub(super) fn unclip<'a>(text: &'a str, pw: &str) -> Cow<'a, str> {
    let head = match pw.char_indices().nth(MIN_SECRET_CHARS) {
        Some((i, _)) => &pw[..i],
        None => return Cow::Borrowed(text),
    };
    let ends_clip = |rest: &str| {
        rest.is_empty()
            || rest.starts_with("...")
            || rest.starts_with('"')
            || rest.starts_with("\\\"")
    };
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for start in memchr::memmem::find_iter(text.as_bytes(), head.as_bytes()) {
        let rest = &text[start..];
        // The longest prefix of the password here, then every shorter one down to the head.
        let common = rest
            .char_indices()
            .zip(pw.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((i, c), _)| i + c.len_utf8());
        let clipped = (head.len()..=common)
            .rev()
            .filter(|&k| pw.is_char_boundary(k) && k < pw.len())
            .find(|&k| ends_clip(&rest[k..]));
        if let Some(k) = clipped
            && spans.last().is_none_or(|&(_, e)| e <= start)
        {
            spans.push((start, start + k));
        }
    }
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (s, e) in spans {
        out.push_str(&text[at..s]);
        out.push_str(REDACTED);
        at = e;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// A result whose text [`Target::unclip`] goes over.
pub(super) trait Unclip {
    fn map_text(self, f: &impl Fn(String) -> String) -> Self;
}

impl Unclip for Rows {
    fn map_text(self, f: &impl Fn(String) -> String) -> Self {
        Rows {
            columns_json: f(self.columns_json),
            rows_json: f(self.rows_json),
            ..self
        }
    }
}

impl Unclip for Vec<Rows> {
    fn map_text(self, f: &impl Fn(String) -> String) -> Self {
        self.into_iter().map(|r| r.map_text(f)).collect()
    }
}

impl Unclip for CopyResult {
    fn map_text(self, _: &impl Fn(String) -> String) -> Self {
        self
    }
}

impl Unclip for CopyInResult {
    fn map_text(self, _: &impl Fn(String) -> String) -> Self {
        self
    }
}

/// Applies `f` to an error's message, keeping its kind, SQLSTATE and position.
pub(super) fn map_message(e: PgError, f: impl Fn(String) -> String) -> PgError {
    match e {
        PgError::Sql(s) => PgError::Sql(SqlError {
            message: f(s.message),
            ..s
        }),
        PgError::Cap(c) => PgError::Cap(match c {
            CapError::Denied(m) => CapError::Denied(f(m)),
            CapError::NotFound(m) => CapError::NotFound(f(m)),
            CapError::Invalid(m) => CapError::Invalid(f(m)),
            CapError::Timeout(m) => CapError::Timeout(f(m)),
            CapError::Failed(m) => CapError::Failed(f(m)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_forms_are_how_json_and_csv_write_a_password() {
        assert!(quoted_forms("plain-secret").is_empty());
        assert_eq!(
            quoted_forms("a\"b\\c\n"),
            vec!["a\\\"b\\\\c\\n".to_string(), "a\"\"b\\c\n".to_string()]
        );
    }

    #[test]
    fn what_the_server_clipped_of_a_password_is_redacted() {
        let pw = "pgcanary-0123456789";
        for (text, want) in [
            (
                "Failing row contains (xxxxpgcanary-0123..., null).",
                "Failing row contains (xxxx[REDACTED]..., null).",
            ),
            (
                r#"[{"name":"xxpgcanary-01"}]"#,
                r#"[{"name":"xx[REDACTED]"}]"#,
            ),
            (r#"{\"k\":\"xpgca\"}"#, r#"{\"k\":\"x[REDACTED]\"}"#),
            ("ends in pgcanary-0", "ends in [REDACTED]"),
            ("pgcanary is a word", "pgcanary is a word"),
            ("pgc...", "pgc..."),
            (
                "the whole pgcanary-0123456789 is the scrubber's",
                "the whole pgcanary-0123456789 is the scrubber's",
            ),
        ] {
            assert_eq!(unclip(text, pw), want, "{text}");
        }
        assert_eq!(unclip("abc...", "abcd"), "abc...");
    }
}
