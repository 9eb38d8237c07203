//! `contexts`: the kubernetes profiles this plugin may name, as the host lists them — never
//! their credentials.

use infra_sdk::prelude::*;

use crate::caps::http;

/// A kubernetes profile the plugin is granted.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Context {
    /// The profile's name: pass it as `profile`.
    pub name: String,
    /// The API server's URL, when the host tells it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Writes through it need the user's approval.
    pub protected: bool,
}

/// The granted profiles of kind `kubernetes`, by name.
pub fn contexts() -> Vec<Context> {
    let mut out: Vec<Context> = http::profiles()
        .into_iter()
        .filter(|p| p.kind == "kubernetes")
        .map(|p| Context {
            name: p.name,
            server: p.server,
            protected: p.protected,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
