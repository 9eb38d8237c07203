//! Why a policy did not load, and where: TOML line lookup and serde's messages rewritten to name
//! the file, the section, the key and the line.

use std::fmt;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// The policy's text and parsed document, so an error can name the file, the place and the line.
pub(super) struct Doc<'a> {
    /// The text, for line numbers.
    pub(super) text: &'a str,
    /// The file path or [`super::EMBEDDED_ORIGIN`].
    pub(super) origin: &'a str,
    /// The parsed document, for spans.
    pub(super) table: &'a DeTable<'a>,
}

impl Doc<'_> {
    /// The error of a bad value at `path` (under `key`, element `index`), located in the file.
    pub(super) fn invalid(
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
            line: locate(self.table, &full, index).map(|s| line_at(self.text, s.start)),
            message,
        }
    }
}

/// A policy that could not be loaded; the message names the file, the place and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    /// The text is not TOML.
    Syntax {
        /// The file path or [`super::EMBEDDED_ORIGIN`].
        origin: String,
        /// 1-based line of the error, when known.
        line: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// A key the format does not have (a typo, or a setting from another version).
    UnknownKey {
        /// The file path or [`super::EMBEDDED_ORIGIN`].
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
        /// The file path or [`super::EMBEDDED_ORIGIN`].
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

/// How messages name a section: `[plugin.x.http]`, or the top level.
pub(super) fn section_name(path: &[&str]) -> String {
    if path.is_empty() {
        "the top level".to_string()
    } else {
        format!("[{}]", path.join("."))
    }
}

/// The 1-based line of a byte offset.
pub(super) fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The span of the value at `path` (and array element `index`) in the parsed document.
pub(super) fn locate(
    doc: &DeTable<'_>,
    path: &[&str],
    index: Option<usize>,
) -> Option<Range<usize>> {
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
pub(super) fn serde_error(
    e: &toml::de::Error,
    doc: &DeTable<'_>,
    text: &str,
    origin: &str,
) -> PolicyError {
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
