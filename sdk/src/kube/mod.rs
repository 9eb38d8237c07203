//! Kubernetes API helpers shared by the plugins that talk to a cluster through the host's `http`
//! capability (`k8s`, `gitops`): resource discovery and kind resolution, object paths, the API's
//! `Status` errors turned into advice, timestamps and ages, and multi-document manifests.
//!
//! Nothing here sends a request: the SDK binds no capability. A plugin hands [`Discovery`] a
//! [`Fetch`] over its own `http` binding, so the same logic serves every plugin's world.

mod discovery;
mod manifest;
mod path;
mod status;
mod time;

pub use discovery::{
    Discovery, Fetch, KindSpec, NO_CACHE, parse_group_list, parse_resource_list,
};
pub use manifest::parse_manifests;
pub use path::{ApiResource, check_name, check_namespace, encode, query_string};
pub use status::{Access, status_error};
pub use time::{age, format_time, now_unix, parse_time};
