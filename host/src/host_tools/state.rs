//! `state`: values kept between calls — for the agent and for runbooks (`{{ state.k }}`).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::HostView;
use crate::error_kind::ErrorKind;
use crate::failure::Failure;
use crate::kv::{Refused, Scope};

pub const DESCRIPTION: &str = "Values kept between calls, read by runbooks as `{{ state.<key> }}`: \
`get`, `set` (any JSON value up to 64 KiB; known secrets are scrubbed before it is kept), `unset`, \
`list` (keys with a `prefix`), `clear` (keys with a `prefix`, or all), `dump` (keys and values). \
`scope`: `session` (default; gone when the server stops) or `persistent` (the state directory's \
state.json, 0600, shared by every infra process there). Keys: letters, digits and `._-:/`.";

/// Arguments of `state`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
#[schemars(extend("additionalProperties" = false))]
pub enum Args {
    /// One value.
    Get {
        /// The key.
        key: String,
        /// `session` (default) or `persistent`.
        scope: Option<Scope>,
    },
    /// Sets a value.
    Set {
        /// The key.
        key: String,
        /// Any JSON value.
        value: Value,
        /// `session` (default) or `persistent`.
        scope: Option<Scope>,
    },
    /// Removes a value.
    Unset {
        /// The key.
        key: String,
        /// `session` (default) or `persistent`.
        scope: Option<Scope>,
    },
    /// The keys (with a prefix).
    List {
        /// Only keys starting with this.
        prefix: Option<String>,
        /// `session` (default) or `persistent`.
        scope: Option<Scope>,
    },
    /// Removes the keys starting with `prefix` (all without one).
    Clear {
        /// Only keys starting with this.
        prefix: Option<String>,
        /// `session` (default) or `persistent`.
        scope: Option<Scope>,
    },
    /// Every key and value.
    Dump {
        /// `session` (default) or `persistent`.
        scope: Option<Scope>,
    },
}

fn failure(e: Refused) -> Failure {
    match e {
        Refused::Key(_) => Failure::invalid("key", e.to_string()),
        Refused::Large(..) => Failure::invalid("value", e.to_string()),
        Refused::Full => Failure::new(ErrorKind::Failed, e.to_string()),
        Refused::Io(_) => Failure::new(ErrorKind::Failed, e.to_string()),
    }
}

fn name(scope: Scope) -> &'static str {
    match scope {
        Scope::Session => "session",
        Scope::Persistent => "persistent",
    }
}

/// Runs `state`.
pub fn run(host: &HostView<'_>, args: Args) -> Result<Value, Failure> {
    let values = &host.shared.values;
    let s = |scope: Option<Scope>| scope.unwrap_or(Scope::Session);
    match args {
        Args::Get { key, scope } => {
            let v = values.get(s(scope), &key).map_err(failure)?;
            Ok(json!({"key": key, "scope": name(s(scope)), "found": v.is_some(), "value": v}))
        }
        Args::Set { key, value, scope } => {
            let replaced = values
                .set(s(scope), &key, value, &host.shared.redactor)
                .map_err(failure)?;
            Ok(json!({"key": key, "scope": name(s(scope)), "replaced": replaced}))
        }
        Args::Unset { key, scope } => {
            let was = values.unset(s(scope), &key).map_err(failure)?;
            Ok(json!({"key": key, "scope": name(s(scope)), "removed": was}))
        }
        Args::List { prefix, scope } => {
            let all = values
                .list(s(scope), prefix.as_deref().unwrap_or(""))
                .map_err(failure)?;
            let keys: Vec<&String> = all.keys().collect();
            Ok(json!({"scope": name(s(scope)), "count": keys.len(), "keys": keys}))
        }
        Args::Clear { prefix, scope } => {
            let n = values
                .clear(s(scope), prefix.as_deref().unwrap_or(""))
                .map_err(failure)?;
            Ok(json!({"scope": name(s(scope)), "removed": n}))
        }
        Args::Dump { scope } => {
            let all = values.list(s(scope), "").map_err(failure)?;
            Ok(json!({"scope": name(s(scope)), "count": all.len(), "values": all}))
        }
    }
}
