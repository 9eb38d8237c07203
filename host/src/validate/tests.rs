use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::suggest::edit_distance;
use super::*;

/// A small action enum shaped like the plugins' (internally tagged, closed).
#[allow(dead_code, reason = "only the schema is used")]
#[derive(Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
enum Ssh {
    /// Run a command.
    Exec {
        /// The command line to run.
        command: String,
        /// Wall-clock limit.
        timeout_ms: Option<u64>,
        headers: Option<BTreeMap<String, String>>,
        mode: Option<Mode>,
        limits: Option<Limits>,
        verbose: Option<bool>,
        ratio: Option<f64>,
    },
    /// Describe a host.
    SystemInfo {
        /// Which entry of targets.json.
        target: String,
    },
    /// Check the connection.
    Ping,
}

#[allow(dead_code, reason = "only the schema is used")]
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Mode {
    Rows,
    Row,
    Value,
}

#[allow(dead_code, reason = "only the schema is used")]
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Limits {
    /// At most this many rows.
    rows: u8,
    columns: Vec<i32>,
}

/// Common fields next to a flattened action enum: schemars closes this with
/// `unevaluatedProperties: false` instead of `additionalProperties: false`.
#[allow(dead_code, reason = "only the schema is used")]
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Call {
    timeout_ms: Option<u64>,
    trace_id: Option<String>,
    #[serde(flatten)]
    action: Action,
}

#[allow(dead_code, reason = "only the schema is used")]
#[derive(Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
enum Action {
    Exec { command: String },
    SystemInfo { target: String },
}

/// An untagged union, as for a field that takes text or a reference.
#[allow(dead_code, reason = "only the schema is used")]
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Upload {
    stdin: Option<Stdin>,
}

#[allow(dead_code, reason = "only the schema is used")]
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
enum Stdin {
    Text(String),
    Encoded {
        #[serde(rename = "base64")]
        base64: String,
    },
}

fn schema_of<T: JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(T)).expect("schema serializes")
}

fn ssh(args: Value) -> Result<(), ArgError> {
    validate_args("ssh", &schema_of::<Ssh>(), &args)
}

fn err(result: Result<(), ArgError>) -> ArgError {
    result.expect_err("arguments should be refused")
}

#[test]
fn schemars_closes_each_action_branch() {
    let schema = schema_of::<Ssh>();
    let branches = schema["oneOf"]
        .as_array()
        .expect("an internally tagged enum is a oneOf");
    assert_eq!(branches.len(), 3);
    for branch in branches {
        assert_eq!(branch["additionalProperties"], json!(false), "{branch}");
        assert!(
            branch["properties"]["action"]["const"].is_string(),
            "{branch}"
        );
    }
    assert!(
        schema["$defs"]["Limits"].is_object(),
        "nested structs go to $defs"
    );
    assert_eq!(schema_of::<Call>()["unevaluatedProperties"], json!(false));
}

#[test]
fn valid_arguments_pass() {
    ssh(json!({"action": "ping"})).unwrap();
    ssh(json!({"action": "system_info", "target": "prod"})).unwrap();
    ssh(json!({
        "action": "exec", "command": "uptime", "timeout_ms": 5000,
        "headers": {"Accept": "text/plain"}, "mode": "rows",
        "limits": {"rows": 10, "columns": [1, -2]}, "verbose": true, "ratio": 0.5,
    }))
    .unwrap();
}

#[test]
fn nullable_fields_accept_null() {
    ssh(
        json!({"action": "exec", "command": "ls", "timeout_ms": null, "mode": null,
               "limits": null, "headers": null}),
    )
    .unwrap();
}

#[test]
fn unknown_field_suggests_the_closest_field() {
    let e = err(ssh(json!({"action": "exec", "comand": "ls"})));
    assert_eq!(e.field, "comand");
    assert!(e.message.contains("unknown field `comand`"), "{e}");
    assert!(e.message.contains("`ssh` action `exec`"), "{e}");
    assert!(e.message.ends_with("did you mean `command`?"), "{e}");
}

