//! The names of the tool infra replaces, in one table: its tool names (`mcp_ssh_manager`,
//! `api`, …), action names (`job_status`, `sftp_exists`, `runbook_run`, …) and field names
//! (`cmd`, `timeout_s`, `profile_name`, `stdin_ref`) and shapes (`base_url` + `path`, a
//! pipeline's `http`/`sftp`/`postgres` ends) become infra's before validation, and what it
//! deliberately dropped is refused with the reason and what to use instead. The router records
//! what was sent next to what it meant (`sent` in the audit begin record); `help` shows the table.
//! Every entry is listed in docs/compat.md.

pub mod runbooks;

use serde_json::{Map, Value, json};

/// Tool names of the tool infra replaces → infra's.
pub const TOOLS: &[(&str, &str)] = &[
    ("mcp_ssh_manager", "ssh"),
    ("mcp_api_client", "http"),
    ("api", "http"),
    ("mcp_psql_manager", "psql"),
    ("sql", "psql"),
    ("mcp_repo", "repo"),
    ("mcp_local", "local"),
    ("mcp_runbook", "runbook"),
    ("mcp_state", "state"),
    ("mcp_jobs", "jobs"),
    ("job", "jobs"),
    ("mcp_artifacts", "artifacts"),
    ("mcp_audit", "audit"),
    ("mcp_pipeline", "pipeline"),
    ("mcp_intent", "intent"),
];

/// (tool, action of the tool infra replaces) → (infra's tool, infra's action).
pub const ACTIONS: &[(&str, &str, &str, &str)] = &[
    ("jobs", "job_status", "jobs", "status"),
    ("jobs", "job_wait", "jobs", "wait"),
    ("jobs", "follow_job", "jobs", "wait"),
    ("jobs", "job_logs_tail", "jobs", "logs"),
    ("jobs", "tail_job", "jobs", "logs"),
    ("jobs", "job_cancel", "jobs", "cancel"),
    ("jobs", "job_list", "jobs", "list"),
    ("ssh", "job_status", "jobs", "status"),
    ("ssh", "job_wait", "jobs", "wait"),
    ("ssh", "follow_job", "jobs", "wait"),
    ("ssh", "job_logs_tail", "jobs", "logs"),
    ("ssh", "tail_job", "jobs", "logs"),
    ("ssh", "job_kill", "jobs", "cancel"),
    ("ssh", "sftp_exists", "ssh", "sftp_stat"),
    ("runbook", "runbook_upsert", "runbook", "upsert"),
    ("runbook", "runbook_get", "runbook", "get"),
    ("runbook", "runbook_list", "runbook", "list"),
    ("runbook", "runbook_delete", "runbook", "delete"),
    ("runbook", "runbook_run", "runbook", "run"),
    ("runbook", "runbook_compile", "runbook", "compile"),
    ("audit", "audit_list", "audit", "list"),
    ("audit", "audit_tail", "audit", "tail"),
    ("audit", "audit_stats", "audit", "stats"),
    ("psql", "insert_bulk", "psql", "insert"),
    ("psql", "catalog_tables", "psql", "tables"),
    ("psql", "catalog_columns", "psql", "columns"),
    ("repo", "repo_info", "repo", "snapshot"),
    ("repo", "git_diff", "repo", "diff"),
    ("repo", "git_commit", "repo", "commit"),
    ("repo", "git_revert", "repo", "revert"),
    ("repo", "git_push", "repo", "push"),
    ("http", "smoke_http", "http", "check"),
];

/// Field names of the tool infra replaces → infra's: (tool or `*`, sent, meant). A rename
/// happens only when infra's name is absent.
pub const FIELDS: &[(&str, &str, &str)] = &[
    // Before `*`: the replaced tool named an SSH machine by its profile.
    ("ssh", "profile_name", "target"),
    ("*", "cmd", "command"),
    ("*", "profile_name", "profile"),
    ("*", "stdin_ref", "stdin_artifact"),
    ("jobs", "job_id", "id"),
    ("runbook", "input", "inputs"),
    ("intent", "input", "inputs"),
    ("ssh", "remote_path", "path"),
    ("psql", "filters", "where"),
    ("psql", "data", "set"),
    ("psql", "rows", "values"),
    ("artifacts", "max_bytes", "length"),
];

