//! The `http` tool: requests, health checks, pagination and downloads.
//!
//! Everything that touches the network happens in the host's `http` capability: this plugin
//! builds requests, shapes responses for an agent, and never sees a credential — a `profile`
//! names the auth, the host injects it.

mod args;
mod paginate;
mod respond;

use crate::caps::http::{self, KeyValue};
use infra_sdk::prelude::*;

use args::{Action, HttpArgs, Target};
use respond::HttpOutput;

const DESCRIPTION: &str = "HTTP requests through the host. Actions: `request` (any method; \
json/text/base64/form body; `profile` injects auth the plugin never sees), `check` (health: \
status in `expect_status`, optional `contains`), `paginate` (page/offset/cursor/Link header, \
bounded by `max_pages`), `download` (streams the body into an artifact). Retries with backoff \
on 408/429/5xx only for idempotent methods. Hosts are limited by policy.";

/// Builds the host request from the agent's arguments.
fn build_request(args: &Target, ctx: &Ctx, max_bytes: u64) -> Result<http::Request, ToolError> {
    let url = args.full_url()?;
    let method = args
        .method
        .clone()
        .unwrap_or_else(|| "GET".into())
        .to_ascii_uppercase();
    let mut headers: Vec<KeyValue> = args
        .headers
        .iter()
        .flatten()
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value: v.clone(),
        })
        .collect();
    let (body, content_type) = args.body()?;
    if let Some(ct) = content_type
        && !headers
            .iter()
            .any(|h| h.key.eq_ignore_ascii_case("content-type"))
    {
        headers.push(KeyValue {
            key: "content-type".into(),
            value: ct.into(),
        });
    }
    Ok(http::Request {
        method,
        url,
        headers,
        body,
        profile: args.profile.clone(),
        timeout_ms: ctx.timeout_ms,
        max_bytes,
        max_redirects: args.follow_redirects.unwrap_or(5),
        retries: args.retries.unwrap_or(2),
    })
}

fn run(args: HttpArgs, ctx: &Ctx) -> Result<HttpOutput, ToolError> {
    let target = &args.target;
    match args.action {
        Action::Request {
            response_type,
            max_bytes,
        } => {
            let req = build_request(target, ctx, max_bytes.unwrap_or(args::INLINE_MAX))?;
            let resp = http::send(&req)?;
            respond::response(resp, response_type, max_bytes)
        }
        Action::Check {
            expect_status,
            contains,
            max_bytes,
        } => {
            let req = build_request(target, ctx, max_bytes.unwrap_or(64 * 1024))?;
            let started = std::time::Instant::now();
            let resp = http::send(&req);
            Ok(respond::check(
                resp,
                expect_status.as_deref(),
                contains.as_deref(),
                started.elapsed().as_millis() as u64,
            ))
        }
        Action::Paginate(paging) => paginate::run(target, &paging, ctx),
        Action::Download { max_bytes } => {
            let req = build_request(target, ctx, max_bytes.unwrap_or(args::DOWNLOAD_MAX))?;
            let got = http::download(&req)?;
            Ok(respond::download(got, max_bytes))
        }
    }
}

infra_sdk::plugin!(tools: [
    Tool::new("http", "HTTP", DESCRIPTION, run).open_world(),
]);
