//! git helpers shared by the plugins that work on repositories (`repo`, `gitops`): argument
//! hygiene, parsers of git's machine formats, status/diffstat/log reads, patch checks, commit
//! identities, kustomize/helm renders with an object summary.
//!
//! Nothing here runs a program: the SDK binds no capability. A plugin implements [`Runner`]
//! over its own `exec`, `artifacts` and `log` bindings for one repository, so the same logic
//! serves every plugin's world (as [`crate::kube::Fetch`] does for the Kubernetes API). Pushes
//! stay in the plugin: they go through its `git` binding, which the host checks.

mod check;
mod identity;
pub mod parse;
pub mod patch;
mod query;
pub mod render;
mod runner;
mod url;

pub use check::{args, branch_name, pathspecs, refspecs, relative, remote, rev};
pub use identity::{Person, identity};
pub use parse::cut;
pub use query::{
    BODY_MAX, DIFF_FLAGS, commit, log, log_args, log_of, numstat, numstat_args, numstat_of, status,
    status_args, status_of,
};
pub use runner::{INLINE_MAX, Opts, PARSE_MAX, Runner};
pub use url::mask_url;