/// Field names that depend on the action: (infra's tool, infra's action, sent, meant, whether a
/// single value becomes a one-item list). Applied before [`FIELDS`].
pub const ACTION_FIELDS: &[(&str, &str, &str, &str, bool)] = &[
    ("psql", "insert", "data", "values", false),
    ("repo", "push", "branch", "refspecs", true),
    ("http", "check", "expect_code", "expect_status", true),
];

/// Fields of the tool infra replaces that change nothing in infra, removed (and kept in the
/// audit record's `sent`): (tool, field, why).
pub const IGNORED_FIELDS: &[(&str, &str, &str)] = &[
    (
        "jobs",
        "poll_interval_ms",
        "infra is told when the job ends; there is no polling to tune",
    ),
    (
        "jobs",
        "lines",
        "infra returns the last `tail_bytes` of each stream (default 16 KiB)",
    ),
];

/// Fields of the tool infra replaces that infra does not take: (tool or `*`, field, why and
/// what instead).
pub const DROPPED_FIELDS: &[(&str, &str, &str)] = &[
    (
        "*",
        "project",
        "projects are not kept: `target` names an entry of targets.json, `profile` one of profiles.json",
    ),
    (
        "*",
        "project_name",
        "projects are not kept: `target` names an entry of targets.json, `profile` one of profiles.json",
    ),
    (
        "*",
        "project_target",
        "projects are not kept: `target` names an entry of targets.json, `profile` one of profiles.json",
    ),
    (
        "*",
        "preset",
        "presets are not kept: store arguments in a runbook (`runbook` `upsert`)",
    ),
    (
        "*",
        "preset_name",
        "presets are not kept: store arguments in a runbook (`runbook` `upsert`)",
    ),
    (
        "ssh",
        "local_path",
        "infra's plugins touch no file of the machine infra runs on: upload `content`, `content_base64` or `content_artifact` (an artifact://, e.g. from `local` `fs_read`); downloads land in an artifact://",
    ),
    (
        "psql",
        "file_path",
        "an export lands in an artifact:// (read it with `artifacts`, or move it with a `pipeline` postgres_to_sftp or postgres_to_http flow)",
    ),
    (
        "repo",
        "repo_root",
        "infra names a repository by `root` (a root the operator defines in the policy) and `path` relative to it; an absolute `repo_root` is understood only when it lies in one of the policy's roots — this one does not: add a root containing it under [roots], or give `root` and `path`",
    ),
    (
        "pipeline",
        "http",
        "a flow named `<source>_to_<destination>` takes its ends as those objects; else give `source` and `destination` (`help` with {\"tool\": \"pipeline\"} shows them)",
    ),
    (
        "pipeline",
        "sftp",
        "a flow named `<source>_to_<destination>` takes its ends as those objects; else give `source` and `destination` (`help` with {\"tool\": \"pipeline\"} shows them)",
    ),
    (
        "pipeline",
        "postgres",
        "a flow named `<source>_to_<destination>` takes its ends as those objects; else give `source` and `destination` (`help` with {\"tool\": \"pipeline\"} shows them)",
    ),
];

