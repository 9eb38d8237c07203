//! Scrubbing secrets from everything that leaves the host: results, artifacts, the audit log.
//!
//! Two nets, because either alone misses things. Known values: every credential the host
//! resolves is registered with the [`Redactor`] and replaced wherever it appears, even inside a
//! longer string or a JSON key. Secret-looking keys: a value under a key such as `password` or
//! `Authorization` is replaced even when the host never saw that value (a plugin that echoes a
//! header, a config file read from a server).

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, RwLock};

use serde_json::Value;

/// What a scrubbed secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Values shorter than this many characters are not registered: replacing every `a` or `42`
/// in a result would destroy it without protecting anything worth the name.
pub const MIN_SECRET_CHARS: usize = 4;

/// Body lines of a private key shorter than this are not registered on their own: the short
/// last line of a base64 body (`AAAA`, `Zg==`) occurs in unrelated text, and it is also inside
/// the whole key, which is registered.
const MIN_KEY_LINE_CHARS: usize = 16;

/// Words that mark a key's value as secret; compared against the key's words and its ending.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passphrase",
    "passwd",
    "token",
    "secret",
    "authorization",
    "cookie",
    "cookies",
];

/// Runs that mark a key as secret wherever they appear in its letters (`x-api-key`, `privateKey`).
const SECRET_RUNS: &[&str] = &["apikey", "privatekey"];

/// The set of known secret values, shared by every clone and growing at runtime.
#[derive(Clone, Default)]
pub struct Redactor {
    inner: Arc<RwLock<Vec<String>>>,
}

// A derived Debug would print the secrets themselves into logs.
impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.len())
            .finish()
    }
}

/// How `text` reads inside a JSON string (a spilled result, a jsonl export): `"`, `\` and
/// control characters arrive escaped, and the scrubber matches bytes, so that form is a secret too.
pub fn json_form(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    quoted
        .get(1..quoted.len().saturating_sub(1))
        .unwrap_or_default()
        .to_string()
}

impl Redactor {
    /// The redactor of this process: the one the router fills with the secrets it resolves and
    /// the log writer scrubs stderr with (logging starts before the router exists).
    pub fn process() -> Redactor {
        static PROCESS: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
        PROCESS.get_or_init(Redactor::default).clone()
    }

    /// An empty redactor (key-based scrubbing still applies).
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// Registers a secret value. Surrounding whitespace is dropped, because values read from
    /// files usually end in a newline that the secret's other appearances lack; values shorter
    /// than [`MIN_SECRET_CHARS`] are ignored. A multi-line value is registered with `\n` and
    /// with `\r\n` line ends (a pty turns every `\n` it passes into `\r\n`), and as it reads
    /// inside a JSON string.
    pub fn add(&self, secret: &str) {
        let secret = secret.trim();
        if secret.chars().count() < MIN_SECRET_CHARS {
            return;
        }
        let unix = secret.replace("\r\n", "\n");
        let crlf = unix.replace('\n', "\r\n");
        let json = json_form(secret);
        let mut values = self.inner.write().unwrap_or_else(|e| e.into_inner());
        for form in [secret.to_string(), unix, crlf, json] {
            if !values.contains(&form) {
                values.push(form);
            }
        }
    }

    /// Registers a private key's text (PEM or OpenSSH armour): the whole of it and each line
    /// of its body, so a key shown in part, re-wrapped or through a pty is scrubbed too. The
    /// armour and header lines say only what kind of key it is and are left alone.
    pub fn add_private_key(&self, text: &str) {
        self.add(text);
        for line in text.lines().map(str::trim) {
            let armour = line.starts_with("-----") || line.contains(": ");
            if !armour && line.len() >= MIN_KEY_LINE_CHARS {
                self.add(line);
            }
        }
    }

    /// How many secret values are registered.
    pub fn len(&self) -> usize {
        self.snapshot_len()
    }

