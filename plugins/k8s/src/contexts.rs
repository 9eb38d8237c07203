//! `contexts`: the kubernetes profiles this plugin may name, as the host lists them — never
//! their credentials.

use infra_sdk::prelude::*;

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

/// The granted profiles of kind `kubernetes`.
pub fn contexts() -> Result<Vec<Context>, ToolError> {
    Ok(granted_profiles()?
        .into_iter()
        .filter(|p| p.kind == "kubernetes")
        .map(|p| Context {
            name: p.name,
            server: p.server,
            protected: p.protected,
        })
        .collect())
}

/// A profile as the host's `http.profiles()` describes it.
struct ProfileInfo {
    name: String,
    kind: String,
    server: Option<String>,
    protected: bool,
}

/// The profiles this plugin is granted. The host's `http.profiles()` is not in this build's
/// `http.wit` yet; until it is, the answer says so rather than guessing from nothing.
fn granted_profiles() -> Result<Vec<ProfileInfo>, ToolError> {
    let none: Vec<ProfileInfo> = Vec::new();
    if none.is_empty() {
        return Err(ToolError::failed(
            "this host cannot list profiles to plugins yet (http.profiles is missing); look \
             for entries with \"type\": \"kubernetes\" in profiles.json and pass one as \
             `profile`",
        ));
    }
    Ok(none)
}