/// What infra deliberately does not do: (tool, action or `*`, why and what instead).
pub const DROPPED: &[(&str, &str, &str)] = &[
    (
        "audit",
        "audit_clear",
        "the audit log is append-only and hash-chained, so nothing clears it; `audit verify` checks it",
    ),
    (
        "ssh",
        "profile_*",
        "SSH targets are entries of targets.json in the state directory (the host holds keys and host-key pins); edit that file",
    ),
    (
        "http",
        "profile_*",
        "HTTP profiles are entries of profiles.json in the state directory (secrets as env:/file: references); edit that file",
    ),
    (
        "psql",
        "profile_*",
        "Postgres profiles are entries of profiles.json in the state directory; edit that file",
    ),
    (
        "ssh",
        "authorized_keys_add",
        "changing a target's keys is an `exec` the operator reviews; run it with ssh `exec`",
    ),
    (
        "ssh",
        "exec_follow",
        "run `exec_detached`, then `jobs` `wait` (progress notifications while it runs)",
    ),
    (
        "*",
        "job_forget",
        "finished jobs leave the registry by themselves (the newest 500 are kept)",
    ),
    (
        "runbook",
        "runbook_upsert_dsl",
        "runbooks are JSON only: give the runbook object to `upsert`",
    ),
    (
        "runbook",
        "runbook_run_dsl",
        "runbooks are JSON only: store it with `upsert`, then `run`",
    ),
    (
        "repo",
        "exec",
        "repo runs only git, confined by the host; other programs run through the local tool (INFRA_UNSAFE_LOCAL=1)",
    ),
    (
        "pipeline",
        "deploy_smoke",
        "deploy with ssh `deploy_file`, then check with http `check` (or the `http.check` runbook)",
    ),
    (
        "legend",
        "*",
        "`help` explains the tools, their actions and fields",
    ),
    (
        "mcp_project",
        "*",
        "projects are not a tool: targets.json and profiles.json name the machines and services",
    ),
    (
        "project",
        "*",
        "projects are not a tool: targets.json and profiles.json name the machines and services",
    ),
    (
        "mcp_context",
        "*",
        "`intent` `explain` detects a repository's context",
    ),
    (
        "context",
        "*",
        "`intent` `explain` detects a repository's context",
    ),
    (
        "mcp_workspace",
        "*",
        "`intent` (`explain`, `dry_run`, `execute`) and `runbook` `run` cover it",
    ),
    (
        "workspace",
        "*",
        "`intent` (`explain`, `dry_run`, `execute`) and `runbook` `run` cover it",
    ),
    (
        "mcp_env",
        "*",
        "environment bundles are not stored by infra: pass `env` to ssh `exec`",
    ),
    (
        "env",
        "*",
        "environment bundles are not stored by infra: pass `env` to ssh `exec`",
    ),
    (
        "mcp_vault",
        "*",
        "Vault is reached as an http profile (its token held by the host): http `request`",
    ),
    (
        "vault",
        "*",
        "Vault is reached as an http profile (its token held by the host): http `request`",
    ),
    (
        "mcp_capability",
        "*",
        "the intent map is capabilities.json in the state directory; `intent` `explain` shows it",
    ),
    (
        "capability",
        "*",
        "the intent map is capabilities.json in the state directory; `intent` `explain` shows it",
    ),
    (
        "mcp_evidence",
        "*",
        "every call's evidence is its audit record and artifacts: `audit` `list` by trace id",
    ),
    (
        "evidence",
        "*",
        "every call's evidence is its audit record and artifacts: `audit` `list` by trace id",
    ),
    (
        "mcp_alias",
        "*",
        "aliases of the tool infra replaces are built in (docs/compat.md); user aliases are not kept",
    ),
    (
        "alias",
        "*",
        "aliases of the tool infra replaces are built in (docs/compat.md); user aliases are not kept",
    ),
    (
        "mcp_preset",
        "*",
        "presets are not kept: store arguments in a runbook (`runbook` `upsert`)",
    ),
    (
        "preset",
        "*",
        "presets are not kept: store arguments in a runbook (`runbook` `upsert`)",
    ),
];

/// A call refused because infra dropped what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The tool as sent.
    pub tool: String,
    /// The action as sent, if any.
    pub action: Option<String>,
    /// The field, when a field was dropped.
    pub field: Option<String>,
    /// Why, and what to use instead.
    pub why: &'static str,
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.field, &self.action) {
            (Some(field), Some(a)) => write!(
                f,
                "`{}` `{a}`: the field `{field}` is not provided by infra: {}",
                self.tool, self.why
            )?,
            (Some(field), None) => write!(
                f,
                "`{}`: the field `{field}` is not provided by infra: {}",
                self.tool, self.why
            )?,
            (None, Some(a)) => write!(
                f,
                "`{}` `{a}` is not provided by infra: {}",
                self.tool, self.why
            )?,
            (None, None) => write!(
                f,
                "tool `{}` is not provided by infra: {}",
                self.tool, self.why
            )?,
        }
        f.write_str(" (docs/compat.md lists what changed)")
    }
}

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

