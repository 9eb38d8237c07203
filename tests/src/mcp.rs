//! A long-lived `infra serve` driven by the rmcp client over stdio — one server, many calls —
//! with a deadline on every exchange and the server's stderr kept: a hang fails the test naming
//! the call and showing what the server last said, instead of stalling CI.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult, Tool};
use rmcp::service::{Peer, RunningService, ServiceError};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;

use crate::Home;

/// How long an exchange may take beyond the call's own `timeout_ms`: generous for two busy
/// cores, and still an answer where a hang would stall CI until it gives up.
pub const EXCHANGE_MARGIN: Duration = Duration::from_secs(120);

/// How much of the server's stderr a failure message shows (its end, where the cause is).
const STDERR_TAIL: usize = 4000;

/// A running `infra serve` and the client session talking to it; `H` handles what the server
/// sends (progress notifications), `()` ignores it.
pub struct Mcp<H: ClientHandler = ()> {
    /// The running client session (for requests the helpers below do not cover).
    pub client: RunningService<RoleClient, H>,
    stderr: Arc<Mutex<Vec<u8>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Home {
    /// Starts `infra serve` on this state directory and completes the MCP handshake
    /// (2025-11-25 `initialize`); `tweak` may add environment variables.
    pub async fn mcp_with(&self, tweak: impl FnOnce(&mut tokio::process::Command)) -> Mcp {
        self.mcp_as((), tweak).await
    }

    /// [`Home::mcp_with`] without changes.
    pub async fn mcp(&self) -> Mcp {
        self.mcp_with(|_| {}).await
    }

    /// Starts `infra serve` and connects with `handler` by the `initialize` handshake (its
    /// client info chooses the protocol version); `tweak` may add environment variables.
    pub async fn mcp_as<H: ClientHandler>(
        &self,
        handler: H,
        tweak: impl FnOnce(&mut tokio::process::Command),
    ) -> Mcp<H> {
        self.mcp_connect(tweak, |t| handler.serve(t)).await
    }

    /// Starts `infra serve` (`tweak` may add environment variables), keeps its stderr, and
    /// completes `handshake` over its stdio within the deadline.
    pub async fn mcp_connect<H, F, E>(
        &self,
        tweak: impl FnOnce(&mut tokio::process::Command),
        handshake: impl FnOnce(TokioChildProcess) -> F,
    ) -> Mcp<H>
    where
        H: ClientHandler,
        F: Future<Output = Result<RunningService<RoleClient, H>, E>>,
        E: std::fmt::Display,
    {
        let mut cmd = tokio::process::Command::from(self.command());
        cmd.arg("serve");
        tweak(&mut cmd);
        let (transport, pipe) = TokioChildProcess::builder(cmd)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn infra serve");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let reader = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let Some(mut pipe) = pipe else { return };
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(&buf[..n]);
            }
        });
        let client = with_deadline(
            EXCHANGE_MARGIN,
            "the MCP handshake",
            &stderr,
            handshake(transport),
        )
        .await
        .unwrap_or_else(|e| panic!("MCP handshake with infra serve: {e}{}", tail(&stderr)));
        Mcp {
            client,
            stderr,
            reader,
        }
    }
}

/// Awaits `fut` for at most `limit`; past it, panics naming `what` with the stderr tail.
async fn with_deadline<T>(
    limit: Duration,
    what: &str,
    stderr: &Mutex<Vec<u8>>,
    fut: impl Future<Output = T>,
) -> T {
    tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
        panic!(
            "{what} got no answer within {} s: infra serve hangs{}",
            limit.as_secs(),
            tail(stderr)
        )
    })
}

/// The end of what the server wrote to stderr, as a suffix for a failure message.
fn tail(stderr: &Mutex<Vec<u8>>) -> String {
    let bytes = stderr.lock().unwrap_or_else(|p| p.into_inner());
    if bytes.is_empty() {
        return String::from("; its stderr is empty");
    }
    let start = bytes.len().saturating_sub(STDERR_TAIL);
    format!(
        "; the end of its stderr:\n{}",
        String::from_utf8_lossy(&bytes[start..])
    )
}

