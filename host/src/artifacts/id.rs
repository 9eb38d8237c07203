//! Artifact ids: one strict grammar, checked whenever a URI comes in, so an `artifact://` URI
//! from an agent can only ever name a file directly inside the store's directory.

use std::fmt;

use time::OffsetDateTime;

use super::{ArtifactError, URI_SCHEME};

/// Longest extension hint, dots included (`tar.gz` is 6).
const MAX_EXTENSION: usize = 16;

/// A validated artifact id; only [`ArtifactId::parse`] and the store create one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArtifactId(String);

impl ArtifactId {
    /// Checks an id against the grammar `yyyymmddThhmmss-xxxxxxxx[.ext]` (lowercase hex;
    /// `ext` is dot-separated runs of lowercase letters and digits, at most 16 bytes).
    pub fn parse(id: &str) -> Result<ArtifactId, String> {
        let b = id.as_bytes();
        let (base, ext) = match id.find('.') {
            Some(i) => (&b[..i], Some(&id[i + 1..])),
            None => (b, None),
        };
        let digits = |r: &[u8]| r.iter().all(u8::is_ascii_digit);
        let hex = |r: &[u8]| {
            r.iter()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
        };
        if base.len() != 24
            || !digits(&base[..8])
            || base[8] != b'T'
            || !digits(&base[9..15])
            || base[15] != b'-'
            || !hex(&base[16..])
        {
            return Err("the id must look like 20250101T120000-0a1b2c3d".into());
        }
        if let Some(ext) = ext {
            check_extension(ext)?;
        }
        Ok(ArtifactId(id.to_string()))
    }

    /// Parses an `artifact://<id>` URI.
    pub fn from_uri(uri: &str) -> Result<ArtifactId, ArtifactError> {
        let invalid = |reason: String| ArtifactError::InvalidUri {
            uri: uri.to_string(),
            reason,
        };
        let id = uri
            .strip_prefix(URI_SCHEME)
            .ok_or_else(|| invalid(format!("it does not start with {URI_SCHEME}")))?;
        ArtifactId::parse(id).map_err(invalid)
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `artifact://` URI of this id.
    pub fn uri(&self) -> String {
        format!("{URI_SCHEME}{}", self.0)
    }

    pub(super) fn sidecar_name(&self) -> String {
        format!("{}.json", self.0)
    }
}

impl fmt::Display for ArtifactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(super) fn check_extension(ext: &str) -> Result<(), String> {
    let ok = !ext.is_empty()
        && ext.len() <= MAX_EXTENSION
        && ext.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "extension '{ext}' must be up to {MAX_EXTENSION} lowercase letters and digits, dot-separated (csv, jsonl, tar.gz)"
        ))
    }
}

/// The extension an id gets for a media type, so a saved artifact opens in the right program.
/// Only this fixed table feeds ids: a media type from a remote server never reaches a path.
pub fn extension_for(media_type: &str) -> Option<&'static str> {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(match essence.as_str() {
        "text/csv" => "csv",
        "application/json" => "json",
        "application/x-ndjson"
        | "application/jsonl"
        | "application/jsonlines"
        | "application/x-jsonlines" => "jsonl",
        "text/plain" => "txt",
        "text/markdown" => "md",
        "text/html" => "html",
        "application/xml" | "text/xml" => "xml",
        "application/yaml" | "application/x-yaml" | "text/yaml" => "yaml",
        "application/sql" => "sql",
        "application/gzip" | "application/x-gzip" => "gz",
        "application/x-tar" => "tar",
        "application/zip" => "zip",
        "application/pdf" => "pdf",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        _ => return None,
    })
}

/// A fresh id for an artifact published at `now`, with `extension` when its media type has one.
pub(super) fn new_id(now: OffsetDateTime, extension: Option<&str>) -> ArtifactId {
    let mut id = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}-{:08x}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        rand::random::<u32>()
    );
    if let Some(ext) = extension {
        id.push('.');
        id.push_str(ext);
    }
    ArtifactId(id)
}