fn dropped(tool_sent: &str, tool: &str, action: Option<&str>) -> Option<Dropped> {
    DROPPED
        .iter()
        .find(|(t, a, _)| {
            let tool_fits = *t == "*" || *t == tool || *t == tool_sent;
            let action_fits = match action {
                Some(act) => matches(a, act),
                None => *a == "*",
            };
            tool_fits && (action_fits || *a == "*")
        })
        .map(|(_, _, why)| Dropped {
            tool: tool_sent.to_string(),
            action: action.map(str::to_string),
            field: None,
            why,
        })
}

/// Renames the fields of [`FIELDS`] that apply to `tool` in `map`, noting each in `renamed`.
fn rename_fields(tool: &str, map: &mut Map<String, Value>, renamed: &mut Map<String, Value>) {
    for (t, old, new) in FIELDS {
        if (*t == "*" || *t == tool)
            && !map.contains_key(*new)
            && let Some(v) = map.remove(*old)
        {
            map.insert(new.to_string(), v);
            renamed.insert(old.to_string(), json!({"meant": new}));
        }
    }
}

/// The replaced http tool's shapes: `base_url` + `path` (or `path` alone, relative to the
/// profile's base URL) is infra's `url`; a `body` that is JSON but not a string is `json`.
fn http_shape(map: &mut Map<String, Value>, renamed: &mut Map<String, Value>) {
    if !map.contains_key("url") {
        let base = map
            .get("base_url")
            .and_then(Value::as_str)
            .map(str::to_string);
        let path = map.get("path").and_then(Value::as_str).map(str::to_string);
        let url = match (base, path) {
            (Some(b), Some(p)) => Some(format!(
                "{}/{}",
                b.trim_end_matches('/'),
                p.trim_start_matches('/')
            )),
            (Some(b), None) => Some(b),
            (None, p) => p,
        };
        if let Some(url) = url {
            for k in ["base_url", "path"] {
                if map.remove(k).is_some() {
                    renamed.insert(k.into(), json!({"meant": "url"}));
                }
            }
            map.insert("url".into(), json!(url));
        }
    }
    if !map.contains_key("json")
        && matches!(map.get("body"), Some(b) if !b.is_string() && !b.is_null())
        && let Some(body) = map.remove("body")
    {
        map.insert("json".into(), body);
        renamed.insert("body".into(), json!({"meant": "json"}));
    }
}

/// The replaced ssh tool's batch: each command an object (`{"command": …}`), `stop_on_error`.
/// A command object that carries more than its command line (its own `cwd`, `env`) is left for
/// validation to refuse: infra's batch shares those between the commands.
fn ssh_batch(map: &mut Map<String, Value>, renamed: &mut Map<String, Value>) {
    if let Some(Value::Array(commands)) = map.get_mut("commands") {
        let mut changed = false;
        for c in commands.iter_mut() {
            if let Value::Object(o) = c
                && o.len() == 1
                && let Some(line @ Value::String(_)) = o.get("command").or_else(|| o.get("cmd"))
            {
                *c = line.clone();
                changed = true;
            }
        }
        if changed {
            renamed.insert("commands".into(), json!({"meant": "command lines"}));
        }
    }
    if !map.contains_key("continue_on_error")
        && let Some(Value::Bool(stop)) = map.get("stop_on_error").cloned()
    {
        map.remove("stop_on_error");
        map.insert("continue_on_error".into(), json!(!stop));
        renamed.insert(
            "stop_on_error".into(),
            json!({"meant": "continue_on_error (negated)"}),
        );
    }
}