/// The deadline of a call: its own `timeout_ms` (when it asks for one) plus the margin.
fn limit_for(params: &CallToolRequestParams) -> Duration {
    let own = params
        .arguments
        .as_ref()
        .and_then(|a| a.get("timeout_ms"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Duration::from_millis(own) + EXCHANGE_MARGIN
}

/// `tools/call` parameters for `tool` with the object `args`.
pub fn params(tool: &str, args: Value) -> CallToolRequestParams {
    let mut params = CallToolRequestParams::new(tool.to_string());
    if let Value::Object(map) = args {
        params = params.with_arguments(map);
    }
    params
}

/// `tools/call` on any client session, whatever its handler, within the call's deadline; panics
/// on a protocol-level error or a hang (a tool's failure is a result, with `is_error`). For
/// sessions that are not an [`Mcp`] (a cloned [`Peer`]), so without a stderr to show.
pub async fn call_tool(peer: &Peer<RoleClient>, tool: &str, args: Value) -> CallToolResult {
    let params = params(tool, args);
    let what = format!("tools/call {tool}");
    with_deadline(
        limit_for(&params),
        &what,
        &Mutex::default(),
        peer.call_tool(params),
    )
    .await
    .unwrap_or_else(|e| panic!("{what} failed at the protocol level: {e}"))
}

impl<H: ClientHandler> Mcp<H> {
    /// `tools/call`: (is_error, structuredContent). Also checks that the text mirror matches.
    pub async fn call(&self, tool: &str, args: Value) -> (bool, Value) {
        let result = self.result(tool, args).await;
        let structured = result.structured_content.clone().unwrap_or_else(|| {
            panic!("tools/call {tool} returned no structuredContent: {result:?}")
        });
        let text = result
            .content
            .first()
            .and_then(|c| c.as_text())
            .map(|t| t.text.clone())
            .expect("a text mirror");
        let mirrored: Value = serde_json::from_str(&text).expect("the text mirror is JSON");
        assert_eq!(
            mirrored, structured,
            "the text mirror equals structuredContent"
        );
        (result.is_error == Some(true), structured)
    }

    /// `tools/call`, the whole result; panics on a protocol-level error or a hang.
    pub async fn result(&self, tool: &str, args: Value) -> CallToolResult {
        self.call_tool(params(tool, args))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "tools/call {tool} failed at the protocol level: {e}{}",
                    tail(&self.stderr)
                )
            })
    }

    /// rmcp's `call_tool` within the call's deadline (a protocol error is returned, a hang
    /// panics naming the tool).
    pub async fn call_tool(
        &self,
        params: CallToolRequestParams,
    ) -> Result<CallToolResult, ServiceError> {
        let what = format!("tools/call {}", params.name);
        with_deadline(
            limit_for(&params),
            &what,
            &self.stderr,
            self.client.call_tool(params),
        )
        .await
    }

    /// rmcp's `list_all_tools` within the deadline.
    pub async fn list_all_tools(&self) -> Result<Vec<Tool>, ServiceError> {
        with_deadline(
            EXCHANGE_MARGIN,
            "tools/list",
            &self.stderr,
            self.client.list_all_tools(),
        )
        .await
    }

    /// The names of the tools the server lists.
    pub async fn tool_names(&self) -> Vec<String> {
        let tools = self
            .list_all_tools()
            .await
            .unwrap_or_else(|e| panic!("tools/list: {e}{}", tail(&self.stderr)));
        tools.iter().map(|t| t.name.to_string()).collect()
    }

    /// The session's peer, to send requests from other tasks.
    pub fn peer(&self) -> &Peer<RoleClient> {
        self.client.peer()
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// Closes the session (the server exits when stdin closes) and returns all it wrote to
    /// stderr, up to its exit.
    pub async fn close(self) -> String {
        let _ = self.client.cancel().await;
        let _ = tokio::time::timeout(EXCHANGE_MARGIN, self.reader).await;
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}