#[test]
fn unknown_field_suggests_by_prefix_and_by_spelling_style() {
    let e = err(ssh(
        json!({"action": "exec", "command": "ls", "timeout": 5}),
    ));
    assert!(e.message.contains("did you mean `timeout_ms`?"), "{e}");
    let e = err(ssh(
        json!({"action": "exec", "command": "ls", "timeoutMs": 5}),
    ));
    assert!(e.message.contains("did you mean `timeout_ms`?"), "{e}");
}

#[test]
fn unknown_field_without_a_close_match_lists_the_allowed_fields() {
    let e = err(ssh(json!({"action": "exec", "command": "ls", "zzz": 1})));
    assert_eq!(e.field, "zzz");
    assert!(
        e.message.contains("allowed fields: `action`, `command`"),
        "{e}"
    );
    assert!(e.message.contains("`timeout_ms`"), "{e}");
    assert!(e.message.ends_with("Remove it or use one of those."), "{e}");
}

#[test]
fn unknown_field_of_another_action_names_that_action() {
    let e = err(ssh(
        json!({"action": "exec", "command": "ls", "target": "prod"}),
    ));
    assert_eq!(e.field, "target");
    assert!(
        e.message.contains("it belongs to action `system_info`"),
        "{e}"
    );
    assert!(
        e.message.contains("switch `action` or remove the field"),
        "{e}"
    );
}

#[test]
fn several_unknown_fields_are_named_together() {
    let e = err(ssh(
        json!({"action": "exec", "command": "ls", "zzz": 1, "yyy": 2}),
    ));
    // Which one leads depends on the map's key order; both must be named.
    let (first, other) = if e.field == "yyy" {
        ("yyy", "zzz")
    } else {
        ("zzz", "yyy")
    };
    assert!(
        e.message.contains(&format!("unknown field `{first}`")),
        "{e}"
    );
    assert!(
        e.message.contains(&format!("(also unknown: `{other}`)")),
        "{e}"
    );
}

#[test]
fn missing_required_field_names_it_and_its_type() {
    let e = err(ssh(json!({"action": "exec"})));
    assert_eq!(e.field, "command");
    assert!(
        e.message.contains("missing required field `command`"),
        "{e}"
    );
    assert!(
        e.message
            .contains("expected a string — The command line to run."),
        "{e}"
    );
    assert!(e.message.ends_with("add it to the arguments."), "{e}");
}

#[test]
fn wrong_type_names_field_expected_and_got() {
    let e = err(ssh(json!({"action": "exec", "command": 42})));
    assert_eq!(e.field, "command");
    assert_eq!(
        e.message,
        "`command` must be a string, got the number 42; send it as a string, e.g. \"42\"."
    );
    let e = err(ssh(
        json!({"action": "exec", "command": "ls", "timeout_ms": "30"}),
    ));
    assert!(
        e.message
            .contains("must be an integer or null, got the string \"30\""),
        "{e}"
    );
    assert!(
        e.message
            .ends_with("send the number without quotes, e.g. 30."),
        "{e}"
    );
    let e = err(ssh(
        json!({"action": "exec", "command": "ls", "timeout_ms": 2.5}),
    ));
    assert!(e.message.ends_with("send a whole number, e.g. 3."), "{e}");
    let e = err(ssh(
        json!({"action": "exec", "command": "ls", "verbose": "true"}),
    ));
    assert!(e.message.ends_with("send true without quotes."), "{e}");
    let e = err(ssh(json!({"action": "exec", "command": null})));
    assert!(
        e.message
            .contains("got null; omit `command` or send a string."),
        "{e}"
    );
}

#[test]
fn enum_mismatch_lists_the_allowed_values() {
    let e = err(ssh(
        json!({"action": "exec", "command": "ls", "mode": "rowz"}),
    ));
    assert_eq!(e.field, "mode");
    assert!(
        e.message.contains("must be one of `rows`, `row`, `value`"),
        "{e}"
    );
    assert!(e.message.ends_with("did you mean `rows`?"), "{e}");
    let e = err(ssh(
        json!({"action": "exec", "command": "ls", "mode": "columns"}),
    ));
    assert!(e.message.ends_with("use one of those values."), "{e}");
}

