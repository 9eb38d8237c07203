//! What every tool looks like to the fronts (MCP, `infra call`): its spec, a call and its result.
//!
//! Plugins and host tools both end up as a [`ToolSpec`]; the fronts only ever talk to a
//! [`Dispatch`], so the MCP layer knows nothing about wasm and the runtime nothing about JSON-RPC.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

/// Fields every tool takes besides its own: the call's deadline and its audit correlation id.
pub const COMMON_FIELDS: &[&str] = &["timeout_ms", "trace_id"];

/// Hints an MCP client shows the user before it runs a tool.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Annotations {
    /// The tool changes nothing anywhere.
    pub read_only: bool,
    /// The tool may delete or overwrite something.
    pub destructive: bool,
    /// Calling it twice with the same arguments has the effect of calling it once.
    pub idempotent: bool,
    /// The tool reaches systems outside infra (networks, hosts, databases).
    pub open_world: bool,
}

/// One tool as listed in `tools/list`.
#[derive(Debug, Clone, Serialize)]
pub struct ToolSpec {
    /// Unique tool name, e.g. `http`.
    pub name: String,
    /// Human-readable title.
    pub title: String,
    /// What the tool does and when to use it.
    pub description: String,
    /// JSON Schema of the arguments (an object with `additionalProperties: false`).
    pub input_schema: Value,
    /// JSON Schema of the structured result.
    pub output_schema: Value,
    /// Behaviour hints.
    pub annotations: Annotations,
    /// Which plugin provides the tool; `None` for host tools.
    pub plugin: Option<String>,
}

/// Receives progress of a long call: `(progress, total, message)`.
pub type ProgressFn = Arc<dyn Fn(f64, Option<f64>, Option<String>) + Send + Sync>;

/// A question for the user, asked through the front (MCP elicitation): a message and one text
/// field the user fills in.
#[derive(Debug, Clone)]
pub struct Question {
    /// What the user reads: what is asked and why.
    pub message: String,
    /// The name of the one text field.
    pub field: String,
    /// The field's prompt, e.g. "type prod to approve".
    pub prompt: String,
    /// How long to wait for the answer.
    pub timeout: std::time::Duration,
}

/// What came back from a [`Question`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The user accepted, having typed this.
    Accepted(String),
    /// The user said no.
    Declined,
    /// The user dismissed the question.
    Cancelled,
    /// The client cannot ask its user (it declared no elicitation support); the text says so.
    Unsupported(String),
    /// The question was not answered (timeout, protocol error); the text says why.
    Failed(String),
}

/// A front's way to ask the user something in the middle of a call. A front without one (the
/// CLI, a client without elicitation) gives none, and whatever needs the user is refused.
pub trait Ask: Send + Sync {
    /// Asks `question` and waits for the answer (never longer than its timeout).
    fn ask(&self, question: Question) -> futures::future::BoxFuture<'static, Answer>;
}

/// One tool call as it arrives from a front.
#[derive(Clone)]
pub struct CallRequest {
    /// The tool's name (aliases such as `api` are accepted).
    pub tool: String,
    /// The arguments object.
    pub args: Value,
    /// Where to send progress notifications, when the client asked for them.
    pub progress: Option<ProgressFn>,
    /// How to ask the user (approval of a write to a protected target), when the front can.
    pub ask: Option<Arc<dyn Ask>>,
}

/// The result of one call, already redacted and capped.
#[derive(Debug, Clone, Serialize)]
pub struct CallResult {
    /// `true` when the tool failed; `output` then explains why and what to do.
    pub is_error: bool,
    /// The structured result: always an object with `ok`, `tool`, `action`, `duration_ms`,
    /// `trace_id`, and on failure `error` {`kind`, `message`, `field`?}.
    pub output: Value,
}

/// What a front calls: the list of tools and one call at a time (calls may run concurrently).
pub trait Dispatch: Send + Sync + 'static {
    /// The tools to list, in a stable order.
    fn tools(&self) -> Vec<ToolSpec>;
    /// Runs one call. Never panics on bad input: bad input is an `is_error` result.
    fn call(&self, request: CallRequest) -> impl std::future::Future<Output = CallResult> + Send;
}
