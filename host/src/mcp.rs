//! The MCP front: JSON-RPC over stdio with rmcp, listing and calling tools through a
//! [`Dispatch`].
//!
//! Tools are dynamic (plugins load at start-up), so the handler is written by hand instead of
//! with rmcp's `#[tool]` macros. It overrides `get_info`, the tools, the resources (artifacts,
//! [`resources`]) and the prompts (runbooks, [`prompts`]); every request reaches the tools
//! through the [`Dispatch`], so it is audited like a call. The lifecycle stays rmcp's, which serves both protocol eras on one connection — the `initialize`
//! handshake (up to 2025-11-25) and the `server/discover` start with self-contained per-request
//! `_meta` (2026-07-28).
//!
//! stdout carries JSON-RPC and nothing else; this module logs through `tracing` only.

mod prompts;
mod resources;

use std::sync::Arc;

use anyhow::Context as _;
use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ElicitRequestParams,
        ElicitationAction, ElicitationSchema, GetPromptRequestParams, GetPromptResponse,
        Implementation, JsonObject, ListPromptsResult, ListResourcesResult, ListToolsResult,
        PaginatedRequestParams, ProgressNotificationParam, ProgressToken,
        ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig, Tool,
        ToolAnnotations,
    },
    service::{ElicitationMode, Peer, RequestContext, ServerInitializeError},
    transport::IntoTransport,
};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::error_kind::ErrorKind;
use crate::tool::{Answer, Ask, CallRequest, CallResult, Dispatch, ProgressFn, Question, ToolSpec};

/// What an agent reads first: how to find its way around a short, action-based tool list.
const INSTRUCTIONS: &str = "infra does infrastructure work — SSH, HTTP and Postgres — through \
sandboxed tools, with artifacts and an audit trail. Call `help` first: it finds the tool and \
action for a task and shows their exact arguments. Each tool takes an `action` field. Every \
result has `ok`; on failure `error.message` says what to fix. Large results come back as an \
`artifact://` URI with a preview: read them with the `artifacts` tool. The client may also show \
artifacts as resources and runbooks as prompts.";

/// Serves MCP on stdin/stdout until the client closes stdin.
///
/// # Errors
///
/// Fails when the session cannot start (the client's first message is neither `initialize`
/// nor `server/discover`, or stdout is gone) or the service task dies. A client that closes
/// stdin, even before starting a session, is a normal end.
pub async fn serve_stdio<D: Dispatch>(dispatch: Arc<D>) -> anyhow::Result<()> {
    // Non-blocking pipes when the client launched us with pipes (the usual case); plain stdio
    // handles otherwise.
    serve(dispatch, rmcp::transport::stdio_pipes()).await
}

/// [`serve_stdio`] over any transport, so tests can drive it through an in-process pipe.
async fn serve<D, T, E, A>(dispatch: Arc<D>, transport: T) -> anyhow::Result<()>
where
    D: Dispatch,
    T: IntoTransport<RoleServer, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    let server = McpServer {
        dispatch,
        chunk: resources::Chunk::default(),
    };
    let running = match server.serve(transport).await {
        Ok(running) => running,
        Err(ServerInitializeError::ConnectionClosed(_)) => {
            tracing::info!("MCP client closed the connection before starting a session");
            return Ok(());
        }
        Err(error) => {
            return Err(anyhow::Error::new(error).context(
                "the MCP session did not start; an MCP client must open with `initialize` \
                 or `server/discover` on stdin",
            ));
        }
    };
    let reason = running
        .waiting()
        .await
        .context("the MCP service task failed; see the log on stderr")?;
    tracing::info!(?reason, "MCP session ended");
    Ok(())
}

/// The rmcp handler over a [`Dispatch`].
struct McpServer<D> {
    dispatch: Arc<D>,
    /// The range size `resources/read` asks the artifacts tool for, learned once per session.
    chunk: resources::Chunk,
}

