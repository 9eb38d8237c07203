//! Build-script helpers for infra plugins.
//!
//! - [`build`] (for the host and the test crate): builds `wasm32-wasip2` plugin components from
//!   a build script and returns their paths.
//! - [`plugin_world`] (for each plugin's own `build.rs`): checks `plugin.toml` against
//!   `world.wit` and prepares the WIT that `infra_sdk::plugin!` generates the plugin's
//!   capability bindings from, so a capability the world does not import does not compile.

mod component;
mod world;

pub use component::{TARGET, build, rerun_if_changed};
pub use world::plugin_world;
