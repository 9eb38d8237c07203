//! The arguments of the `http` tool: the request every action sends, and per `action` its own
//! fields.

use std::collections::BTreeMap;

use infra_sdk::prelude::*;

/// Default cap on an inline response body.
pub const INLINE_MAX: u64 = 1024 * 1024;
/// Default cap on a download: as large as the host allows (its `limits.artifact_bytes`).
pub const DOWNLOAD_MAX: u64 = u64::MAX;

/// How to return the response body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResponseType {
    /// JSON when the content type says so or it parses, else text, else base64.
    #[default]
    Auto,
    /// Parse as JSON (error if it is not).
    Json,
    /// UTF-8 text (invalid bytes replaced).
    Text,
    /// Raw bytes as base64.
    Base64,
}

/// How `paginate` finds the next page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PageMode {
    /// Follow `Link: <…>; rel="next"` headers.
    #[default]
    Link,
    /// Increment a page-number query parameter.
    Page,
    /// Increment an offset query parameter by the number of items received.
    Offset,
    /// Pass the cursor found at `cursor_path` of each response as a query parameter.
    Cursor,
}

/// Arguments of the `http` tool: what every action sends, and the action with its own fields.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
pub struct HttpArgs {
    /// The request every action sends.
    #[serde(flatten)]
    pub target: Target,
    /// What to do, with the fields only that action takes.
    #[serde(flatten)]
    pub action: Action,
}

/// What to do.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// One request; returns status, headers and the body.
    Request {
        /// How to return the body (default auto).
        response_type: Option<ResponseType>,
        /// Cap on the body kept (default 1 MiB). The host clamps it to its limits and says so in
        /// `clamped`.
        max_bytes: Option<u64>,
    },
    /// A health check: healthy when the status is expected and the body contains `contains`.
    Check {
        /// Statuses that count as healthy (default 200–399).
        expect_status: Option<Vec<u16>>,
        /// Text the body must contain.
        contains: Option<String>,
        /// Cap on the body read (default 64 KiB). The host clamps it to its limits and says so
        /// in `clamped`.
        max_bytes: Option<u64>,
    },
    /// Follows pages and collects items.
    Paginate(Paging),
    /// Streams the body into an artifact.
    Download {
        /// Cap on the stored size (default the host's limit). The host clamps it to its limits
        /// and says so in `clamped`.
        max_bytes: Option<u64>,
    },
}

/// How `paginate` walks the pages.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct Paging {
    /// How to find the next page (default link).
    pub page_mode: Option<PageMode>,
    /// The query parameter carrying the page number, offset or cursor.
    pub page_param: Option<String>,
    /// Dot path of the item array in each page (default: the body itself, or `items`/`data`/`results`).
    pub items_path: Option<String>,
    /// Cursor mode: dot path of the next cursor in each page.
    pub cursor_path: Option<String>,
    /// First page number or offset (default 1 for page, 0 for offset).
    pub start: Option<u64>,
    /// Pages fetched at most (default 10, at most 100).
    pub max_pages: Option<u32>,
    /// Items collected at most (default 1000).
    pub max_items: Option<u32>,
}

/// The request every action sends: where, how, and with which body.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Target {
    /// Absolute URL, or a path relative to the profile's base URL (a cluster's API server)
    /// when `profile` is set.
    pub url: Option<String>,
    /// A `profiles.json` entry of type http (base URL and auth) or kubernetes (API server, CA,
    /// token or client certificate), injected by the host.
    pub profile: Option<String>,
    /// HTTP method (default GET).
    pub method: Option<String>,
    /// Query parameters added to the URL.
    pub query: Option<BTreeMap<String, Value>>,
    /// Request headers.
    pub headers: Option<BTreeMap<String, String>>,
    /// JSON body (sets content-type application/json).
    pub json: Option<Value>,
    /// Text body.
    pub body: Option<String>,
    /// Binary body as base64.
    pub body_base64: Option<String>,
    /// Form body (application/x-www-form-urlencoded).
    pub form: Option<BTreeMap<String, String>>,
    /// Redirects to follow (default 5; 0 = none). Each hop is re-checked by the policy.
    pub follow_redirects: Option<u32>,
    /// Retries on 408/429/5xx for idempotent methods (default 2).
    pub retries: Option<u32>,
}

impl Target {
    /// The URL with `query` appended.
    pub fn full_url(&self) -> Result<String, ToolError> {
        let url = match (&self.url, &self.profile) {
            (Some(u), _) => u.clone(),
            (None, Some(_)) => String::new(),
            (None, None) => {
                return Err(ToolError::invalid(
                    "url",
                    "missing: give an absolute `url`, or a `profile` and a path in `url`",
                ));
            }
        };
        if self.profile.is_none() && !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ToolError::invalid(
                "url",
                format!(
                    "'{url}' is not an absolute http(s) URL; write it as https://host/path or name a `profile`"
                ),
            ));
        }
        Ok(with_query(&url, self.query.iter().flatten()))
    }

    /// The body bytes and the content type they imply; at most one body field may be set.
    pub fn body(&self) -> Result<(Option<Vec<u8>>, Option<&'static str>), ToolError> {
        let set = [
            self.json.is_some(),
            self.body.is_some(),
            self.body_base64.is_some(),
            self.form.is_some(),
        ];
        if set.iter().filter(|s| **s).count() > 1 {
            return Err(ToolError::invalid(
                "body",
                "give only one of `json`, `body`, `body_base64`, `form`",
            ));
        }
        if let Some(j) = &self.json {
            return Ok((Some(j.to_string().into_bytes()), Some("application/json")));
        }
        if let Some(t) = &self.body {
            return Ok((
                Some(t.clone().into_bytes()),
                Some("text/plain; charset=utf-8"),
            ));
        }
        if let Some(b) = &self.body_base64 {
            let bytes = infra_sdk::decode_base64("body_base64", b)?;
            return Ok((Some(bytes), Some("application/octet-stream")));
        }
        if let Some(f) = &self.form {
            let encoded = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(f)
                .finish();
            return Ok((
                Some(encoded.into_bytes()),
                Some("application/x-www-form-urlencoded"),
            ));
        }
        Ok((None, None))
    }
}

/// Appends query parameters to a URL (strings as-is, other JSON values as their text).
pub fn with_query<'a>(
    url: &str,
    query: impl IntoIterator<Item = (&'a String, &'a Value)>,
) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in query {
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        ser.append_pair(k, &text);
        any = true;
    }
    if !any {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", ser.finish())
}