impl<D: Dispatch> ServerHandler for McpServer<D> {
    // Logging is not advertised: the `Dispatch` boundary carries no log lines to forward, and
    // `logging/setLevel` without messages behind it would only promise something we do not do.
    fn get_info(&self) -> ServerConfig {
        // No `listChanged`/`subscribe`: artifacts come and go with every call, and a client
        // lists again when it wants the newest.
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_prompts()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(
                Implementation::new("infra", env!("CARGO_PKG_VERSION"))
                    .with_title("infra")
                    .with_description(
                        "Infrastructure work through sandboxed WASI tools: SSH, HTTP, Postgres, \
                         git and GitOps",
                    ),
            )
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        // One page: the list is short by design (one tool per domain).
        let tools = self.dispatch.tools().into_iter().map(to_mcp_tool).collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // Every failure is a tool result the agent can read, never a protocol error: clients
        // show protocol errors opaquely, so the advice in them would be lost.
        Ok(self.call(request, context).await.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        // One page of the newest: older artifacts are a `artifacts list` call away.
        let items = resources::list(&*self.dispatch).await?;
        Ok(ListResourcesResult::with_all_items(items))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        Ok(resources::read(&*self.dispatch, &self.chunk, &request.uri)
            .await?
            .into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let items = prompts::list(&*self.dispatch).await?;
        Ok(ListPromptsResult::with_all_items(items))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        Ok(
            prompts::get(&*self.dispatch, &request.name, request.arguments)
                .await?
                .into(),
        )
    }
}

/// A failed call made on the front's own behalf (resources, prompts): the error's kind and
/// message, for the MCP error that carries them.
struct ToolError {
    kind: String,
    message: String,
}

/// Calls `tool` through the dispatcher as the front itself (no progress, no questions) and
/// returns its output, or its error.
async fn call_as_front<D: Dispatch>(
    dispatch: &D,
    tool: &str,
    args: Value,
) -> Result<Value, ToolError> {
    let result = dispatch
        .call(CallRequest {
            tool: tool.to_owned(),
            args,
            progress: None,
            ask: None,
        })
        .await;
    if !result.is_error {
        return Ok(result.output);
    }
    let error = &result.output["error"];
    Err(ToolError {
        kind: error["kind"].as_str().unwrap_or("failed").to_owned(),
        message: error["message"]
            .as_str()
            .unwrap_or("the call failed; see the audit log")
            .to_owned(),
    })
}

impl<D: Dispatch> McpServer<D> {
    async fn call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let name = request.name.into_owned();
        let args = request
            .arguments
            .map_or_else(|| Value::Object(Map::new()), Value::Object);

        // An unknown tool name goes to the dispatcher too: it answers with the tools there
        // are, and the attempt is audited like any call.
        let (progress, forwarder) = match context.meta.get_progress_token() {
            Some(token) => {
                let (callback, forwarder) = progress_channel(context.peer.clone(), token);
                (Some(callback), Some(forwarder))
            }
            None => (None, None),
        };
        // Kept for the cancellation result; the arguments themselves (possibly megabytes of
        // upload) move into the call uncopied.
        let label = Label::of(&args);
        let call = self.dispatch.call(CallRequest {
            tool: name.clone(),
            args,
            progress,
            ask: Some(Arc::new(PeerAsk(context.peer.clone()))),
        });
        // The forwarder runs inside this handler rather than in a spawned task, so that every
        // update the call queued reaches the client before the response does.
        let (done_tx, done_rx) = oneshot::channel();
        let work = async move {
            let result = call.await;
            let _ = done_tx.send(());
            result
        };
        let forward = async move {
            if let Some(forwarder) = forwarder {
                forwarder.run(done_rx).await;
            }
        };
        tokio::select! {
            (result, ()) = async { tokio::join!(work, forward) } => to_call_tool_result(result),
            // Dropping the call future stops the work (a wasm call is interrupted at its next
            // await). rmcp discards the response to a cancelled request; this one is for the log.
            () = context.ct.cancelled() => {
                tracing::info!(tool = %name, "call cancelled by the client");
                to_call_tool_result(cancelled(&name, &label))
            }
        }
    }
}

/// Asks the user through the client: MCP form elicitation with one required text field.
struct PeerAsk(Peer<RoleServer>);

impl Ask for PeerAsk {
    fn ask(&self, question: Question) -> futures::future::BoxFuture<'static, Answer> {
        let peer = self.0.clone();
        Box::pin(async move {
            if !peer
                .supported_elicitation_modes()
                .contains(&ElicitationMode::Form)
            {
                return Answer::Unsupported("no elicitation support".into());
            }
            let schema = ElicitationSchema::builder()
                .required_string_property(question.field.clone(), |s| {
                    s.title("Confirm").description(question.prompt.clone())
                })
                .build_unchecked();
            let params = ElicitRequestParams::FormElicitationParams {
                meta: None,
                message: question.message,
                requested_schema: schema,
            };
            let result = peer
                .create_elicitation_with_timeout(params, Some(question.timeout))
                .await;
            match result {
                Ok(r) => match r.action {
                    ElicitationAction::Accept => {
                        let typed = r
                            .content
                            .as_ref()
                            .and_then(|c| c.get(&question.field))
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        Answer::Accepted(typed.to_string())
                    }
                    ElicitationAction::Decline => Answer::Declined,
                    _ => Answer::Cancelled,
                },
                Err(e) => Answer::Failed(format!("the elicitation request failed: {e}")),
            }
        })
    }
}

