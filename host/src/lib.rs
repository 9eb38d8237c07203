//! infra: an MCP server for infrastructure work in which every tool is a sandboxed WASI component.
//!
//! The map of this crate follows the layout in README.md: [`bootstrap`] builds the host from the
//! state directory; the fronts ([`mcp`], [`cli`]) talk to a [`router::Router`] over it, which
//! validates arguments, runs a plugin in the [`runtime`] or a [`host_tools`] tool, spills large
//! output to [`artifacts`] and appends to the [`audit`] log. Plugins reach the outside world
//! only through [`caps`], each gated by the [`policy`].

pub mod admission;
pub mod artifacts;
pub mod audit;
pub mod bootstrap;
pub mod cap;
pub mod caps;
pub mod cli;
pub mod compat;
pub mod confine;
pub mod demo;
pub mod docs;
pub mod error_kind;
pub mod failure;
pub mod flags;
pub mod host_tools;
pub mod inspect;
pub mod intents;
pub mod jobs;
pub mod kv;
pub mod limiter;
pub mod locked_file;
pub mod logging;
pub mod mcp;
pub mod named;
pub mod policy;
pub mod profiles;
pub mod redact;
pub mod router;
pub mod runbooks;
pub mod runtime;
pub mod schema;
pub mod state;
pub mod targets;
pub mod tool;
pub mod validate;
