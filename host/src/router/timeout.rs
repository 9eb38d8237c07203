//! A call's deadline, from its arguments and the policy.

use std::time::Duration;

use serde_json::Value;

use crate::policy::Policy;
use crate::tool::ToolSpec;

/// The call's deadline: `timeout_ms` when given, else the plugin's or the policy's default,
/// never above the policy's maximum.
pub fn timeout_for(policy: &Policy, spec: &ToolSpec, args: &Value) -> Duration {
    let default = spec
        .plugin
        .as_deref()
        .map_or(policy.limits().timeout_ms, |p| policy.timeout_ms(p));
    let asked = args
        .get("timeout_ms")
        .and_then(Value::as_u64)
        .unwrap_or(default);
    Duration::from_millis(asked.clamp(1, policy.limits().max_timeout_ms))
}