/// A [`ToolSpec`] as MCP lists it.
fn to_mcp_tool(spec: ToolSpec) -> Tool {
    let input_schema = match spec.input_schema {
        Value::Object(schema) => schema,
        other => {
            // MCP requires an object schema; an open one keeps the tool callable, and the
            // plugin still judges its own arguments.
            tracing::warn!(tool = %spec.name, schema = %other, "input schema is not a JSON object");
            open_object_schema()
        }
    };
    let hints = spec.annotations;
    let mut annotations = if spec.title.is_empty() {
        ToolAnnotations::new()
    } else {
        // Clients of 2025-03-26 read the title from the annotations only.
        ToolAnnotations::with_title(spec.title.clone())
    };
    annotations = annotations
        .read_only(hints.read_only)
        .destructive(hints.destructive)
        .idempotent(hints.idempotent)
        .open_world(hints.open_world);
    let mut tool = Tool::new(spec.name, spec.description, Arc::new(input_schema))
        .with_annotations(annotations);
    if !spec.title.is_empty() {
        tool = tool.with_title(spec.title);
    }
    if let Value::Object(output_schema) = spec.output_schema {
        tool = tool.with_raw_output_schema(Arc::new(output_schema));
    }
    tool
}

fn open_object_schema() -> JsonObject {
    let mut schema = JsonObject::new();
    schema.insert("type".to_owned(), Value::from("object"));
    schema
}

/// `structuredContent` is the output; the one text block mirrors it as compact JSON for
/// clients that read only text.
fn to_call_tool_result(result: CallResult) -> CallToolResult {
    if result.is_error {
        CallToolResult::structured_error(result.output)
    } else {
        CallToolResult::structured(result.output)
    }
}

fn cancelled(name: &str, label: &Label) -> CallResult {
    CallResult {
        is_error: true,
        output: failure(
            name,
            label,
            json!({
                "kind": ErrorKind::Cancelled,
                "message": "the client cancelled the call; run it again if it is still needed.",
            }),
        ),
    }
}

/// The parts of a call's arguments that label its result.
struct Label {
    action: Option<String>,
    trace_id: Option<String>,
}

impl Label {
    fn of(args: &Value) -> Self {
        let text = |key: &str| args.get(key).and_then(Value::as_str).map(str::to_owned);
        Label {
            action: text("action"),
            trace_id: text("trace_id"),
        }
    }
}