#[test]
fn missing_action_lists_the_actions() {
    let e = err(ssh(json!({"command": "ls"})));
    assert_eq!(e.field, "action");
    assert!(e.message.starts_with("missing `action` for `ssh`"), "{e}");
    assert!(e.message.contains("`exec`, `system_info`, `ping`"), "{e}");
    assert!(
        e.message.ends_with("e.g. {\"action\": \"exec\", ...}."),
        "{e}"
    );
}

#[test]
fn unknown_action_suggests_and_lists_the_actions() {
    let e = err(ssh(json!({"action": "exe", "command": "ls"})));
    assert_eq!(e.field, "action");
    assert!(
        e.message.starts_with("unknown action `exe` for `ssh`"),
        "{e}"
    );
    assert!(e.message.contains("did you mean `exec`?"), "{e}");
    assert!(
        e.message.contains("Valid: `exec`, `system_info`, `ping`."),
        "{e}"
    );
    let e = err(ssh(json!({"action": "reboot"})));
    assert!(
        e.message
            .ends_with("use one of `exec`, `system_info`, `ping`."),
        "{e}"
    );
    let e = err(ssh(json!({"action": 3})));
    assert!(
        e.message
            .contains("`action` must be a string naming the action"),
        "{e}"
    );
}

#[test]
fn ref_into_defs_is_followed_with_nested_paths() {
    let e = err(ssh(json!({"action": "exec", "command": "ls",
                           "limits": {"rows": 300, "columns": []}})));
    assert_eq!(e.field, "limits.rows");
    assert!(e.message.contains("must be at most 255, got 300"), "{e}");
    let e = err(ssh(json!({"action": "exec", "command": "ls",
                           "limits": {"rows": 1, "columns": [1, "x"]}})));
    assert_eq!(e.field, "limits.columns[1]");
    let e = err(ssh(json!({"action": "exec", "command": "ls",
                           "limits": {"rows": 1, "columns": [], "colums": []}})));
    assert_eq!(e.field, "limits.colums");
    assert!(e.message.contains("for `limits`"), "{e}");
    assert!(e.message.contains("did you mean `columns`?"), "{e}");
    let e = err(ssh(
        json!({"action": "exec", "command": "ls", "limits": {"columns": []}}),
    ));
    assert_eq!(e.field, "limits.rows");
    assert!(
        e.message
            .contains("expected an integer — At most this many rows."),
        "{e}"
    );
}

#[test]
fn map_values_are_checked_against_additional_properties() {
    let e = err(ssh(
        json!({"action": "exec", "command": "ls", "headers": {"Accept": 5}}),
    ));
    assert_eq!(e.field, "headers.Accept");
    assert!(
        e.message.contains("must be a string, got the number 5"),
        "{e}"
    );
}

#[test]
fn numeric_bounds_are_enforced() {
    let e = err(ssh(
        json!({"action": "exec", "command": "ls", "timeout_ms": -1}),
    ));
    assert_eq!(e.field, "timeout_ms");
    assert_eq!(
        e.message,
        "`timeout_ms` must be at least 0, got -1; use a value of 0 or more."
    );
}

#[test]
fn flattened_common_fields_merge_with_the_selected_action() {
    let schema = schema_of::<Call>();
    let call = |args: Value| validate_args("ssh", &schema, &args);
    call(json!({"action": "exec", "command": "ls", "timeout_ms": 5, "trace_id": "t"})).unwrap();
    let e = err(call(
        json!({"action": "exec", "command": "ls", "trace": "t"}),
    ));
    assert_eq!(e.field, "trace");
    assert!(e.message.contains("did you mean `trace_id`?"), "{e}");
    let e = err(call(
        json!({"action": "exec", "target": "prod", "command": "ls"}),
    ));
    assert!(
        e.message.contains("it belongs to action `system_info`"),
        "{e}"
    );
    let e = err(call(json!({"action": "system_info"})));
    assert_eq!(e.field, "target");
}

