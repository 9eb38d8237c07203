//! A plan as `terraform show -json` prints it, made safe to show and summed up.
//!
//! `show -json` prints sensitive values in clear: the values of variables declared
//! `sensitive = true`, and attributes Terraform marks sensitive (`*_sensitive` and
//! `sensitive_values` masks). [`redact`] replaces each with [`REDACTED`] and then takes every
//! sensitive variable's value out of any remaining string (a value built from one, such as
//! `"prefix-${var.secret}"`, is marked, but a check that cannot miss costs little). Only the
//! redacted JSON leaves the plugin.

use infra_sdk::prelude::*;

/// What a sensitive value is replaced with.
pub const REDACTED: &str = "(sensitive value)";

/// Shortest sensitive value taken out of free text: shorter ones (`"a"`, `"1"`) would cut
/// every other word and hide nothing.
const MIN_SECRET: usize = 4;

/// The values of the plan's sensitive variables, to take out of any text shown.
#[derive(Debug, Default)]
pub struct Secrets(Vec<String>);

impl Secrets {
    /// `text` with every sensitive value replaced by [`REDACTED`].
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.0 {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }
}

/// One resource's planned change.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Change {
    /// The resource address, e.g. `module.db.aws_db_instance.main` or `terraform_data.a`.
    pub address: String,
    /// `create`, `update`, `delete`, `replace`, `read` or `forget`.
    pub action: String,
}

/// How many resources a plan changes, by action.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct Counts {
    /// Resources created.
    pub add: u32,
    /// Resources updated in place.
    pub change: u32,
    /// Resources destroyed.
    pub destroy: u32,
    /// Resources destroyed and created again (each also counted in `add` and `destroy`, as
    /// Terraform counts them).
    pub replace: u32,
}

/// A plan summed up.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct Summary {
    /// Counts by action.
    pub counts: Counts,
    /// Each resource that changes (unchanged ones left out), in Terraform's order.
    pub changes: Vec<Change>,
    /// Root outputs that change, by name (values left out).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outputs_changed: Vec<String>,
    /// The plan changes nothing.
    pub empty: bool,
}

impl Summary {
    /// The plan as the user reads it when asked to approve: one line per change.
    pub fn text(&self, sha256: &str) -> String {
        let c = &self.counts;
        let mut s = format!(
            "Terraform plan {sha256}: {} to add, {} to change, {} to destroy ({} replaced)\n",
            c.add, c.change, c.destroy, c.replace
        );
        for ch in &self.changes {
            let sign = match ch.action.as_str() {
                "create" => "+",
                "delete" => "-",
                "replace" => "-/+",
                "update" => "~",
                _ => "?",
            };
            s.push_str(&format!("{sign} {} ({})\n", ch.address, ch.action));
        }
        s
    }

    /// Whether every change destroys (a destroy plan, or an empty one).
    pub fn only_destroys(&self) -> bool {
        self.changes.iter().all(|c| c.action == "delete")
    }
}

/// Sums up a (redacted or not) plan.
pub fn summarize(plan: &Value) -> Summary {
    let mut s = Summary::default();
    for rc in plan["resource_changes"].as_array().into_iter().flatten() {
        let actions: Vec<&str> = rc["change"]["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let action = match actions.as_slice() {
            ["no-op"] | [] => continue,
            ["create"] => {
                s.counts.add += 1;
                "create"
            }
            ["update"] => {
                s.counts.change += 1;
                "update"
            }
            ["delete"] => {
                s.counts.destroy += 1;
                "delete"
            }
            ["delete", "create"] | ["create", "delete"] => {
                s.counts.replace += 1;
                s.counts.add += 1;
                s.counts.destroy += 1;
                "replace"
            }
            ["read"] => "read",
            ["forget"] => "forget",
            other => {
                s.changes.push(Change {
                    address: rc["address"].as_str().unwrap_or_default().into(),
                    action: other.join("+"),
                });
                continue;
            }
        };
        s.changes.push(Change {
            address: rc["address"].as_str().unwrap_or_default().into(),
            action: action.into(),
        });
    }
    if let Some(outs) = plan["output_changes"].as_object() {
        for (name, oc) in outs {
            let actions = &oc["actions"];
            if actions != &json!(["no-op"]) {
                s.outputs_changed.push(name.clone());
            }
        }
    }
    s.empty = s.changes.is_empty() && s.outputs_changed.is_empty();
    s
}