/// A failure in the shape every result has (`ok`, `tool`, `action`, `duration_ms`,
/// `trace_id`, `error`), for the failures the dispatcher never answers.
fn failure(name: &str, label: &Label, error: Value) -> Value {
    let trace_id = label
        .trace_id
        .clone()
        // The router's trace-id format, so these look like every other call in the log.
        .unwrap_or_else(|| format!("t-{:016x}", rand::random::<u64>()));
    json!({
        "ok": false,
        "tool": name,
        "action": label.action,
        "duration_ms": 0,
        "trace_id": trace_id,
        "error": error,
    })
}

/// A [`ProgressFn`] for one call, and the forwarder that turns what it receives into
/// `notifications/progress` carrying the request's token.
fn progress_channel(peer: Peer<RoleServer>, token: ProgressToken) -> (ProgressFn, Forwarder) {
    let (tx, rx) = mpsc::unbounded_channel();
    let callback: ProgressFn = Arc::new(move |progress, total, message| {
        // NaN or infinity would serialize as `null` and break the client's parsing.
        if !progress.is_finite() {
            return;
        }
        let mut param = ProgressNotificationParam::new(token.clone(), progress);
        param.total = total.filter(|total| total.is_finite());
        param.message = message;
        // Fails only once the call has answered: progress must not follow the response, so a
        // late update (from work the tool left running) is dropped.
        let _ = tx.send(param);
    });
    (callback, Forwarder { peer, rx })
}

/// Sends one call's progress updates to the client, in order.
struct Forwarder {
    peer: Peer<RoleServer>,
    rx: mpsc::UnboundedReceiver<ProgressNotificationParam>,
}

impl Forwarder {
    /// Forwards until `done` (the call has its result), then flushes what is queued.
    async fn run(mut self, mut done: oneshot::Receiver<()>) {
        loop {
            tokio::select! {
                // `done` first: a tool that keeps reporting must not hold back its own result.
                biased;
                _ = &mut done => break,
                next = self.rx.recv() => match next {
                    Some(param) => self.send(param).await,
                    // Every callback is gone; nothing more can arrive.
                    None => return,
                },
            }
        }
        self.rx.close();
        while let Ok(param) = self.rx.try_recv() {
            self.send(param).await;
        }
    }

