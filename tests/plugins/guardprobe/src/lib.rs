//! Test plugin: `guardprobe` asks `guard.approve` for each intent it is given (in order), may
//! wait while it holds them (so a concurrent call meets the lock), then sends each raw HTTP
//! request and returns what the host answered, refusals unchanged. It checks nothing itself:
//! every refusal a test sees comes from the host.

use crate::caps::guard::{self, WriteIntent};
use crate::caps::http::{self, Request};
use infra_sdk::prelude::*;

/// One write intent, field for field.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Intent {
    /// Kind of target.
    kind: String,
    /// Target name.
    target: String,
    /// Namespaces touched.
    #[serde(default)]
    namespaces: Vec<String>,
    /// The plan shown to the user.
    #[serde(default)]
    plan: String,
}

/// One raw HTTP request.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Outbound {
    /// Method.
    method: String,
    /// URL (relative to the profile's server with `profile`).
    url: String,
    /// Profile.
    profile: Option<String>,
    /// Body text.
    body: Option<String>,
}

/// Arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    /// What the call would change; the host reads it, the plugin does not.
    #[serde(default)]
    apply: bool,
    /// Intents to approve, in order; the first refusal ends the call.
    #[serde(default)]
    intents: Vec<Intent>,
    /// Milliseconds to wait after the approvals, holding them.
    #[serde(default)]
    hold_ms: u64,
    /// Requests to send after the approvals; each result (or refusal) is reported.
    #[serde(default)]
    send: Vec<Outbound>,
}

fn probe(a: Args, ctx: &Ctx) -> Result<Value, ToolError> {
    let _ = a.apply;
    let mut approvals = Vec::new();
    for i in a.intents {
        let ok = guard::approve(&WriteIntent {
            kind: i.kind,
            target: i.target,
            namespaces: i.namespaces,
            plan: i.plan,
        })?;
        approvals.push(json!({"id": ok.id, "approved_by": ok.approved_by, "lock": ok.lock}));
    }
    if a.hold_ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(a.hold_ms));
    }
    let mut sent = Vec::new();
    for s in a.send {
        let r = http::send(&Request {
            method: s.method,
            url: s.url,
            headers: Vec::new(),
            body: s.body.map(String::into_bytes),
            profile: s.profile,
            timeout_ms: ctx.timeout_ms,
            max_bytes: 64 * 1024,
            max_redirects: 0,
            retries: 0,
        });
        sent.push(match r {
            Ok(r) => json!({"status": r.status, "body": String::from_utf8_lossy(&r.body)}),
            Err(e) => json!({"refused": format!("{e:?}")}),
        });
    }
    Ok(json!({"approvals": approvals, "sent": sent}))
}

infra_sdk::plugin!(tools: [Tool::new(
    "guardprobe",
    "Guard probe",
    "Asks the host to approve raw write intents, then sends raw HTTP requests.",
    probe
)
.open_world()]);