/// The replaced pipeline tool's ends: an object named by its kind (`http`, `sftp`,
/// `postgres`), the source the first kind of the flow's name; its fields by that kind's tool
/// names, and the top-level `format` and `csv_header` of a postgres end moved into it.
fn pipeline_ends(map: &mut Map<String, Value>, renamed: &mut Map<String, Value>) {
    let Some(flow) = map.get("flow").and_then(Value::as_str).map(str::to_string) else {
        return;
    };
    let Some((from, to)) = flow.split_once("_to_") else {
        return;
    };
    for (kind, side) in [(from, "source"), (to, "destination")] {
        if map.contains_key(side) || !matches!(map.get(kind), Some(Value::Object(_))) {
            continue;
        }
        let Some(Value::Object(mut end)) = map.remove(kind) else {
            continue;
        };
        let mut inner = Map::new();
        match kind {
            "sftp" => rename_fields("ssh", &mut end, &mut inner),
            "postgres" => {
                rename_fields("psql", &mut end, &mut inner);
                for (top, field) in [("format", "format"), ("csv_header", "header")] {
                    if !end.contains_key(field)
                        && let Some(v) = map.remove(top)
                    {
                        end.insert(field.into(), v);
                        inner.insert(top.into(), json!({"meant": format!("{side}.{field}")}));
                    }
                }
            }
            _ => {
                rename_fields("http", &mut end, &mut inner);
                http_shape(&mut end, &mut inner);
            }
        }
        map.insert(side.into(), Value::Object(end));
        renamed.insert(kind.into(), json!({"meant": side, "names": inner}));
    }
}

/// Infra's name of a tool name (unchanged when it is not an alias).
pub fn tool(name: &str) -> &str {
    TOOLS
        .iter()
        .find(|(old, _)| *old == name)
        .map(|(_, new)| *new)
        .unwrap_or(name)
}

/// Resolves a call of `tool_sent` with `args` into infra's tool, rewriting `args` in place.
/// Returns the tool and, when any name changed, what was sent (for the audit record); a
/// dropped tool or action is refused with the reason.
pub fn resolve(tool_sent: &str, args: &mut Value) -> Result<(String, Option<Value>), Dropped> {
    resolve_in(tool_sent, args, &|_| None)
}

/// Replaces `map[key]`, an absolute directory that lies in a root (`locate`), by `root` +
/// `path`; returns what was sent and meant. Anything else is left as it is, for the caller to
/// refuse.
pub(crate) fn repository_in_a_root(
    map: &mut Map<String, Value>,
    key: &str,
    locate: &dyn Fn(&std::path::Path) -> Option<(String, String)>,
) -> Option<Value> {
    if map.contains_key("root") {
        return None;
    }
    let Some(Value::String(dir)) = map.get(key) else {
        return None;
    };
    let dir = dir.clone();
    let (root, path) = dir
        .starts_with('/')
        .then(|| locate(std::path::Path::new(&dir)))
        .flatten()?;
    map.remove(key);
    map.insert("root".into(), json!(root));
    map.insert("path".into(), json!(path));
    Some(json!({"sent": dir, "meant": format!("root {root}, path {path}")}))
}