    async fn send(&self, param: ProgressNotificationParam) {
        if let Err(error) = self.peer.notify_progress(param).await {
            tracing::debug!(%error, "progress notification not delivered");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use rmcp::{
        ClientHandler, RoleClient,
        model::{ClientCapabilities, ClientConfig, ProtocolVersion},
        service::{ClientLifecycleMode, ClientServiceExt, NotificationContext, RunningService},
    };
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};

    use super::*;
    use crate::tool::Annotations;

    /// What the fake dispatcher saw of one call.
    #[derive(Debug, Clone, PartialEq)]
    struct Seen {
        tool: String,
        args: Value,
        progress: bool,
    }

    /// Three tools: `echo` returns its arguments (and fails on `fail: true`), `slow` reports
    /// three progress steps, `http` stands in for an aliased tool.
    #[derive(Default)]
    struct FakeDispatch {
        seen: Mutex<Vec<Seen>>,
        /// The last `ProgressFn` `slow` got, kept past the end of its call.
        kept: Mutex<Option<ProgressFn>>,
        /// Set when a call told to hang (`"hang": true`) is dropped.
        hung_call_dropped: Arc<AtomicBool>,
    }

    /// Sets its flag when dropped.
    struct DropFlag(Arc<AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn echo_input_schema() -> Value {
        json!({
            "type": "object",
            "properties": {"text": {"type": "string"}, "fail": {"type": "boolean"}},
            "additionalProperties": false,
        })
    }

    fn echo_output_schema() -> Value {
        json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]})
    }

    impl Dispatch for FakeDispatch {
        fn tools(&self) -> Vec<ToolSpec> {
            let spec = |name: &str, annotations: Annotations| ToolSpec {
                name: name.to_owned(),
                title: format!("The {name} tool"),
                description: format!("Does {name} things."),
                input_schema: echo_input_schema(),
                output_schema: echo_output_schema(),
                annotations,
                plugin: None,
            };
            vec![
                spec(
                    "echo",
                    Annotations {
                        read_only: true,
                        destructive: false,
                        idempotent: true,
                        open_world: false,
                    },
                ),
                spec(
                    "slow",
                    Annotations {
                        read_only: false,
                        destructive: true,
                        idempotent: false,
                        open_world: true,
                    },
                ),
                spec("http", Annotations::default()),
            ]
        }

        async fn call(&self, request: CallRequest) -> CallResult {
            self.seen.lock().unwrap().push(Seen {
                tool: request.tool.clone(),
                args: request.args.clone(),
                progress: request.progress.is_some(),
            });
            if request.tool == "slow"
                && let Some(progress) = &request.progress
            {
                *self.kept.lock().unwrap() = Some(progress.clone());
                for step in 1..=3 {
                    progress(f64::from(step), Some(3.0), Some(format!("step {step}")));
                    tokio::task::yield_now().await;
                }
            }
            if request.args.get("hang") == Some(&Value::Bool(true)) {
                let _flag = DropFlag(self.hung_call_dropped.clone());
                std::future::pending::<()>().await;
            }
            let fail = request.args.get("fail") == Some(&Value::Bool(true));
            CallResult {
                is_error: fail,
                output: json!({"ok": !fail, "tool": request.tool, "echo": request.args}),
            }
        }
    }

    /// Records the progress notifications it receives.
    #[derive(Clone)]
    struct TestClient {
        config: ClientConfig,
        progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    }

    impl ClientHandler for TestClient {
        fn get_info(&self) -> ClientConfig {
            self.config.clone()
        }

        async fn on_progress(
            &self,
            params: ProgressNotificationParam,
            _context: NotificationContext<RoleClient>,
        ) {
            self.progress.lock().unwrap().push(params);
        }
    }

    #[derive(Debug, Clone, Copy)]
    enum Era {
        /// `initialize` at 2025-11-25.
        Initialize,
        /// `server/discover`, then per-request `_meta`, at 2026-07-28.
        Discover,
    }

    struct Session {
        client: RunningService<RoleClient, TestClient>,
        progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
        dispatch: Arc<FakeDispatch>,
        server: tokio::task::JoinHandle<anyhow::Result<()>>,
    }

    async fn start(era: Era) -> Session {
        let dispatch = Arc::new(FakeDispatch::default());
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(serve(dispatch.clone(), server_io));
        let progress = Arc::new(Mutex::new(Vec::new()));
        let config = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("test-client", "0.0.0"),
        );
        let client = match era {
            Era::Initialize => TestClient {
                config: config.with_protocol_version(ProtocolVersion::V_2025_11_25),
                progress: progress.clone(),
            }
            .serve(client_io)
            .await
            .expect("initialize handshake"),
            Era::Discover => TestClient {
                config,
                progress: progress.clone(),
            }
            .serve_with_lifecycle(
                client_io,
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                },
            )
            .await
            .expect("discover start"),
        };
        Session {
            client,
            progress,
            dispatch,
            server,
        }
    }

    async fn call(session: &Session, name: &str, args: Option<Value>) -> CallToolResult {
        let mut params = CallToolRequestParams::new(name.to_owned());
        if let Some(Value::Object(args)) = args {
            params = params.with_arguments(args);
        }
        session
            .client
            .call_tool(params)
            .await
            .expect("tools/call answers")
    }

    fn text_of(result: &CallToolResult) -> &str {
        assert_eq!(result.content.len(), 1, "exactly one text mirror");
        &result.content[0].as_text().expect("a text block").text
    }

    /// Everything the front promises, through a real rmcp client in `era`.
    async fn exercise(era: Era) {
        let session = start(era).await;
        let info = session.client.peer_info().expect("server info after start");
        let expected_version = match era {
            Era::Initialize => ProtocolVersion::V_2025_11_25,
            Era::Discover => ProtocolVersion::V_2026_07_28,
        };
        assert_eq!(info.protocol_version, expected_version);
        let server_info = info.server_info.clone().expect("server identifies itself");
        assert_eq!(server_info.name, "infra");
        assert_eq!(server_info.version, env!("CARGO_PKG_VERSION"));
        assert!(info.capabilities.tools.is_some(), "tools capability");
        assert!(
            info.instructions
                .as_deref()
                .unwrap_or_default()
                .contains("`help` first")
        );

        // tools/list: schemas and annotations as the dispatcher gave them.
        let tools = session.client.list_all_tools().await.expect("tools/list");
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, ["echo", "slow", "http"]);
        let echo = &tools[0];
        assert_eq!(echo.title.as_deref(), Some("The echo tool"));
        assert_eq!(echo.description.as_deref(), Some("Does echo things."));
        assert_eq!(echo.schema_as_json_value(), echo_input_schema());
        assert_eq!(
            echo.output_schema.as_deref().cloned().map(Value::Object),
            Some(echo_output_schema())
        );
        let hints = echo.annotations.clone().expect("annotations");
        assert_eq!(hints.title.as_deref(), Some("The echo tool"));
        assert_eq!(
            (
                hints.read_only_hint,
                hints.destructive_hint,
                hints.idempotent_hint,
                hints.open_world_hint
            ),
            (Some(true), Some(false), Some(true), Some(false))
        );
        let slow_hints = tools[1].annotations.clone().expect("annotations");
        assert_eq!(
            (
                slow_hints.read_only_hint,
                slow_hints.destructive_hint,
                slow_hints.idempotent_hint,
                slow_hints.open_world_hint
            ),
            (Some(false), Some(true), Some(false), Some(true))
        );

        // tools/call: structuredContent, its compact text mirror, isError.
        let ok = call(&session, "echo", Some(json!({"text": "hi"}))).await;
        let expected = json!({"ok": true, "tool": "echo", "echo": {"text": "hi"}});
        assert_eq!(ok.structured_content, Some(expected.clone()));
        assert_eq!(text_of(&ok), serde_json::to_string(&expected).unwrap());
        assert_eq!(ok.is_error, Some(false));

        let failed = call(&session, "echo", Some(json!({"fail": true}))).await;
        assert_eq!(failed.is_error, Some(true));
        assert_eq!(
            failed.structured_content.as_ref().unwrap()["ok"],
            json!(false)
        );
        assert_eq!(
            serde_json::from_str::<Value>(text_of(&failed)).unwrap(),
            failed.structured_content.clone().unwrap()
        );

        // Missing arguments reach the dispatcher as `{}`; an alias reaches it unchanged.
        call(&session, "echo", None).await;
        call(&session, "api", Some(json!({}))).await;
        {
            let seen = session.dispatch.seen.lock().unwrap();
            assert_eq!(seen[seen.len() - 2].args, json!({}));
            assert_eq!(seen[seen.len() - 1].tool, "api");
        }

        // Progress: the rmcp client always sends a progress token, so updates must arrive.
        let slow = call(&session, "slow", None).await;
        assert_eq!(slow.is_error, Some(false));
        assert!(
            session
                .dispatch
                .seen
                .lock()
                .unwrap()
                .last()
                .unwrap()
                .progress
        );
        let progress = wait_for_progress(&session.progress, 3).await;
        let steps: Vec<(f64, Option<f64>, Option<String>)> = progress
            .iter()
            .map(|p| (p.progress, p.total, p.message.clone()))
            .collect();
        assert_eq!(
            steps,
            [
                (1.0, Some(3.0), Some("step 1".to_owned())),
                (2.0, Some(3.0), Some("step 2".to_owned())),
                (3.0, Some(3.0), Some("step 3".to_owned())),
            ]
        );
        assert!(
            progress
                .iter()
                .all(|p| p.progress_token == progress[0].progress_token)
        );

        // Closing the client ends the server cleanly.
        let Session { client, server, .. } = session;
        client.cancel().await.expect("client closes");
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("server stops when the client leaves")
            .expect("server task joins")
            .expect("serve returns Ok");
    }

    async fn wait_for_progress(
        progress: &Mutex<Vec<ProgressNotificationParam>>,
        count: usize,
    ) -> Vec<ProgressNotificationParam> {
        // The client handles notifications on tasks of their own, so they may trail the result.
        for _ in 0..200 {
            {
                let seen = progress.lock().unwrap();
                if seen.len() >= count {
                    return seen.clone();
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "expected {count} progress notifications, got {:?}",
            progress.lock().unwrap()
        );
    }

    #[tokio::test]
    async fn initialize_era_lists_calls_and_reports_progress() {
        exercise(Era::Initialize).await;
    }

    #[tokio::test]
    async fn discover_era_lists_calls_and_reports_progress() {
        exercise(Era::Discover).await;
    }

    /// A raw JSON-RPC peer, to check the bytes on the wire (what non-rmcp clients parse).
    struct Wire {
        reader: BufReader<tokio::io::ReadHalf<DuplexStream>>,
        writer: tokio::io::WriteHalf<DuplexStream>,
    }

    impl Wire {
        fn start(
            dispatch: Arc<FakeDispatch>,
        ) -> (Self, tokio::task::JoinHandle<anyhow::Result<()>>) {
            let (server_io, client_io) = tokio::io::duplex(64 * 1024);
            let server = tokio::spawn(serve(dispatch, server_io));
            let (reader, writer) = tokio::io::split(client_io);
            let wire = Wire {
                reader: BufReader::new(reader),
                writer,
            };
            (wire, server)
        }

        async fn send(&mut self, message: Value) {
            let mut line = serde_json::to_vec(&message).unwrap();
            line.push(b'\n');
            self.writer.write_all(&line).await.unwrap();
        }

        /// The next line the server wrote; it must be one JSON-RPC 2.0 message.
        async fn next(&mut self) -> Value {
            let mut line = String::new();
            let read =
                tokio::time::timeout(Duration::from_secs(10), self.reader.read_line(&mut line))
                    .await
                    .expect("the server answers")
                    .unwrap();
            assert!(read > 0, "the server closed its output");
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("non-JSON on the wire ({e}): {line:?}"));
            assert_eq!(message["jsonrpc"], json!("2.0"), "{message}");
            message
        }
    }

    #[tokio::test]
    async fn wire_shape_without_a_progress_token() {
        let dispatch = Arc::new(FakeDispatch::default());
        let (mut wire, server) = Wire::start(dispatch.clone());
        wire.send(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "wire", "version": "0"}}}),
        )
        .await;
        let init = wire.next().await;
        assert_eq!(init["id"], json!(1));
        assert_eq!(init["result"]["protocolVersion"], json!("2025-11-25"));
        assert_eq!(init["result"]["serverInfo"]["name"], json!("infra"));
        assert!(
            init["result"]["capabilities"]["tools"].is_object(),
            "{init}"
        );
        for served in ["resources", "prompts"] {
            assert!(
                init["result"]["capabilities"][served].is_object(),
                "{served} advertised: {init}"
            );
        }
        wire.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;

        wire.send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
            .await;
        let list = wire.next().await;
        let echo = &list["result"]["tools"][0];
        assert_eq!(echo["name"], json!("echo"));
        assert_eq!(echo["inputSchema"], echo_input_schema());
        assert_eq!(echo["outputSchema"], echo_output_schema());
        assert_eq!(
            echo["annotations"],
            json!({"title": "The echo tool", "readOnlyHint": true, "destructiveHint": false,
                   "idempotentHint": true, "openWorldHint": false})
        );

        wire.send(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                         "params": {"name": "slow", "arguments": {"text": "x"}}}))
            .await;
        let result = wire.next().await;
        assert_eq!(result["id"], json!(3), "no progress precedes it: {result}");
        let expected = json!({"ok": true, "tool": "slow", "echo": {"text": "x"}});
        assert_eq!(result["result"]["structuredContent"], expected);
        assert_eq!(result["result"]["isError"], json!(false));
        assert_eq!(
            result["result"]["content"],
            json!([{"type": "text", "text": serde_json::to_string(&expected).unwrap()}])
        );
        assert!(
            result["result"].get("resultType").is_none(),
            "legacy shape: {result}"
        );
        assert!(
            !dispatch.seen.lock().unwrap()[0].progress,
            "no token, no ProgressFn"
        );

        drop(wire);
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("server stops at EOF")
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn wire_shape_in_the_discover_era_with_a_progress_token() {
        let dispatch = Arc::new(FakeDispatch::default());
        let (mut wire, server) = Wire::start(dispatch.clone());
        let meta = |extra: Value| {
            let mut meta = json!({
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "wire", "version": "0"},
            });
            meta.as_object_mut()
                .unwrap()
                .extend(extra.as_object().cloned().unwrap_or_default());
            meta
        };
        wire.send(
            json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover",
                         "params": {"_meta": meta(json!({}))}}),
        )
        .await;
        let discover = wire.next().await;
        assert!(
            discover["result"]["supportedVersions"]
                .as_array()
                .unwrap()
                .contains(&json!("2026-07-28")),
            "{discover}"
        );

        wire.send(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "slow", "arguments": {},
            "_meta": meta(json!({"progressToken": "tok-1"}))}}),
        )
        .await;
        let mut notes = Vec::new();
        let result = loop {
            let message = wire.next().await;
            if message.get("id").is_some() {
                break message;
            }
            notes.push(message);
        };
        assert_eq!(
            notes.len(),
            3,
            "all progress arrives before the result: {notes:?}"
        );
        for (step, note) in notes.iter().enumerate() {
            assert_eq!(note["method"], json!("notifications/progress"));
            assert_eq!(note["params"]["progressToken"], json!("tok-1"));
            assert_eq!(note["params"]["progress"], json!(step as f64 + 1.0));
            assert_eq!(note["params"]["total"], json!(3.0));
        }
        assert_eq!(result["id"], json!(2));
        assert_eq!(result["result"]["resultType"], json!("complete"));
        assert_eq!(result["result"]["isError"], json!(false));
        assert!(dispatch.seen.lock().unwrap()[0].progress);

        // Progress after the result must not reach the client: the next message on the wire
        // is the answer to the next request.
        let late = dispatch
            .kept
            .lock()
            .unwrap()
            .clone()
            .expect("slow kept its ProgressFn");
        late(99.0, None, Some("too late".to_owned()));
        wire.send(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list",
                         "params": {"_meta": meta(json!({}))}}))
            .await;
        let next = wire.next().await;
        assert_eq!(next["id"], json!(3), "late progress leaked: {next}");

        drop(wire);
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("server stops at EOF")
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn closing_before_a_session_is_a_normal_end() {
        let (server_io, client_io) = tokio::io::duplex(1024);
        drop(client_io);
        serve(Arc::new(FakeDispatch::default()), server_io)
            .await
            .expect("EOF before the handshake is not an error");
    }

    #[tokio::test]
    async fn a_cancelled_call_is_dropped_and_not_answered() {
        let dispatch = Arc::new(FakeDispatch::default());
        let (mut wire, server) = Wire::start(dispatch.clone());
        wire.send(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "wire", "version": "0"}}}),
        )
        .await;
        wire.next().await;
        wire.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        wire.send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                         "params": {"name": "echo", "arguments": {"hang": true}}}))
            .await;
        for _ in 0..500 {
            if !dispatch.seen.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        wire.send(
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                         "params": {"requestId": 2, "reason": "test"}}),
        )
        .await;
        for _ in 0..500 {
            if dispatch.hung_call_dropped.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            dispatch.hung_call_dropped.load(Ordering::SeqCst),
            "the call future was dropped"
        );
        wire.send(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}))
            .await;
        assert_eq!(
            wire.next().await["id"],
            json!(3),
            "no answer to the cancelled call"
        );

        drop(wire);
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("server stops at EOF")
            .unwrap()
            .unwrap();
    }
}
