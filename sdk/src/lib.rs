//! # infra-sdk — write sandboxed tools for infra
//!
//! A plugin is a `wasm32-wasip2` component that exports tools. With this crate a tool is a plain
//! Rust function taking a `serde` + `schemars` argument type; the SDK generates the input and
//! output JSON Schemas, the `describe`/`call` exports and the error mapping. The plugin reaches
//! the outside world only through [`caps`], the host capabilities of `wit/host/*.wit`, each gated
//! by the policy; what the component imports is exactly what it calls.
//!
//! ```ignore
//! use infra_sdk::prelude::*;
//!
//! #[derive(Deserialize, JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct Greet { name: String }
//!
//! #[derive(Serialize, JsonSchema)]
//! struct Greeting { message: String }
//!
//! fn greet(args: Greet, _ctx: &Ctx) -> Result<Greeting, ToolError> {
//!     Ok(Greeting { message: format!("hello, {}", args.name) })
//! }
//!
//! infra_sdk::plugin!(tools: [
//!     Tool::new("greet", "Greet", "Says hello.", greet).read_only(),
//! ]);
//! ```
//!
//! See `sdk/README.md` for the walk from nothing to a loaded, granted plugin.

mod artifact;
mod error;
mod input;
mod tool;

pub use artifact::Artifact;
pub use error::{ErrorKind, ToolError};
pub use input::decode_base64;
pub use tool::{Ctx, Tool};

#[doc(hidden)]
pub use tool::Registry as __Registry;

/// Generated bindings of the `infra:plugin/full` world (all host capabilities + the tool export).
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: ["../wit/host", "../wit/plugin"],
        world: "infra:plugin/full",
        pub_export_macro: true,
        export_macro_name: "__export_full",
        default_bindings_module: "infra_sdk::bindings",
        generate_all,
    });
}

/// The host capabilities a plugin may call. Each call is checked against the policy by the host;
/// a refusal comes back as [`caps::types::CapError::Denied`] with advice, never as a trap.
pub mod caps {
    pub use crate::bindings::infra::host::{
        artifacts, exec, fs, http, log, postgres, secrets, ssh, types,
    };
}

/// What a plugin file usually needs.
pub mod prelude {
    pub use crate::{Artifact, Ctx, ErrorKind, Tool, ToolError, caps};
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
    pub use serde_json::{Value, json};
}

#[doc(hidden)]
pub use schemars as __schemars;
#[doc(hidden)]
pub use serde_json as __serde_json;

/// Declares the plugin's tools and exports them to the host.
///
/// `infra_sdk::plugin!(tools: [Tool::new(...), ...]);` — put it once, at the crate root.
#[macro_export]
macro_rules! plugin {
    (tools: [ $($tool:expr),* $(,)? ]) => {
        struct __InfraPlugin;

        fn __infra_registry() -> $crate::__Registry {
            $crate::__Registry::new(vec![ $($tool),* ])
        }

        impl $crate::bindings::exports::infra::plugin::tool::Guest for __InfraPlugin {
            fn describe() -> Vec<$crate::bindings::exports::infra::plugin::tool::ToolSpec> {
                __infra_registry().describe()
            }
            fn call(
                tool: String,
                args_json: String,
            ) -> Result<String, $crate::bindings::exports::infra::plugin::tool::ToolError> {
                __infra_registry().call(&tool, &args_json)
            }
        }

        $crate::bindings::__export_full!(__InfraPlugin with_types_in $crate::bindings);
    };
}
