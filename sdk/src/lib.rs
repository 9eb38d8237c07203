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
mod command;
mod diff;
mod error;
mod file;
pub mod git;
mod input;
pub mod kube;
mod tool;

pub use artifact::Artifact;
pub use command::{Batch, CommandOutput, batch};
pub use diff::unified_diff;
pub use error::{ErrorKind, ToolError};
pub use file::FileInfo;
pub use input::{byte_source, decode_base64, encode_base64, file_mode, relative_path};
pub use tool::{Ctx, Tool};

#[doc(hidden)]
pub use tool::Registry as __Registry;

/// Generated bindings of the `infra:plugin/sdk` world: the shared records and the tool export.
/// A plugin's capability imports are not here: `plugin!` generates them from its own world.wit.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: ["../wit/host", "../wit/plugin"],
        world: "infra:plugin/sdk",
        pub_export_macro: true,
        export_macro_name: "__export_tool",
        default_bindings_module: "infra_sdk::bindings",
        generate_all,
    });
}

/// The records every capability shares ([`caps::types::CapError`], `key-value`,
/// `artifact-ref`). The capability interfaces themselves are generated in the plugin, as
/// `crate::caps`, by [`plugin!`] from the plugin's world.wit; a refusal comes back as
/// [`caps::types::CapError::Denied`] with advice, never as a trap.
pub mod caps {
    pub use crate::bindings::infra::host::types;
}

/// What a plugin file usually needs.
pub mod prelude {
    pub use crate::{Artifact, CommandOutput, Ctx, ErrorKind, FileInfo, Tool, ToolError};
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
    pub use serde_json::{Value, json};
}

#[doc(hidden)]
pub use schemars as __schemars;
#[doc(hidden)]
pub use serde_json as __serde_json;
#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// Declares the plugin's tools, generates its capability bindings and exports the tools.
///
/// `infra_sdk::plugin!(tools: [Tool::new(...), ...]);` — put it once, at the crate root. It
/// defines `crate::caps` with one module per host interface the plugin's `world.wit` imports
/// (`use crate::caps::http;`); calling any other interface does not compile. The plugin's
/// `build.rs` must call `infra_wasm_build::plugin_world()`, which checks `plugin.toml` against
/// `world.wit` and writes those bindings (see `sdk/README.md`).
#[macro_export]
macro_rules! plugin {
    (tools: [ $($tool:expr),* $(,)? ]) => {
        $crate::__world!();
        $crate::__tools!(tools: [ $($tool),* ]);
    };
}

/// The `describe`/`call` exports of the given tools (part of [`plugin!`]; a test plugin that
/// builds against another world than its own calls it directly).
#[doc(hidden)]
#[macro_export]
macro_rules! __tools {
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

        $crate::bindings::__export_tool!(__InfraPlugin with_types_in $crate::bindings);
    };
}

/// The plugin's `crate::caps`, from the bindings its build script wrote (part of [`plugin!`]; a
/// plugin that writes its exports by hand calls it directly).
#[doc(hidden)]
#[macro_export]
macro_rules! __world {
    () => {
        include!(env!(
            "INFRA_PLUGIN_BINDINGS",
            "infra_sdk::plugin! generates the plugin's capability bindings from its world.wit: \
             add a build.rs with `fn main() { infra_wasm_build::plugin_world() }` and \
             infra-wasm-build under [build-dependencies] (see sdk/README.md)"
        ));
    };
}
