//! Runbooks: multi-step workflows over any tools, in the JSON shape of the tool infra replaces.
//!
//! - [`model`]: the runbook as written; [`store`]: the built-ins and the user's file;
//! - [`template`] and [`condition`]: what a step's arguments, `when`, `foreach` and
//!   `retry.until` may say;
//! - [`compile`]: every problem found without running; [`run`]: the steps as ordinary tool calls
//!   through the router; [`runs`]: the runs `jobs` lists and cancels.

pub mod compile;
pub mod condition;
pub mod model;
pub mod run;
pub mod runs;
pub mod store;
pub mod template;

pub use model::Runbook;
pub use store::Store;