    /// Whether no secret value is registered.
    pub fn is_empty(&self) -> bool {
        self.snapshot_len() == 0
    }

    fn snapshot_len(&self) -> usize {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn needles(&self) -> Vec<Vec<u8>> {
        let values = self.inner.read().unwrap_or_else(|e| e.into_inner());
        values.iter().map(|v| v.as_bytes().to_vec()).collect()
    }

    /// Replaces every occurrence of every known secret with [`REDACTED`]; borrows when clean.
    pub fn scrub_str<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let values = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let needles: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
        let spans = find_spans(text.as_bytes(), &needles);
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        // Both the text and the secrets are UTF-8, so every match starts and ends on a char
        // boundary and the result is UTF-8 too.
        let bytes = replace_spans(text.as_bytes(), &spans);
        Cow::Owned(
            String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        )
    }

    /// Like [`Redactor::scrub_str`] for bytes that may not be UTF-8.
    pub fn scrub_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let values = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let needles: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
        let spans = find_spans(bytes, &needles);
        if spans.is_empty() {
            Cow::Borrowed(bytes)
        } else {
            Cow::Owned(replace_spans(bytes, &spans))
        }
    }

    /// Scrubs a JSON value in place: known secrets in every string and key, and the whole
    /// value of any key that [`is_secret_key`] (booleans, nulls and `env:`/`file:` references
    /// are kept, since they reveal nothing).
    pub fn scrub_value(&self, value: &mut Value) {
        match value {
            Value::String(s) => {
                if let Cow::Owned(clean) = self.scrub_str(s) {
                    *s = clean;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_value(v)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (key, mut v) in entries {
                    if is_secret_key(&key) && reveals_something(&v) {
                        v = Value::String(REDACTED.to_string());
                    } else {
                        self.scrub_value(&mut v);
                    }
                    map.insert(self.scrub_str(&key).into_owned(), v);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// A scrubber for a byte stream, using the secrets known now.
    pub fn stream(&self) -> StreamScrubber {
        StreamScrubber::new(self)
    }
}

/// Whether a key's value should be hidden whatever it is: `password`, `db_password`,
/// `PGPASSWORD`, `access_token`, `authToken`, `Authorization`, `x-api-key`, `private_key`,
/// `Set-Cookie`, ... but not `max_tokens` or `include_secrets`, whose values are not secrets.
pub fn is_secret_key(key: &str) -> bool {
    let words = key_words(key);
    let compact: String = words.concat();
    words.iter().any(|w| SECRET_WORDS.contains(&w.as_str()))
        || SECRET_RUNS.iter().any(|r| compact.contains(r))
        || SECRET_WORDS.iter().any(|w| compact.ends_with(w))
}

/// Splits `db_password`, `x-api-key`, `authToken`, `APIKey` into lowercase words.
fn key_words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase() || c.is_numeric();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Booleans and nulls carry no secret; a reference names where a secret lives, which the
/// operator needs to see and which is useless without access to that place.
fn reveals_something(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(_) => false,
        Value::String(s) => !is_reference(s),
        _ => true,
    }
}

fn is_reference(s: &str) -> bool {
    ["env:", "file:"].iter().any(|p| {
        s.strip_prefix(p)
            .is_some_and(|rest| !rest.is_empty() && !rest.chars().any(char::is_whitespace))
    })
}

/// Every byte range covered by an occurrence of a needle, overlapping occurrences included,
/// merged and sorted.
fn find_spans(hay: &[u8], needles: &[impl AsRef<[u8]>]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    for needle in needles {
        let needle = needle.as_ref();
        if needle.is_empty() || needle.len() > hay.len() {
            continue;
        }
        // memmem is SIMD-accelerated: scrubbing keeps up with bulk exports.
        let finder = memchr::memmem::Finder::new(needle);
        let mut i = 0;
        // Restart one byte after each match start, so overlapping occurrences are all found.
        while let Some(off) = finder.find(&hay[i..]) {
            let s = i + off;
            spans.push((s, s + needle.len()));
            i = s + 1;
        }
    }
    if spans.len() > 1 {
        spans.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
        for (s, e) in spans {
            match merged.last_mut() {
                Some(last) if s < last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        spans = merged;
    }
    spans
}

fn replace_spans(bytes: &[u8], spans: &[(usize, usize)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    for &(s, e) in spans {
        out.extend_from_slice(&bytes[at..s]);
        out.extend_from_slice(REDACTED.as_bytes());
        at = e;
    }
    out.extend_from_slice(&bytes[at..]);
    out
}

/// Scrubs a byte stream chunk by chunk, catching secrets split across chunks; the output is
/// the same as [`Redactor::scrub_bytes`] of the whole stream, however it is cut.
///
/// It holds back the last (longest secret − 1) bytes of what it has seen, because those could
/// be the start of a secret the next chunk completes; [`StreamScrubber::finish`] releases them.
/// Overlapping occurrences are one redaction: a run of them that reaches into the held-back
/// bytes may still grow, so its marker goes out at once and its bytes are dropped as they come,
/// keeping only what a later occurrence could overlap. Memory stays bounded by the longest
/// secret whatever the stream holds.
#[derive(Clone)]
pub struct StreamScrubber {
    needles: Vec<Vec<u8>>,
    keep: usize,
    tail: Vec<u8>,
    /// `tail[..run_end]` is covered by a redaction already emitted that may still grow.
    run_end: usize,
}

impl fmt::Debug for StreamScrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamScrubber")
            .field("secrets", &self.needles.len())
            .field("held_back", &self.tail.len())
            .finish()
    }
}

impl StreamScrubber {
    /// A scrubber for the secrets `redactor` knows now; secrets added later do not apply to a
    /// stream already under way.
    pub fn new(redactor: &Redactor) -> StreamScrubber {
        let needles = redactor.needles();
        let keep = needles
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(0)
            .saturating_sub(1);
        StreamScrubber {
            needles,
            keep,
            tail: Vec::new(),
            run_end: 0,
        }
    }

    /// Scrubs the next chunk; returns the bytes that are now safe to write.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.needles.is_empty() {
            return chunk.to_vec();
        }
        let mut buf = std::mem::take(&mut self.tail);
        buf.extend_from_slice(chunk);
        let settled = buf.len().saturating_sub(self.keep);
        self.advance(buf, settled)
    }

    /// Scrubs and returns whatever was held back.
    pub fn finish(mut self) -> Vec<u8> {
        let buf = std::mem::take(&mut self.tail);
        let end = buf.len();
        self.advance(buf, end)
    }

    /// Emits `buf` up to `settled` — no occurrence completed by later bytes can start before
    /// it, since no secret is longer than `keep + 1` — and keeps the rest as the tail.
    fn advance(&mut self, buf: Vec<u8>, settled: usize) -> Vec<u8> {
        let mut spans = find_spans(&buf, &self.needles).into_iter().peekable();
        let mut out = Vec::new();
        let mut at = 0;
        if self.run_end > 0 {
            // Occurrences overlapping the open run join it (find_spans merges the same way).
            let mut end = self.run_end;
            while let Some(&(s, e)) = spans.peek() {
                if s >= end {
                    break;
                }
                end = end.max(e);
                spans.next();
            }
            if end > settled {
                self.hold(buf, settled, end);
                return out;
            }
            self.run_end = 0;
            at = end;
        }
        for (s, e) in spans {
            if s >= settled {
                // Found again with the next chunk, from the tail.
                break;
            }
            out.extend_from_slice(&buf[at..s]);
            out.extend_from_slice(REDACTED.as_bytes());
            if e > settled {
                // A later occurrence may still overlap this one and extend it.
                self.hold(buf, settled, e);
                return out;
            }
            at = e;
        }
        out.extend_from_slice(&buf[at..settled]);
        self.tail = buf[settled..].to_vec();
        out
    }

    /// Keeps `buf[from..]`, of which the first `run_end - from` bytes are in the open run.
    fn hold(&mut self, buf: Vec<u8>, from: usize, run_end: usize) {
        self.tail = buf[from..].to_vec();
        self.run_end = run_end - from;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn redactor(secrets: &[&str]) -> Redactor {
        let r = Redactor::new();
        for s in secrets {
            r.add(s);
        }
        r
    }

    fn stream_all(r: &Redactor, chunks: &[&[u8]]) -> Vec<u8> {
        let mut s = r.stream();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(s.push(c));
        }
        out.extend(s.finish());
        out
    }

    #[test]
    fn scrubs_every_occurrence_and_borrows_when_clean() {
        let r = redactor(&["hunter22", "ghp_abcdef"]);
        let out = r.scrub_str("pw=hunter22 token=ghp_abcdef again hunter22!");
        assert_eq!(out, "pw=[REDACTED] token=[REDACTED] again [REDACTED]!");
        assert!(matches!(r.scrub_str("nothing here"), Cow::Borrowed(_)));
        assert!(matches!(r.scrub_bytes(b"nothing"), Cow::Borrowed(_)));
        assert_eq!(&*r.scrub_bytes(b"\xffhunter22\xfe"), b"\xff[REDACTED]\xfe");
    }

    #[test]
    fn short_values_are_ignored_and_whitespace_trimmed() {
        let r = redactor(&["a", "abc", "  ", "", "tok3n\n"]);
        assert_eq!(r.len(), 1);
        assert_eq!(r.scrub_str("a abc tok3n"), "a abc [REDACTED]");
        r.add("tok3n");
        assert_eq!(r.len(), 1, "duplicates are not stored twice");
        // Four characters is enough even when they are multi-byte.
        let r = redactor(&["пароль"]);
        assert_eq!(r.scrub_str("x пароль y"), "x [REDACTED] y");
    }

    #[test]
    fn overlapping_and_nested_secrets_leave_no_fragment() {
        let r = redactor(&["abcdef", "cdefgh"]);
        assert_eq!(r.scrub_str("xxabcdefghxx"), "xx[REDACTED]xx");
        let r = redactor(&["secretvalue", "value"]);
        assert_eq!(
            r.scrub_str("a secretvalue b value"),
            "a [REDACTED] b [REDACTED]"
        );
        // Self-overlapping occurrences are covered as one run.
        let r = redactor(&["abab"]);
        assert_eq!(r.scrub_str("ababab"), "[REDACTED]");
        // A secret containing regex or format metacharacters is matched literally.
        let r = redactor(&["p@$$.*{0}"]);
        assert_eq!(r.scrub_str("x p@$$.*{0} y"), "x [REDACTED] y");
    }

    #[test]
    fn clones_share_secrets_added_later() {
        let r = Redactor::new();
        let clone = r.clone();
        r.add("late-secret");
        assert_eq!(clone.scrub_str("the late-secret"), "the [REDACTED]");
        assert!(
            !format!("{r:?}").contains("late-secret"),
            "Debug must not print secrets"
        );
    }

    #[test]
    fn secret_keys_are_recognised() {
        for key in [
            "password",
            "Password",
            "db_password",
            "DB-PASSWORD",
            "PGPASSWORD",
            "passphrase",
            "passwd",
            "token",
            "access_token",
            "authToken",
            "refresh-token",
            "githubtoken",
            "secret",
            "client_secret",
            "aws_secret_access_key",
            "Authorization",
            "Proxy-Authorization",
            "api_key",
            "apiKey",
            "APIKey",
            "x-api-key",
            "apikey",
            "private_key",
            "privateKey",
            "ssh-private-key",
            "cookie",
            "Set-Cookie",
            "cookies",
        ] {
            assert!(is_secret_key(key), "{key} should be secret");
        }
        for key in [
            "max_tokens",
            "tokens",
            "include_secrets",
            "secrets",
            "author",
            "keyboard",
            "public_key",
            "host_key",
            "user",
            "name",
            "passing",
            "path",
            "key_file",
        ] {
            assert!(!is_secret_key(key), "{key} should not be secret");
        }
    }

    #[test]
    fn scrub_value_walks_strings_keys_and_secret_keys() {
        let r = redactor(&["s3cr3t-value"]);
        let mut v = json!({
            "stdout": "connected with s3cr3t-value ok",
            "nested": [{"note": "s3cr3t-value"}, 7, null],
            "s3cr3t-value": "a key that is itself the secret",
            "headers": {"Authorization": "Bearer abc.def", "Accept": "*/*"},
            "password": "never-registered",
            "api_key": 123456,
            "auth": {"type": "bearer", "token": {"value": "x"}},
            "passphrase": "env:PROD_KEY_PASS",
            "private_key": "file:~/.ssh/id_ed25519",
            "client_secret": "env: spaced is not a reference",
            "include_secrets": true,
            "token": null,
            "max_tokens": 100,
        });
        r.scrub_value(&mut v);
        assert_eq!(v["stdout"], "connected with [REDACTED] ok");
        assert_eq!(v["nested"][0]["note"], "[REDACTED]");
        assert_eq!(v["[REDACTED]"], "a key that is itself the secret");
        assert!(v.get("s3cr3t-value").is_none());
        assert_eq!(v["headers"]["Authorization"], "[REDACTED]");
        assert_eq!(v["headers"]["Accept"], "*/*");
        assert_eq!(v["password"], "[REDACTED]");
        assert_eq!(v["api_key"], "[REDACTED]");
        assert_eq!(v["auth"]["type"], "bearer");
        assert_eq!(v["auth"]["token"], "[REDACTED]");
        assert_eq!(v["passphrase"], "env:PROD_KEY_PASS", "references are kept");
        assert_eq!(v["private_key"], "file:~/.ssh/id_ed25519");
        assert_eq!(v["client_secret"], "[REDACTED]");
        assert_eq!(v["include_secrets"], true);
        assert_eq!(v["token"], Value::Null);
        assert_eq!(v["max_tokens"], 100);
        assert!(!v.to_string().contains("s3cr3t-value"));
        assert!(!v.to_string().contains("never-registered"));
    }

    #[test]
    fn stream_catches_a_secret_split_across_chunks() {
        let r = redactor(&["SUPERSECRET", "tok3n"]);
        let text = b"head SUPERSECRET mid tok3n tail SUPERSECRET";
        let want = b"head [REDACTED] mid [REDACTED] tail [REDACTED]".to_vec();
        // Every way of cutting the stream into two or three chunks gives the same output.
        for i in 0..=text.len() {
            for j in i..=text.len() {
                let out = stream_all(&r, &[&text[..i], &text[i..j], &text[j..]]);
                assert_eq!(out, want, "cut at {i} and {j}");
            }
        }
        // One byte at a time.
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(stream_all(&r, &bytes), want);
    }

    #[test]
    fn stream_never_emits_a_secret_even_with_overlaps() {
        let r = redactor(&["abab", "babba"]);
        let text = b"xababababbabbaxxabab";
        for size in 1..=text.len() {
            let chunks: Vec<&[u8]> = text.chunks(size).collect();
            let out = stream_all(&r, &chunks);
            let out = String::from_utf8(out).unwrap();
            assert!(
                !out.contains("abab") && !out.contains("babba"),
                "chunk {size}: {out}"
            );
        }
    }

    #[test]
    fn stream_holds_back_only_what_it_must() {
        let r = redactor(&["0123456789"]);
        let mut s = StreamScrubber::new(&r);
        let out = s.push(b"abcdefghijklmnop");
        assert_eq!(out, b"abcdefg", "the last 9 bytes could start the secret");
        assert_eq!(s.push(b""), b"");
        assert_eq!(s.finish(), b"hijklmnop");
        // With no secrets registered the stream passes through untouched.
        let mut s = Redactor::new().stream();
        assert_eq!(s.push(b"abc"), b"abc");
        assert!(s.finish().is_empty());
    }

    #[test]
    fn multi_line_secrets_are_also_caught_with_pty_line_ends() {
        let r = redactor(&["first-line\nsecond-line"]);
        assert_eq!(
            r.scrub_str("a first-line\r\nsecond-line b"),
            "a [REDACTED] b"
        );
        assert_eq!(r.scrub_str("a first-line\nsecond-line b"), "a [REDACTED] b");
        let r = redactor(&["first-line\r\nsecond-line"]);
        assert_eq!(r.scrub_str("first-line\nsecond-line"), "[REDACTED]");
    }

    #[test]
    fn a_private_key_is_scrubbed_whole_and_line_by_line_but_not_its_armour() {
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\n\
                   b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n\
                   QyNTUxOQAAACDo0mEV7Cz3pZ1rV9xVh2bYFz1Q6JtYl5s8o1pV1o8r1wAAAJh1bq9KdW6v\n\
                   Zg==\n\
                   -----END OPENSSH PRIVATE KEY-----\n";
        let r = Redactor::new();
        r.add_private_key(key);
        assert_eq!(r.scrub_str(key).trim(), "[REDACTED]");
        let line = "QyNTUxOQAAACDo0mEV7Cz3pZ1rV9xVh2bYFz1Q6JtYl5s8o1pV1o8r1wAAAJh1bq9KdW6v";
        assert_eq!(r.scrub_str(&format!("x {line} y")), "x [REDACTED] y");
        let other = "-----BEGIN OPENSSH PRIVATE KEY-----\nZg==\n";
        assert_eq!(r.scrub_str(other), other, "armour and short lines stay");
    }

    #[test]
    fn a_secret_is_scrubbed_as_it_reads_inside_json() {
        let r = Redactor::new();
        r.add("pa\"ss\\word\n2");
        let text = serde_json::to_string(&serde_json::json!({"v": "x pa\"ss\\word\n2 y"})).unwrap();
        assert!(
            !text.contains("pa\"ss\\word\n2"),
            "the JSON holds only the escaped form, which the plain secret does not match: {text}"
        );
        let clean = r.scrub_str(&text);
        assert!(!clean.contains("word"), "{clean}");
        assert!(clean.contains("[REDACTED]"), "{clean}");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Secrets over a tiny alphabet, so they overlap each other and themselves often.
        fn secrets() -> impl Strategy<Value = Vec<String>> {
            prop::collection::vec("[ab\n]{4,9}", 1..4)
        }

        /// Filler and secrets interleaved: (take a secret?, which one, filler).
        fn pieces() -> impl Strategy<Value = Vec<(bool, usize, String)>> {
            prop::collection::vec((any::<bool>(), 0usize..4, "[abx\r\n]{0,6}"), 0..14)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// However the stream is cut into chunks, it is scrubbed as the whole would be.
            #[test]
            fn stream_equals_one_shot_at_any_chunking(
                secrets in secrets(),
                pieces in pieces(),
                cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
            ) {
                let r = Redactor::new();
                for s in &secrets {
                    r.add(s);
                }
                let mut body = Vec::new();
                for (take, i, filler) in &pieces {
                    if *take {
                        body.extend_from_slice(secrets[i % secrets.len()].as_bytes());
                    }
                    body.extend_from_slice(filler.as_bytes());
                }
                let mut at: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
                at.push(0);
                at.push(body.len());
                at.sort_unstable();
                let chunks: Vec<&[u8]> = at.windows(2).map(|w| &body[w[0]..w[1]]).collect();
                let streamed = stream_all(&r, &chunks);
                let whole = r.scrub_bytes(&body).into_owned();
                prop_assert_eq!(
                    String::from_utf8_lossy(&streamed),
                    String::from_utf8_lossy(&whole)
                );
            }
        }
    }
}
