//! `plugins`: what each plugin is, imports and is granted — for reviewers.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::HostView;
use crate::error_kind::ErrorKind;
use crate::failure::Failure;
use crate::runtime::Plugin;

pub const DESCRIPTION: &str = "For reviewers: each plugin's sha256, declared imports (plugin.toml) \
vs actual imports (read from the binary), its tools and what the policy grants it; plugins refused \
at load with the reason; compile-cache hits; the profiles and targets (kind, server, protected; \
never a secret). `inspect` one plugin by name.";

/// Arguments of `plugins`: the action, with the fields only that action takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
#[schemars(extend("additionalProperties" = false))]
pub enum Args {
    /// Every plugin.
    List {},
    /// One plugin in full.
    Inspect {
        /// The plugin's name.
        name: String,
    },
}

/// A plugin as a reviewer reads it.
pub fn describe(host: &HostView<'_>, p: &Plugin) -> Value {
    let host_imports: Vec<&str> = p
        .imports
        .iter()
        .filter_map(|i| crate::runtime::imports::host_interface(i))
        .collect();
    json!({
        "name": p.manifest.name,
        "version": p.manifest.version,
        "description": p.manifest.description,
        "source": p.source,
        "sha256": p.sha256,
        "declared_imports": p.manifest.imports,
        "actual_imports": host_imports,
        "wasi_imports": p.imports.iter().filter(|i| i.starts_with("wasi:")).collect::<Vec<_>>(),
        "tools": p.tools.iter().map(|t| &t.name).collect::<Vec<_>>(),
        "grants": host.shared.policy.grants_summary(&p.manifest.name),
        "compiled_from_cache": p.cache_hit,
        "unsafe": p.manifest.needs_unsafe_flag,
        // Only for a plugin that is off: its tools are not listed and a call is refused.
        "off": p.manifest.gated(host.shared.flags),
    })
}

/// Every profile as a reviewer reads it: kind, endpoint, protected — never a secret.
fn profiles(host: &HostView<'_>) -> Value {
    let list: Vec<Value> = host
        .shared
        .profiles
        .iter()
        .map(|(name, p)| {
            json!({"name": name, "kind": p.kind(), "server": p.server(), "protected": p.protected()})
        })
        .collect();
    json!(list)
}

/// Every SSH target: endpoint, user, protected — never a secret.
fn targets(host: &HostView<'_>) -> Value {
    let list: Vec<Value> = host
        .shared
        .ssh
        .targets()
        .iter()
        .map(|(name, t)| {
            json!({"name": name, "endpoint": t.endpoint(), "user": t.user, "protected": t.protected()})
        })
        .collect();
    json!(list)
}

pub fn run(host: &HostView<'_>, args: Args) -> Result<Value, Failure> {
    match args {
        Args::List {} => Ok(json!({
            "plugins": host.plugins.iter().map(|p| describe(host, p)).collect::<Vec<_>>(),
            "refused": host.refused,
            "policy": host.shared.policy.origin(),
            "flags": {
                "INFRA_UNSAFE_LOCAL": host.shared.flags.unsafe_local,
                "INFRA_ALLOW_SECRET_EXPORT": host.shared.flags.allow_secret_export,
            },
            "compile_cache": host.cache,
            "profiles": profiles(host),
            "targets": targets(host),
        })),
        Args::Inspect { name } => match host.plugins.iter().find(|p| p.manifest.name == name) {
            Some(p) => Ok(describe(host, p)),
            None => Err(Failure::new(
                ErrorKind::NotFound,
                format!("no plugin '{name}' is loaded; list shows the loaded and the refused ones"),
            )),
        },
    }
}