#[test]
fn arguments_must_be_an_object() {
    let e = err(ssh(json!("exec uptime")));
    assert_eq!(e.field, "");
    assert!(
        e.message.starts_with(
            "the arguments for `ssh` must be a JSON object, got the string \"exec uptime\""
        ),
        "{e}"
    );
    assert!(e.message.ends_with("(see `help` for tool `ssh`)."), "{e}");
    assert!(err(ssh(json!(null))).message.contains("got null"));
}

#[test]
fn untagged_union_reports_the_branch_of_the_right_kind() {
    let schema = schema_of::<Upload>();
    let upload = |args: Value| validate_args("ssh", &schema, &args);
    upload(json!({"stdin": "text"})).unwrap();
    upload(json!({"stdin": {"base64": "aGk="}})).unwrap();
    // The variant is open (no deny_unknown_fields), so the misspelling shows as a gap.
    let e = err(upload(json!({"stdin": {"base46": "aGk="}})));
    assert_eq!(e.field, "stdin.base64");
    assert!(
        e.message
            .contains("missing required field `base64` for `stdin`"),
        "{e}"
    );
    assert!(
        e.message
            .ends_with("did you mean `base64` instead of `base46`?"),
        "{e}"
    );
    let e = err(upload(json!({"stdin": 5})));
    assert_eq!(e.field, "stdin");
    assert!(
        e.message
            .contains("must be a string, or an object, got the number 5"),
        "{e}"
    );
}

#[test]
fn const_and_length_and_item_keywords() {
    let schema = json!({
        "type": "object",
        "properties": {
            "kind": {"const": "v1"},
            "name": {"type": "string", "minLength": 2, "maxLength": 4},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
            "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
        },
        "additionalProperties": false,
    });
    let check = |args: Value| validate_args("t", &schema, &args);
    check(json!({"kind": "v1", "name": "ab", "tags": ["x"], "pair": ["a", 1]})).unwrap();
    assert!(
        err(check(json!({"kind": "v2"})))
            .message
            .contains("must be `v1`")
    );
    assert!(
        err(check(json!({"name": "a"})))
            .message
            .contains("at least 2 characters")
    );
    assert!(
        err(check(json!({"name": "abcde"})))
            .message
            .contains("at most 4 characters")
    );
    assert!(
        err(check(json!({"tags": ["a", "b", "c"]})))
            .message
            .contains("at most 2 items")
    );
    assert_eq!(err(check(json!({"pair": ["a", "b"]}))).field, "pair[1]");
    let e = err(check(json!({"tags": 1})));
    assert!(e.message.contains("must be an array, got"), "{e}");
}

#[test]
fn boolean_and_cyclic_schemas_do_not_hang_or_panic() {
    validate_args("t", &json!(true), &json!({"a": 1})).unwrap();
    assert!(validate_args("t", &json!(false), &json!({})).is_err());
    let cyclic = json!({"$ref": "#/$defs/A", "$defs": {"A": {"$ref": "#/$defs/B"},
                                                    "B": {"$ref": "#/$defs/A"}}});
    validate_args("t", &cyclic, &json!({"x": 1})).unwrap();
    let looping = json!({"anyOf": [{"$ref": "#"}]});
    validate_args("t", &looping, &json!({"x": 1})).unwrap();
    let dangling = json!({"$ref": "#/$defs/Missing"});
    validate_args("t", &dangling, &json!({})).unwrap();
}

#[test]
fn error_displays_its_message() {
    let e = err(ssh(json!({"action": "exec"})));
    assert_eq!(e.to_string(), e.message);
    let _: &dyn std::error::Error = &e;
}

