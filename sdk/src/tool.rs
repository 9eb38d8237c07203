//! A tool as a typed Rust function, and the registry that turns a list of them into the
//! plugin's `describe`/`call` exports.

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ToolError;
use crate::bindings::exports::infra::plugin::tool as wit;

/// What a tool knows about the call besides its arguments.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The call's deadline in milliseconds, as granted by the host (use it for capability timeouts).
    pub timeout_ms: u32,
}

type Handler = Box<dyn Fn(Value, &Ctx) -> Result<Value, ToolError>>;

/// One tool: a name, its texts, its schemas and the function that runs it.
pub struct Tool {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    input_schema: fn() -> Value,
    output_schema: fn() -> Value,
    annotations: wit::Annotations,
    handler: Handler,
}

fn schema_of<T: JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null)
}

impl Tool {
    /// Wraps `f(args, ctx)`; the input schema comes from `A`, the output schema from `O`.
    pub fn new<A, O, F>(
        name: &'static str,
        title: &'static str,
        description: &'static str,
        f: F,
    ) -> Self
    where
        A: DeserializeOwned + JsonSchema + 'static,
        O: Serialize + JsonSchema + 'static,
        F: Fn(A, &Ctx) -> Result<O, ToolError> + 'static,
    {
        let handler: Handler = Box::new(move |args, ctx| {
            let args: A = serde_json::from_value(args).map_err(|e| {
                ToolError::invalid(
                    "arguments",
                    format!(
                        "{e}; check the field against the tool's input schema (`help` shows it)"
                    ),
                )
            })?;
            let out = f(args, ctx)?;
            serde_json::to_value(out)
                .map_err(|e| ToolError::failed(format!("result not serializable: {e}")))
        });
        Self {
            name,
            title,
            description,
            input_schema: schema_of::<A>,
            output_schema: schema_of::<O>,
            annotations: wit::Annotations {
                read_only: false,
                destructive: false,
                idempotent: false,
                open_world: false,
            },
            handler,
        }
    }

    /// Marks the tool as changing nothing.
    pub fn read_only(mut self) -> Self {
        self.annotations.read_only = true;
        self
    }

    /// Marks the tool as able to delete or overwrite.
    pub fn destructive(mut self) -> Self {
        self.annotations.destructive = true;
        self
    }

    /// Marks repeated identical calls as harmless.
    pub fn idempotent(mut self) -> Self {
        self.annotations.idempotent = true;
        self
    }

    /// Marks the tool as reaching systems outside infra.
    pub fn open_world(mut self) -> Self {
        self.annotations.open_world = true;
        self
    }
}

/// The plugin's tools; built by [`crate::plugin!`] on each call (a call runs in a fresh instance).
pub struct Registry {
    tools: Vec<Tool>,
}

impl Registry {
    /// Collects the tools.
    pub fn new(tools: Vec<Tool>) -> Self {
        Self { tools }
    }

    /// The `describe` export.
    pub fn describe(&self) -> Vec<wit::ToolSpec> {
        self.tools
            .iter()
            .map(|t| wit::ToolSpec {
                name: t.name.to_string(),
                title: t.title.to_string(),
                description: t.description.to_string(),
                input_schema: (t.input_schema)().to_string(),
                output_schema: (t.output_schema)().to_string(),
                annotations: t.annotations,
            })
            .collect()
    }

    /// The `call` export: splits the common `timeout_ms` off the arguments and runs the tool.
    pub fn call(&self, name: &str, args_json: &str) -> Result<String, wit::ToolError> {
        let run = || -> Result<Value, ToolError> {
            let tool =
                self.tools.iter().find(|t| t.name == name).ok_or_else(|| {
                    ToolError::not_found(format!("this plugin has no tool '{name}'"))
                })?;
            let mut args: Value = serde_json::from_str(args_json)
                .map_err(|e| ToolError::invalid("arguments", format!("not JSON: {e}")))?;
            let timeout_ms = args
                .as_object_mut()
                .and_then(|o| o.remove("timeout_ms"))
                .and_then(|v| v.as_u64())
                .map_or(30_000, |v| v.min(u32::MAX as u64) as u32);
            (tool.handler)(args, &Ctx { timeout_ms })
        };
        run().map(|v| v.to_string()).map_err(ToolError::into_wit)
    }
}