/// [`resolve`], with `locate` turning an absolute directory into a root and a path in it (the
/// replaced repo tool's `repo_root`); one that lies in no root stays refused.
pub fn resolve_in(
    tool_sent: &str,
    args: &mut Value,
    locate: &dyn Fn(&std::path::Path) -> Option<(String, String)>,
) -> Result<(String, Option<Value>), Dropped> {
    let mut tool_name = tool(tool_sent).to_string();
    let action = args
        .get("action")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(d) = dropped(tool_sent, &tool_name, action.as_deref()) {
        return Err(d);
    }
    let mut renamed = Map::new();
    if let Some(a) = &action
        && let Some((_, _, t, new)) = ACTIONS
            .iter()
            .find(|(t, old, _, _)| *t == tool_name && old == a)
    {
        tool_name = t.to_string();
        args["action"] = json!(new);
        renamed.insert("action".into(), json!({"sent": a, "meant": new}));
    }
    if let Value::Object(map) = args {
        // The replaced intent tool took `{"intent": {"type", "inputs"}}`.
        if tool_name == "intent"
            && let Some(Value::Object(mut inner)) = map.remove("intent")
        {
            // `explain` takes no inputs: an intent's inputs do not change its context.
            let keys: &[&str] = match action.as_deref() {
                Some("explain") => &["type"],
                _ => &["type", "inputs", "input"],
            };
            for k in keys {
                if let Some(v) = inner.remove(*k) {
                    map.entry(k.to_string()).or_insert(v);
                }
            }
            renamed.insert("intent".into(), json!({"meant": "type, inputs"}));
        }
        let infra_action = map
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        for (t, a, old, new, list) in ACTION_FIELDS {
            if *t == tool_name
                && *a == infra_action
                && !map.contains_key(*new)
                && let Some(v) = map.remove(*old)
            {
                let v = match v {
                    Value::Array(_) => v,
                    v if *list => json!([v]),
                    v => v,
                };
                map.insert(new.to_string(), v);
                renamed.insert(old.to_string(), json!({"meant": new}));
            }
        }
        match tool_name.as_str() {
            "http" => http_shape(map, &mut renamed),
            "pipeline" => pipeline_ends(map, &mut renamed),
            "ssh" if infra_action == "batch" => ssh_batch(map, &mut renamed),
            _ => {}
        }
        rename_fields(&tool_name, map, &mut renamed);
        if tool_name == "repo"
            && !map.contains_key("path")
            && let Some(note) = repository_in_a_root(map, "repo_root", locate)
        {
            renamed.insert("repo_root".into(), note);
        }
        for (t, field, why) in IGNORED_FIELDS {
            if *t == tool_name
                && let Some(v) = map.remove(*field)
            {
                renamed.insert(field.to_string(), json!({"sent": v, "ignored": why}));
            }
        }
        if let Some((_, field, why)) = DROPPED_FIELDS
            .iter()
            .find(|(t, f, _)| (*t == "*" || *t == tool_name) && map.contains_key(*f))
        {
            return Err(Dropped {
                tool: tool_sent.to_string(),
                action: action.clone(),
                field: Some(field.to_string()),
                why,
            });
        }
    }
    let before_timeout = args.get("timeout_s").cloned();
    crate::validate::apply_aliases(args);
    if let Some(t) = before_timeout
        && args.get("timeout_s").is_none()
    {
        renamed.insert(
            "timeout_s".into(),
            json!({"sent": t, "meant": "timeout_ms"}),
        );
    }
    let changed = tool_name != tool_sent || !renamed.is_empty();
    Ok((
        tool_name.clone(),
        changed.then(|| json!({"tool": tool_sent, "meant": tool_name, "names": renamed})),
    ))
}