#[test]
fn aliases_rename_only_when_the_target_is_absent() {
    let mut args = json!({"cmd": "ls", "timeout_s": 30});
    apply_aliases(&mut args);
    assert_eq!(args, json!({"command": "ls", "timeout_ms": 30000}));

    let mut args = json!({"cmd": "ls", "command": "pwd", "timeout_s": 1, "timeout_ms": 5});
    apply_aliases(&mut args);
    assert_eq!(
        args,
        json!({"cmd": "ls", "command": "pwd", "timeout_s": 1, "timeout_ms": 5})
    );

    let mut args = json!({"timeout_s": 1.5});
    apply_aliases(&mut args);
    assert_eq!(args, json!({"timeout_ms": 1500}));

    let mut args = json!({"timeout_s": "2"});
    apply_aliases(&mut args);
    assert_eq!(args, json!({"timeout_ms": 2000}));

    // Not a usable number: left for validation to report as an unknown field.
    let mut args = json!({"timeout_s": "soon"});
    apply_aliases(&mut args);
    assert_eq!(args, json!({"timeout_s": "soon"}));
    let mut args = json!({"timeout_s": -1});
    apply_aliases(&mut args);
    assert_eq!(args, json!({"timeout_s": -1}));

    let mut not_an_object = json!(["cmd"]);
    apply_aliases(&mut not_an_object);
    assert_eq!(not_an_object, json!(["cmd"]));
}

#[test]
fn tool_aliases() {
    use crate::compat::tool;
    assert_eq!(tool("api"), "http");
    assert_eq!(tool("sql"), "psql");
    assert_eq!(tool("mcp_ssh_manager"), "ssh");
    assert_eq!(tool("ssh"), "ssh");
    assert_eq!(tool("API"), "API");
}

#[test]
fn did_you_mean_rules() {
    let fields = ["action", "command", "timeout_ms", "headers"];
    assert_eq!(did_you_mean("comand", fields), Some("command"));
    assert_eq!(
        did_you_mean("commnad", fields),
        Some("command"),
        "a swap is one edit"
    );
    assert_eq!(did_you_mean("header", fields), Some("headers"));
    assert_eq!(did_you_mean("TimeoutMs", fields), Some("timeout_ms"));
    assert_eq!(did_you_mean("timeout", fields), Some("timeout_ms"));
    assert_eq!(
        did_you_mean("cmd", fields),
        None,
        "cmd is an alias, not a typo"
    );
    assert_eq!(did_you_mean("xyz", fields), None);
    assert_eq!(did_you_mean("", fields), None);
    assert_eq!(did_you_mean("shh", ["ssh", "http", "psql"]), Some("ssh"));
}

#[test]
fn edit_distance_counts_edits() {
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("abc", "abc"), 0);
    assert_eq!(edit_distance("abc", "acb"), 1);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
}

/// Any JSON built from the schema's own field names and hostile values.
fn hostile_args() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop_oneof![
            Just("exec".to_string()),
            Just("system_info".to_string()),
            Just("ping".to_string()),
            Just("rows".to_string()),
            ".{0,12}",
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let key = prop_oneof![
            Just("action".to_string()),
            Just("command".to_string()),
            Just("timeout_ms".to_string()),
            Just("headers".to_string()),
            Just("mode".to_string()),
            Just("limits".to_string()),
            Just("rows".to_string()),
            Just("columns".to_string()),
            Just("target".to_string()),
            Just("ratio".to_string()),
            "[a-z_]{1,8}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    /// Whatever an agent sends, the validator answers (never panics), an error names a field
    /// and says what to do, and what it accepts the plugin's own serde types accept too — so
    /// a call that passes validation never fails later on argument shape.
    #[test]
    fn the_validator_agrees_with_serde_on_hostile_arguments(args in hostile_args()) {
        let schema = schema_of::<Ssh>();
        match validate_args("ssh", &schema, &args) {
            Ok(()) => {
                let parsed: Result<Ssh, _> = serde_json::from_value(args.clone());
                proptest::prop_assert!(parsed.is_ok(), "accepted {args} but serde refuses: {:?}", parsed.err());
            }
            Err(e) => proptest::prop_assert!(!e.message.is_empty(), "an empty message for {args}"),
        }
    }
}