/// Replaces every sensitive value in `plan` with [`REDACTED`]; returns the sensitive
/// variables' values, for scrubbing other text of the same run.
pub fn redact(plan: &mut Value) -> Secrets {
    let mut secrets = Vec::new();
    // Root variables declared sensitive: their values, and their defaults in the configuration.
    let sensitive: Vec<String> = plan["configuration"]["root_module"]["variables"]
        .as_object()
        .map(|vars| {
            vars.iter()
                .filter(|(_, v)| v["sensitive"] == json!(true))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    if let Some(Value::Object(vars)) = plan.get_mut("variables") {
        for name in &sensitive {
            if let Some(v) = vars.get_mut(name).and_then(|v| v.get_mut("value")) {
                strings_of(v, &mut secrets);
                *v = json!(REDACTED);
            }
        }
    }
    if let Some(c) = plan.get_mut("configuration") {
        mask_defaults(c, &mut secrets);
    }
    for key in ["resource_changes", "resource_drift"] {
        let Some(Value::Array(rcs)) = plan.get_mut(key) else {
            continue;
        };
        for change in rcs.iter_mut().filter_map(|rc| rc.get_mut("change")) {
            mask_pair(change);
        }
    }
    if let Some(Value::Object(outs)) = plan.get_mut("output_changes") {
        outs.values_mut().for_each(mask_pair);
    }
    if let Some(v) = plan
        .get_mut("prior_state")
        .and_then(|p| p.get_mut("values"))
    {
        mask_values(v);
    }
    if let Some(v) = plan.get_mut("planned_values") {
        mask_values(v);
    }
    secrets.retain(|s| s.len() >= MIN_SECRET);
    // Longest first, so a value containing another is replaced whole.
    secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    secrets.dedup();
    let secrets = Secrets(secrets);
    scrub_all(plan, &secrets);
    secrets
}

/// Masks `v` where `marks` (Terraform's sensitivity mask: `true`, or an object/array of masks
/// shaped like the value) says so.
fn mask(v: &mut Value, marks: &Value) {
    match marks {
        Value::Bool(true) => *v = json!(REDACTED),
        Value::Object(ms) => {
            if let Value::Object(o) = v {
                for (k, m) in ms {
                    if let Some(x) = o.get_mut(k) {
                        mask(x, m);
                    }
                }
            }
        }
        Value::Array(ms) => {
            if let Value::Array(a) = v {
                for (x, m) in a.iter_mut().zip(ms) {
                    mask(x, m);
                }
            }
        }
        _ => {}
    }
}

/// Masks a change's `before` and `after` by its `before_sensitive` and `after_sensitive`.
fn mask_pair(change: &mut Value) {
    for (value, marks) in [("before", "before_sensitive"), ("after", "after_sensitive")] {
        let m = change.get(marks).cloned().unwrap_or(Value::Null);
        if let Some(v) = change.get_mut(value) {
            mask(v, &m);
        }
    }
}

/// Masks a `planned_values` / `prior_state.values`: sensitive outputs, and every module's
/// resources.
fn mask_values(values: &mut Value) {
    if let Some(Value::Object(outs)) = values.get_mut("outputs") {
        for o in outs.values_mut() {
            if o.get("sensitive") == Some(&json!(true)) {
                o["value"] = json!(REDACTED);
            }
        }
    }
    if let Some(m) = values.get_mut("root_module") {
        mask_module(m);
    }
}

/// Masks the resources' values of a module of `planned_values` / `prior_state` and its
/// children, by each resource's `sensitive_values`.
fn mask_module(module: &mut Value) {
    if let Some(Value::Array(rs)) = module.get_mut("resources") {
        for r in rs {
            let m = r.get("sensitive_values").cloned().unwrap_or(Value::Null);
            if let Some(v) = r.get_mut("values") {
                mask(v, &m);
            }
        }
    }
    if let Some(Value::Array(cs)) = module.get_mut("child_modules") {
        cs.iter_mut().for_each(mask_module);
    }
}

/// In the configuration (and its module calls), the default of every variable declared
/// sensitive.
fn mask_defaults(v: &mut Value, secrets: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if o.get("sensitive") == Some(&json!(true))
                && let Some(d) = o.get_mut("default")
            {
                strings_of(d, secrets);
                *d = json!(REDACTED);
            }
            for x in o.values_mut() {
                mask_defaults(x, secrets);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| mask_defaults(x, secrets)),
        _ => {}
    }
}

/// Every string (and number, as text) inside `v`.
fn strings_of(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(a) => a.iter().for_each(|x| strings_of(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings_of(x, out)),
        _ => {}
    }
}

/// Takes the secrets out of every string in `v`.
fn scrub_all(v: &mut Value, secrets: &Secrets) {
    match v {
        Value::String(s) => {
            let clean = secrets.scrub(s);
            if clean != *s {
                *s = clean;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| scrub_all(x, secrets)),
        Value::Object(o) => o.values_mut().for_each(|x| scrub_all(x, secrets)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_values_are_masked_and_counted() {
        let mut plan = json!({
            "variables": {"secret": {"value": "CANARY-1"}, "plain": {"value": "x"}},
            "configuration": {"root_module": {"variables": {"secret": {"sensitive": true}, "plain": {}}}},
            "resource_changes": [
                {"address": "terraform_data.a", "change": {"actions": ["create"],
                 "before": null, "after": {"input": "hello-CANARY-1"},
                 "before_sensitive": false, "after_sensitive": {"input": true}}},
                {"address": "terraform_data.b", "change": {"actions": ["delete", "create"],
                 "after": {"input": "b"}, "after_sensitive": {}}},
                {"address": "terraform_data.c", "change": {"actions": ["no-op"]}}
            ],
            "planned_values": {"root_module": {"resources": [
                {"values": {"input": "hello-CANARY-1"}, "sensitive_values": {"input": true}}]}}
        });
        let secrets = redact(&mut plan);
        let text = plan.to_string();
        assert!(!text.contains("CANARY-1"), "{text}");
        assert_eq!(plan["variables"]["plain"]["value"], "x");
        assert_eq!(secrets.scrub("x CANARY-1 y"), format!("x {REDACTED} y"));
        let s = summarize(&plan);
        assert_eq!(
            (s.counts.add, s.counts.destroy, s.counts.replace),
            (2, 1, 1)
        );
        assert_eq!(s.changes.len(), 2);
        assert!(!s.only_destroys());
    }
}