/// The table as `help` shows it.
pub fn table() -> Value {
    json!({
        "tools": TOOLS.iter().map(|(o, n)| json!({"sent": o, "meant": n})).collect::<Vec<_>>(),
        "actions": ACTIONS.iter().map(|(t, o, nt, n)| json!({"tool": t, "sent": o, "meant": format!("{nt} {n}")})).collect::<Vec<_>>(),
        "fields": FIELDS.iter().map(|(t, o, n)| json!({"tool": t, "sent": o, "meant": n})).chain([json!({"tool": "*", "sent": "timeout_s", "meant": "timeout_ms (×1000)"})]).collect::<Vec<_>>(),
        "action_fields": ACTION_FIELDS.iter().map(|(t, a, o, n, _)| json!({"tool": t, "action": a, "sent": o, "meant": n})).collect::<Vec<_>>(),
        "ignored_fields": IGNORED_FIELDS.iter().map(|(t, f, why)| json!({"tool": t, "field": f, "why": why})).collect::<Vec<_>>(),
        "dropped_fields": DROPPED_FIELDS.iter().map(|(t, f, why)| json!({"tool": t, "field": f, "why": why})).collect::<Vec<_>>(),
        "dropped": DROPPED.iter().map(|(t, a, why)| json!({"tool": t, "action": a, "why": why})).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repo_root_in_a_root_becomes_root_and_path_and_one_outside_is_refused() {
        let locate = |p: &std::path::Path| {
            p.strip_prefix("/srv/work")
                .ok()
                .map(|rel| ("work".to_string(), rel.display().to_string()))
        };
        let mut a = json!({"action": "repo_info", "repo_root": "/srv/work/app"});
        let (t, sent) = resolve_in("mcp_repo", &mut a, &locate).unwrap();
        assert_eq!(t, "repo");
        assert_eq!((&a["root"], &a["path"]), (&json!("work"), &json!("app")));
        assert!(a.get("repo_root").is_none());
        assert_eq!(sent.unwrap()["names"]["repo_root"]["sent"], "/srv/work/app");
        let mut a = json!({"action": "repo_info", "repo_root": "/elsewhere"});
        let d = resolve_in("mcp_repo", &mut a, &locate).unwrap_err();
        assert_eq!(d.field.as_deref(), Some("repo_root"));
        let mut a = json!({"action": "repo_info", "repo_root": "relative/app"});
        assert!(
            resolve_in("mcp_repo", &mut a, &locate).is_err(),
            "only absolute paths"
        );
    }

    #[test]
    fn names_are_resolved_and_what_was_sent_is_kept() {
        let mut a = json!({"action": "job_status", "id": "j-1"});
        let (t, sent) = resolve("mcp_ssh_manager", &mut a).unwrap();
        assert_eq!(t, "jobs");
        assert_eq!(a["action"], "status");
        let sent = sent.unwrap();
        assert_eq!(sent["tool"], "mcp_ssh_manager");
        assert_eq!(sent["names"]["action"]["sent"], "job_status");
        let mut a = json!({"action": "exec", "cmd": "ls", "timeout_s": 2});
        let (t, sent) = resolve("ssh", &mut a).unwrap();
        assert_eq!(
            (t.as_str(), &a["command"], &a["timeout_ms"]),
            ("ssh", &json!("ls"), &json!(2000))
        );
        assert!(sent.unwrap()["names"]["cmd"].is_object());
        let mut a = json!({"action": "exec", "command": "x"});
        assert_eq!(
            resolve("ssh", &mut a).unwrap().1,
            None,
            "infra's own names record nothing"
        );
    }

    #[test]
    fn dropped_things_are_refused_with_the_reason() {
        let e = resolve("mcp_audit", &mut json!({"action": "audit_clear"})).unwrap_err();
        assert!(e.to_string().contains("append-only"));
        let e = resolve("ssh", &mut json!({"action": "profile_upsert"})).unwrap_err();
        assert!(e.to_string().contains("targets.json"));
        let e = resolve("mcp_vault", &mut json!({"action": "profile_list"})).unwrap_err();
        assert!(e.to_string().contains("http profile"));
        assert!(resolve("legend", &mut json!({})).is_err());
        assert!(resolve("ssh", &mut json!({"action": "exec"})).is_ok());
    }

    #[test]
    fn shapes_of_the_replaced_tool_become_infra_s() {
        let mut a = json!({"action": "smoke_http", "base_url": "http://h:1/", "path": "/health",
            "expect_code": 200, "body": {"x": 1}});
        assert_eq!(resolve("api", &mut a).unwrap().0, "http");
        assert_eq!(
            a,
            json!({"action": "check", "url": "http://h:1/health", "expect_status": [200],
                "json": {"x": 1}})
        );
        let mut a = json!({"action": "exec", "profile_name": "box", "command": "true"});
        resolve("mcp_ssh_manager", &mut a).unwrap();
        assert_eq!((&a["target"], a.get("profile")), (&json!("box"), None));
        let mut a = json!({"action": "batch", "profile_name": "box", "stop_on_error": false,
            "commands": [{"command": "true"}, "uname", {"command": "ls", "cwd": "/"}]});
        resolve("ssh", &mut a).unwrap();
        assert_eq!(
            (&a["commands"], &a["continue_on_error"]),
            (
                &json!(["true", "uname", {"command": "ls", "cwd": "/"}]),
                &json!(true)
            ),
            "a command with its own cwd is left for validation to refuse"
        );
        let mut a = json!({"action": "insert", "table": "t", "data": {"a": 1}});
        resolve("sql", &mut a).unwrap();
        assert_eq!(a["values"], json!({"a": 1}), "insert's data is its values");
        let mut a = json!({"action": "insert_bulk", "table": "t", "rows": [{"a": 1}]});
        resolve("sql", &mut a).unwrap();
        assert_eq!(
            (&a["action"], &a["values"]),
            (&json!("insert"), &json!([{"a": 1}]))
        );
        let mut a = json!({"action": "git_push", "remote": "origin", "branch": "main"});
        resolve("mcp_repo", &mut a).unwrap();
        assert_eq!(a["refspecs"], json!(["main"]));
        let mut a = json!({"action": "run", "flow": "http_to_sftp", "http": {"base_url": "http://h",
            "path": "x"}, "sftp": {"profile_name": "box", "remote_path": "/tmp/x"}});
        let (_, sent) = resolve("mcp_pipeline", &mut a).unwrap();
        assert_eq!(a["source"], json!({"url": "http://h/x"}));
        assert_eq!(a["destination"], json!({"target": "box", "path": "/tmp/x"}));
        assert_eq!(sent.unwrap()["names"]["sftp"]["meant"], "destination");
        let mut a = json!({"action": "job_wait", "job_id": "j-1", "poll_interval_ms": 100});
        let (_, sent) = resolve("mcp_jobs", &mut a).unwrap();
        assert_eq!(a, json!({"action": "wait", "id": "j-1"}));
        assert!(sent.unwrap()["names"]["poll_interval_ms"]["ignored"].is_string());
        let e = resolve(
            "ssh",
            &mut json!({"action": "sftp_upload", "local_path": "/etc/passwd"}),
        )
        .unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("the field `local_path` is not provided by infra") && m.contains("content"),
            "{m}"
        );
        let sent = json!({"action": "check_host", "project": "p", "target": "prod"});
        let e = resolve("mcp_ssh_manager", &mut sent.clone()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("project"));
        assert!(e.to_string().contains("targets.json"), "{e}");
    }

    #[test]
    fn docs_compat_md_lists_every_entry() {
        let doc = include_str!("../../docs/compat.md");
        for (sent, _) in TOOLS {
            assert!(doc.contains(&format!("`{sent}`")), "{sent}");
        }
        for (t, sent, _) in FIELDS {
            assert!(doc.contains(&format!("| `{t}` | `{sent}` |")), "{t} {sent}");
        }
        for (t, f, _) in DROPPED_FIELDS.iter().chain(IGNORED_FIELDS) {
            assert!(doc.contains(&format!("| `{t}` | `{f}` |")), "{t} {f}");
        }
        for (t, a, sent, ..) in ACTION_FIELDS {
            assert!(
                doc.contains(&format!("| `{t}` | `{a}` | `{sent}` |")),
                "{t} {a} {sent}"
            );
        }
        for (t, a, ..) in ACTIONS {
            assert!(doc.contains(&format!("| `{t}` | `{a}` |")), "{t} {a}");
        }
        for (t, a, _) in DROPPED {
            assert!(doc.contains(&format!("| `{t}` | `{a}` |")), "{t} {a}");
        }
        for (sent, meant) in runbooks::NAMES.iter().chain(runbooks::INPUTS) {
            assert!(
                doc.contains(&format!("| `{sent}` | `{meant}` |")),
                "{sent} {meant}"
            );
        }
        for (sent, why) in runbooks::IGNORED_INPUTS
            .iter()
            .chain(runbooks::DROPPED_INPUTS)
        {
            assert!(
                doc.contains(&format!("| `{sent}` |")) && doc.contains(why),
                "{sent}"
            );
        }
    }
}
