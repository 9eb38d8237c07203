//! Host-side validation of tool arguments against the tool's input JSON Schema.
//!
//! The point is the error an agent gets back, not JSON Schema conformance: a general validator
//! answers "is not valid under any of the schemas" for an action-based tool, which an agent cannot
//! act on. This is a focused validator for the subset of JSON Schema that `schemars` 1.x emits for
//! tool arguments — `type` (incl. `["string", "null"]`), `properties`, `required`,
//! `additionalProperties` (bool or schema), `unevaluatedProperties: false`, `items`,
//! `prefixItems`, `enum`, `const`, `minimum`/`maximum` (and the exclusive forms),
//! `minLength`/`maxLength`, `minItems`/`maxItems`, `$ref` into `$defs`, `allOf`, and
//! `oneOf`/`anyOf`. Keywords outside that subset (`pattern`, `format`, …) are accepted
//! without a check: the plugin still deserializes its arguments and reports what it rejects.
//!
//! An internally tagged enum (`#[serde(tag = "action")]`) becomes a `oneOf` whose branches each
//! pin `action` with `const`. Such a union is resolved by its tag, not by trying every branch:
//! the branch whose `action` matches is merged with the enclosing object schema (common fields
//! such as `timeout_ms` live there when the enum is `#[serde(flatten)]`ed) and validated as one
//! object, so an unknown field is reported against the fields of *that* action.
//!
//! A `oneOf` is accepted when at least one branch matches (not exactly one): an ambiguous schema
//! is the tool author's bug, and an agent cannot fix it by changing its arguments.

use std::cell::Cell;
use std::fmt::{self, Write as _};

use serde_json::{Map, Value};

/// Why a tool's arguments were refused, in words an agent can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError {
    /// Where the problem is: a dotted path such as `headers.Accept` or `steps[2].tool`, `action`
    /// for the discriminator, and empty for the arguments object as a whole.
    pub field: String,
    /// What is wrong, naming the field, ending with what to do about it.
    pub message: String,
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The message already names the field; repeating it would read badly.
        f.write_str(&self.message)
    }
}

impl std::error::Error for ArgError {}

/// Validates `args` for `tool` against the tool's input `schema`.
///
/// Returns the first problem found, in this order: the arguments' shape, the action
/// (discriminator), unknown fields, missing required fields, then each field's value.
pub fn validate_args(tool: &str, schema: &Value, args: &Value) -> Result<(), ArgError> {
    // MCP arguments are always an object; saying so beats "matches none of the actions".
    if !args.is_object() {
        return Err(ArgError {
            field: String::new(),
            message: format!(
                "the arguments for `{tool}` must be a JSON object, got {}; send named fields, \
                 e.g. {{\"action\": ...}} (see `help` for tool `{tool}`).",
                describe_value(args)
            ),
        });
    }
    let validator = Validator {
        tool,
        root: schema,
        depth: Cell::new(0),
    };
    validator.check(schema, args, "")
}

/// Rewrites the argument names agents send to the tool infra replaces into infra's names:
/// `cmd` → `command` and `timeout_s` (seconds) → `timeout_ms` (milliseconds).
///
/// A rename happens only when the target key is absent, so an explicit `command` or
/// `timeout_ms` always wins (the leftover alias is then reported as an unknown field).
/// A `timeout_s` that is not a non-negative number (or a string holding one) is left alone
/// for validation to report.
pub fn apply_aliases(args: &mut Value) {
    let Value::Object(map) = args else {
        return;
    };
    if !map.contains_key("command")
        && let Some(command) = map.remove("cmd")
    {
        map.insert("command".to_owned(), command);
    }
    if !map.contains_key("timeout_ms")
        && let Some(millis) = map.get("timeout_s").and_then(seconds_to_millis)
    {
        map.remove("timeout_s");
        map.insert("timeout_ms".to_owned(), Value::from(millis));
    }
}

/// `timeout_s` as milliseconds, when it is a finite, non-negative number of seconds.
fn seconds_to_millis(seconds: &Value) -> Option<u64> {
    let seconds = match seconds {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    let millis = (seconds * 1000.0).round();
    // `as` saturates; the bound check keeps absurd values from turning into u64::MAX silently.
    (seconds.is_finite() && seconds >= 0.0 && millis <= u64::MAX as f64).then_some(millis as u64)
}

/// Maps a tool name of the tool infra replaces to infra's: `api` → `http`, `sql` → `psql`;
/// every other name is returned unchanged.
pub fn tool_alias(name: &str) -> &str {
    match name {
        "api" => "http",
        "sql" => "psql",
        other => other,
    }
}

/// The candidate `word` was most likely meant to be, if one is close enough: equal ignoring
/// case, `_` and `-` (`timeoutMs` → `timeout_ms`); within a few edits (one for words of up to
/// three letters, two up to six, three beyond); or a prefix either way (`timeout` →
/// `timeout_ms`). Ties go to the earlier candidate.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_n = normalize(word);
    if word_n.is_empty() {
        return None;
    }
    let max_edits = match word_n.chars().count() {
        0..=3 => 1,
        4..=6 => 2,
        _ => 3,
    };
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let cand_n = normalize(candidate);
        if cand_n.is_empty() {
            continue;
        }
        let distance = edit_distance(&word_n, &cand_n);
        let score = if distance <= max_edits {
            distance
        } else if (word_n.len() >= 3 && cand_n.starts_with(&word_n))
            || (cand_n.len() >= 3 && word_n.starts_with(&cand_n))
        {
            // A prefix is a weaker hint than a near-spelling, so it ranks after any of those.
            max_edits + 1
        } else {
            continue;
        };
        if best.is_none_or(|(best_score, _)| score < best_score) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

fn normalize(word: &str) -> String {
    word.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
/// adjacent characters (the commonest typo) each cost one.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

/// How many `$ref`/`allOf` hops one value may take before the schema is deemed cyclic; deep
/// enough for any real schema, small enough to stop `A → B → A` quickly.
const MAX_SCHEMA_HOPS: usize = 32;

/// How deeply checks may nest. Values nest at most 128 deep (serde_json's parse limit), so this
/// only trips on a schema that recurses without consuming the value (`A = anyOf[$ref A]`).
const MAX_CHECK_DEPTH: usize = 256;

struct Validator<'s> {
    tool: &'s str,
    root: &'s Value,
    /// Nesting of [`Validator::check`] calls, to stop a self-referencing union.
    depth: Cell<usize>,
}

/// The tag of a tagged union (`action` for an action enum) and the branch each value selects.
struct Tagged<'s> {
    key: String,
    branches: Vec<(Vec<String>, &'s Value)>,
}

impl Tagged<'_> {
    fn all_values(&self) -> Vec<&str> {
        self.branches
            .iter()
            .flat_map(|(values, _)| values.iter().map(String::as_str))
            .collect()
    }
}

/// The tagged union that chose the branch being validated, kept to explain unknown fields.
struct Selection<'s> {
    key: String,
    value: String,
    tagged: Tagged<'s>,
}

/// Every schema that applies to one value at the same time: the schema itself, what its
/// `$ref`s and `allOf`s point at, and the branch a tagged union selected.
#[derive(Default)]
struct Applicable<'s> {
    nodes: Vec<&'s Map<String, Value>>,
    /// `oneOf`/`anyOf` lists that are not resolved by a tag: one branch must match as a whole.
    unions: Vec<&'s [Value]>,
    /// A `false` schema applies: no value is accepted here.
    refused: bool,
    selections: Vec<Selection<'s>>,
}

impl<'s> Validator<'s> {
    fn check(&self, schema: &'s Value, value: &Value, path: &str) -> Result<(), ArgError> {
        if self.depth.get() >= MAX_CHECK_DEPTH {
            tracing::warn!(
                tool = self.tool,
                "input schema recurses too deep; not followed"
            );
            return Ok(());
        }
        self.depth.set(self.depth.get() + 1);
        let result = self.check_here(schema, value, path);
        self.depth.set(self.depth.get() - 1);
        result
    }

    fn check_here(&self, schema: &'s Value, value: &Value, path: &str) -> Result<(), ArgError> {
        let mut applicable = Applicable::default();
        self.gather(schema, value, path, &mut applicable, 0)?;
        if applicable.refused {
            return Err(ArgError {
                field: path.to_owned(),
                message: format!(
                    "{} is not accepted here; remove it (see `help` for tool `{}`).",
                    subject(path),
                    self.tool
                ),
            });
        }
        // Type first: once the type is wrong, complaints about its value only distract.
        for node in &applicable.nodes {
            self.check_type(node, value, path)?;
        }
        for node in &applicable.nodes {
            self.check_const_enum(node, value, path)?;
            self.check_bounds(node, value, path)?;
        }
        for branches in &applicable.unions {
            self.check_union(branches, value, path)?;
        }
        match value {
            Value::Object(map) => self.check_object(&applicable, map, path)?,
            Value::Array(items) => {
                for node in &applicable.nodes {
                    self.check_items(node, items, path)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Collects into `out` every schema that applies to `value` along with `schema`.
    fn gather(
        &self,
        schema: &'s Value,
        value: &Value,
        path: &str,
        out: &mut Applicable<'s>,
        hops: usize,
    ) -> Result<(), ArgError> {
        if hops > MAX_SCHEMA_HOPS {
            // A cyclic schema is the tool's bug; rather than refuse every call, stop following
            // it and let the plugin judge the arguments.
            tracing::warn!(
                tool = self.tool,
                "input schema $ref chain too deep; not followed"
            );
            return Ok(());
        }
        let node = match schema {
            Value::Bool(true) => return Ok(()),
            Value::Bool(false) => {
                out.refused = true;
                return Ok(());
            }
            Value::Object(node) => node,
            _ => return Ok(()),
        };
        out.nodes.push(node);
        if let Some(target) = node
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| self.resolve(r))
        {
            self.gather(target, value, path, out, hops + 1)?;
        }
        if let Some(Value::Array(all)) = node.get("allOf") {
            for member in all {
                self.gather(member, value, path, out, hops + 1)?;
            }
        }
        for keyword in ["oneOf", "anyOf"] {
            let Some(Value::Array(branches)) = node.get(keyword) else {
                continue;
            };
            match (value, self.tagged(branches)) {
                (Value::Object(map), Some(tagged)) => {
                    let branch = self.select(&tagged, map, path)?;
                    let value_name = map
                        .get(&tagged.key)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    out.selections.push(Selection {
                        key: tagged.key.clone(),
                        value: value_name,
                        tagged,
                    });
                    self.gather(branch, value, path, out, hops + 1)?;
                }
                _ => out.unions.push(branches),
            }
        }
        Ok(())
    }

    /// The schema a local `$ref` (`#/$defs/Name`, `#/definitions/Name`, `#`) points at.
    fn resolve(&self, reference: &str) -> Option<&'s Value> {
        let pointer = reference.strip_prefix('#')?;
        let found = self.root.pointer(pointer);
        if found.is_none() {
            tracing::warn!(
                tool = self.tool,
                reference,
                "input schema $ref does not resolve"
            );
        }
        found
    }

    /// Follows `$ref`s to the schema object itself.
    fn deref(&self, mut schema: &'s Value) -> &'s Value {
        for _ in 0..MAX_SCHEMA_HOPS {
            match schema
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| self.resolve(r))
            {
                Some(target) => schema = target,
                None => break,
            }
        }
        schema
    }

    /// The `properties` of a branch, following `$ref`s and `allOf`s.
    fn branch_properties(&self, schema: &'s Value, hops: usize) -> Vec<(&'s str, &'s Value)> {
        let mut found = Vec::new();
        let schema = self.deref(schema);
        if let Some(Value::Object(props)) = schema.get("properties") {
            found.extend(props.iter().map(|(k, v)| (k.as_str(), v)));
        }
        if hops < MAX_SCHEMA_HOPS
            && let Some(Value::Array(all)) = schema.get("allOf")
        {
            for member in all {
                found.extend(self.branch_properties(member, hops + 1));
            }
        }
        found
    }

    /// Recognises a tagged union: every branch pins the same property (the tag) to one or more
    /// string values with `const` or `enum`. `action` wins when several properties qualify.
    fn tagged(&self, branches: &'s [Value]) -> Option<Tagged<'s>> {
        let mut per_branch: Vec<Vec<(&'s str, Vec<String>)>> = Vec::new();
        for branch in branches {
            let tags: Vec<(&str, Vec<String>)> = self
                .branch_properties(branch, 0)
                .into_iter()
                .filter_map(|(name, prop)| Some((name, pinned_strings(self.deref(prop))?)))
                .collect();
            if tags.is_empty() {
                return None;
            }
            per_branch.push(tags);
        }
        let first = per_branch.first()?;
        let mut keys: Vec<&str> = first
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| {
                per_branch
                    .iter()
                    .all(|tags| tags.iter().any(|(n, _)| n == name))
            })
            .collect();
        keys.sort_by_key(|name| (*name != "action", *name != "type", *name != "kind", *name));
        let key = *keys.first()?;
        let branches = per_branch
            .into_iter()
            .zip(branches)
            .map(|(tags, branch)| {
                let values = tags
                    .into_iter()
                    .find(|(name, _)| *name == key)
                    .map(|(_, values)| values)
                    .unwrap_or_default();
                (values, branch)
            })
            .collect();
        Some(Tagged {
            key: key.to_owned(),
            branches,
        })
    }

    /// The branch the object's tag selects, or an error naming the valid tags.
    fn select(
        &self,
        tagged: &Tagged<'s>,
        map: &Map<String, Value>,
        path: &str,
    ) -> Result<&'s Value, ArgError> {
        let key = &tagged.key;
        let field = join_key(path, key);
        let values = tagged.all_values();
        let listed = list_names(&values);
        let owner = if path.is_empty() {
            format!("`{}`", self.tool)
        } else {
            format!("`{path}`")
        };
        let example = values.first().copied().unwrap_or("...");
        match map.get(key) {
            None => Err(ArgError {
                field,
                message: format!(
                    "missing `{key}` for {owner}; set `{key}` to one of {listed}, \
                     e.g. {{\"{key}\": \"{example}\", ...}}."
                ),
            }),
            Some(Value::String(given)) => tagged
                .branches
                .iter()
                .find(|(names, _)| names.iter().any(|n| n == given))
                .map(|(_, branch)| *branch)
                .ok_or_else(|| {
                    let hint = match did_you_mean(given, values.iter().copied()) {
                        Some(close) => format!("did you mean `{close}`? Valid: {listed}."),
                        None => format!("use one of {listed}."),
                    };
                    ArgError {
                        field,
                        message: format!("unknown {key} `{given}` for {owner}; {hint}"),
                    }
                }),
            Some(other) => Err(ArgError {
                field,
                message: format!(
                    "`{}` must be a string naming the {key}, got {}; use one of {listed}.",
                    join_key(path, key),
                    describe_value(other)
                ),
            }),
        }
    }

    fn check_type(
        &self,
        node: &Map<String, Value>,
        value: &Value,
        path: &str,
    ) -> Result<(), ArgError> {
        let types: Vec<&str> = match node.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return Ok(()),
        };
        if types.is_empty() || types.iter().any(|t| type_matches(t, value)) {
            return Ok(());
        }
        let expected = describe_types(&types);
        let advice = type_advice(&types, &expected, value, path);
        Err(ArgError {
            field: path.to_owned(),
            message: format!(
                "{} must be {expected}, got {}; {advice}",
                subject(path),
                describe_value(value)
            ),
        })
    }

    fn check_const_enum(
        &self,
        node: &Map<String, Value>,
        value: &Value,
        path: &str,
    ) -> Result<(), ArgError> {
        if let Some(expected) = node.get("const")
            && !json_equal(expected, value)
        {
            return Err(ArgError {
                field: path.to_owned(),
                message: format!(
                    "{} must be {}, got {}; send exactly that value.",
                    subject(path),
                    show_literal(expected),
                    describe_value(value)
                ),
            });
        }
        if let Some(Value::Array(allowed)) = node.get("enum")
            && !allowed.iter().any(|a| json_equal(a, value))
        {
            let listed = allowed
                .iter()
                .map(show_literal)
                .collect::<Vec<_>>()
                .join(", ");
            let close = value
                .as_str()
                .and_then(|given| did_you_mean(given, allowed.iter().filter_map(Value::as_str)));
            let hint = match close {
                Some(close) => format!("did you mean `{close}`?"),
                None => "use one of those values.".to_owned(),
            };
            return Err(ArgError {
                field: path.to_owned(),
                message: format!(
                    "{} must be one of {listed}, got {}; {hint}",
                    subject(path),
                    describe_value(value)
                ),
            });
        }
        Ok(())
    }

    fn check_bounds(
        &self,
        node: &Map<String, Value>,
        value: &Value,
        path: &str,
    ) -> Result<(), ArgError> {
        let fail = |message: String| {
            Err(ArgError {
                field: path.to_owned(),
                message,
            })
        };
        let bound = |key: &str| node.get(key).and_then(Value::as_f64);
        let who = subject(path);
        match value {
            Value::Number(n) => {
                let Some(x) = n.as_f64() else {
                    return Ok(());
                };
                if let Some(min) = bound("minimum")
                    && x < min
                {
                    return fail(format!(
                        "{who} must be at least {}, got {n}; use a value of {} or more.",
                        show_number(min),
                        show_number(min)
                    ));
                }
                if let Some(max) = bound("maximum")
                    && x > max
                {
                    return fail(format!(
                        "{who} must be at most {}, got {n}; use a value of {} or less.",
                        show_number(max),
                        show_number(max)
                    ));
                }
                if let Some(min) = bound("exclusiveMinimum")
                    && x <= min
                {
                    return fail(format!(
                        "{who} must be greater than {}, got {n}; use a larger value.",
                        show_number(min)
                    ));
                }
                if let Some(max) = bound("exclusiveMaximum")
                    && x >= max
                {
                    return fail(format!(
                        "{who} must be less than {}, got {n}; use a smaller value.",
                        show_number(max)
                    ));
                }
            }
            Value::String(s) => {
                let len = s.chars().count() as f64;
                if let Some(min) = bound("minLength")
                    && len < min
                {
                    return fail(format!(
                        "{who} must be at least {} characters long, got {}; send a longer value.",
                        show_number(min),
                        len
                    ));
                }
                if let Some(max) = bound("maxLength")
                    && len > max
                {
                    return fail(format!(
                        "{who} must be at most {} characters long, got {}; shorten it.",
                        show_number(max),
                        len
                    ));
                }
            }
            Value::Array(items) => {
                let len = items.len() as f64;
                if let Some(min) = bound("minItems")
                    && len < min
                {
                    return fail(format!(
                        "{who} needs at least {} items, got {}; add items.",
                        show_number(min),
                        items.len()
                    ));
                }
                if let Some(max) = bound("maxItems")
                    && len > max
                {
                    return fail(format!(
                        "{who} takes at most {} items, got {}; send fewer, or split the call.",
                        show_number(max),
                        items.len()
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn check_items(
        &self,
        node: &'s Map<String, Value>,
        items: &[Value],
        path: &str,
    ) -> Result<(), ArgError> {
        let prefix: &[Value] = match node.get("prefixItems") {
            Some(Value::Array(prefix)) => prefix,
            _ => &[],
        };
        for (index, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{index}]");
            if let Some(schema) = prefix.get(index) {
                self.check(schema, item, &item_path)?;
            } else if let Some(schema) = node.get("items") {
                self.check(schema, item, &item_path)?;
            }
        }
        Ok(())
    }

    /// One branch of a plain (untagged) `oneOf`/`anyOf` must match. When none does, the error of
    /// the only branch of the right JSON type is the precise one; otherwise list the forms.
    fn check_union(
        &self,
        branches: &'s [Value],
        value: &Value,
        path: &str,
    ) -> Result<(), ArgError> {
        let mut fitting = Vec::new();
        for branch in branches {
            match self.check(branch, value, path) {
                Ok(()) => return Ok(()),
                Err(error) => {
                    if self.accepts_kind(branch, value) {
                        fitting.push(error);
                    }
                }
            }
        }
        if fitting.len() == 1 {
            return Err(fitting.remove(0));
        }
        let mut forms: Vec<String> = Vec::new();
        for branch in branches {
            let form = self.describe(branch, 0);
            if !forms.contains(&form) {
                forms.push(form);
            }
        }
        Err(ArgError {
            field: path.to_owned(),
            message: format!(
                "{} must be {}, got {}; send one of those forms (see `help` for tool `{}`).",
                subject(path),
                forms.join(", or "),
                describe_value(value),
                self.tool
            ),
        })
    }

    /// Whether `branch` is meant for values of this JSON kind at all (its `type`, or the kind
    /// of its `const`/`enum` values); a branch that does not say accepts every kind.
    fn accepts_kind(&self, branch: &'s Value, value: &Value) -> bool {
        let branch = self.deref(branch);
        match branch.get("type") {
            Some(Value::String(t)) => return type_matches(t, value) || kind_only(t, value),
            Some(Value::Array(ts)) => {
                return ts
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|t| type_matches(t, value) || kind_only(t, value));
            }
            _ => {}
        }
        if let Some(expected) = branch.get("const") {
            return same_kind(expected, value);
        }
        if let Some(Value::Array(allowed)) = branch.get("enum") {
            return allowed.iter().any(|a| same_kind(a, value));
        }
        true
    }

    fn check_object(
        &self,
        applicable: &Applicable<'s>,
        map: &Map<String, Value>,
        path: &str,
    ) -> Result<(), ArgError> {
        let mut properties: Vec<(&'s str, &'s Value)> = Vec::new();
        let mut required: Vec<&'s str> = Vec::new();
        let mut extra_schemas: Vec<&'s Value> = Vec::new();
        let mut closed = false;
        let mut open_by_pattern = false;
        for node in &applicable.nodes {
            if let Some(Value::Object(props)) = node.get("properties") {
                properties.extend(props.iter().map(|(k, v)| (k.as_str(), v)));
            }
            if let Some(Value::Array(names)) = node.get("required") {
                for name in names.iter().filter_map(Value::as_str) {
                    if !required.contains(&name) {
                        required.push(name);
                    }
                }
            }
            for keyword in ["additionalProperties", "unevaluatedProperties"] {
                match node.get(keyword) {
                    Some(Value::Bool(false)) => closed = true,
                    Some(schema @ Value::Object(_)) => extra_schemas.push(schema),
                    _ => {}
                }
            }
            // Without a regex engine the pattern cannot be checked, so such a schema is open.
            open_by_pattern |= node.contains_key("patternProperties");
        }
        let mut known: Vec<&str> = Vec::new();
        for (name, _) in &properties {
            if !known.contains(name) {
                known.push(name);
            }
        }
        let scope = self.scope(applicable, path);

        if closed && !open_by_pattern {
            let unknown: Vec<&str> = map
                .keys()
                .map(String::as_str)
                .filter(|key| !known.contains(key))
                .collect();
            if let Some(first) = unknown.first() {
                return Err(self.unknown_field(
                    first,
                    &unknown[1..],
                    &known,
                    &scope,
                    applicable,
                    path,
                ));
            }
        }

        if let Some(missing) = required.iter().find(|name| !map.contains_key(**name)) {
            let schemas: Vec<&Value> = properties
                .iter()
                .filter(|(n, _)| n == missing)
                .map(|(_, s)| *s)
                .collect();
            let expected = schemas
                .first()
                .map(|s| self.describe(s, 0))
                .unwrap_or_else(|| "a value".to_owned());
            let doc = schemas
                .iter()
                .find_map(|s| s.get("description").and_then(Value::as_str))
                .map(|d| format!(" — {}", clip(d.trim(), 100)))
                .unwrap_or_default();
            // In an open object a misspelt field is no error by itself, only the gap it leaves.
            let misspelt = map.keys().find(|key| {
                !known.contains(&key.as_str()) && did_you_mean(key, [*missing]).is_some()
            });
            let advice = match misspelt {
                Some(key) => format!("did you mean `{missing}` instead of `{key}`?"),
                None => "add it to the arguments.".to_owned(),
            };
            return Err(ArgError {
                field: join_key(path, missing),
                message: format!(
                    "missing required field `{missing}` for {scope} (expected {expected}{doc}); \
                     {advice}"
                ),
            });
        }

        for (key, item) in map {
            let item_path = join_key(path, key);
            let declared: Vec<&Value> = properties
                .iter()
                .filter(|(n, _)| n == key)
                .map(|(_, s)| *s)
                .collect();
            if declared.is_empty() {
                for schema in &extra_schemas {
                    self.check(schema, item, &item_path)?;
                }
            } else {
                for schema in declared {
                    self.check(schema, item, &item_path)?;
                }
            }
        }
        Ok(())
    }

    /// Names the object being validated: `` `ssh` action `exec` `` at the top, `` `headers` ``
    /// below it.
    fn scope(&self, applicable: &Applicable<'s>, path: &str) -> String {
        let mut scope = if path.is_empty() {
            format!("`{}`", self.tool)
        } else {
            format!("`{path}`")
        };
        for selection in &applicable.selections {
            let _ = write!(scope, " {} `{}`", selection.key, selection.value);
        }
        scope
    }

    fn unknown_field(
        &self,
        field: &str,
        others: &[&str],
        known: &[&str],
        scope: &str,
        applicable: &Applicable<'s>,
        path: &str,
    ) -> ArgError {
        let also = if others.is_empty() {
            String::new()
        } else {
            format!(" (also unknown: {})", list_names(others))
        };
        let message = if let Some(close) = did_you_mean(field, known.iter().copied()) {
            format!("unknown field `{field}` for {scope}{also}; did you mean `{close}`?")
        } else if let Some((selection, owners)) = self.owners_elsewhere(field, applicable) {
            format!(
                "unknown field `{field}` for {scope}{also}: it belongs to {} {}; \
                 switch `{}` or remove the field (fields here: {}).",
                selection.key,
                list_names(&owners),
                selection.key,
                list_names(known)
            )
        } else {
            format!(
                "unknown field `{field}` for {scope}{also}; allowed fields: {}. \
                 Remove it or use one of those.",
                list_names(known)
            )
        };
        ArgError {
            field: join_key(path, field),
            message,
        }
    }

    /// The other branches (actions) of a tagged union that do declare `field`.
    fn owners_elsewhere<'a>(
        &self,
        field: &str,
        applicable: &'a Applicable<'s>,
    ) -> Option<(&'a Selection<'s>, Vec<&'a str>)> {
        applicable.selections.iter().find_map(|selection| {
            let owners: Vec<&str> = selection
                .tagged
                .branches
                .iter()
                .filter(|(names, _)| !names.contains(&selection.value))
                .filter(|(_, branch)| {
                    self.branch_properties(branch, 0)
                        .iter()
                        .any(|(name, _)| *name == field)
                })
                .filter_map(|(names, _)| names.first().map(String::as_str))
                .collect();
            (!owners.is_empty()).then_some((selection, owners))
        })
    }

    /// A short phrase for what a schema accepts: `a string`, `an integer or null`,
    /// `one of \`rows\`, \`row\``.
    fn describe(&self, schema: &'s Value, depth: usize) -> String {
        let schema = self.deref(schema);
        if depth > 4 {
            return "a value".to_owned();
        }
        if let Some(expected) = schema.get("const") {
            return show_literal(expected);
        }
        if let Some(Value::Array(allowed)) = schema.get("enum") {
            return format!(
                "one of {}",
                allowed
                    .iter()
                    .map(show_literal)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        match schema.get("type") {
            Some(Value::String(t)) => return self.describe_type(schema, t, depth),
            Some(Value::Array(ts)) => {
                let parts: Vec<String> = ts
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|t| self.describe_type(schema, t, depth))
                    .collect();
                return parts.join(" or ");
            }
            _ => {}
        }
        for keyword in ["oneOf", "anyOf"] {
            if let Some(Value::Array(branches)) = schema.get(keyword) {
                if let Some(tagged) = self.tagged(branches) {
                    return format!(
                        "an object with `{}` one of {}",
                        tagged.key,
                        list_names(&tagged.all_values())
                    );
                }
                let mut parts: Vec<String> = Vec::new();
                for branch in branches {
                    let part = self.describe(branch, depth + 1);
                    if !parts.contains(&part) {
                        parts.push(part);
                    }
                }
                return parts.join(" or ");
            }
        }
        if schema.get("properties").is_some() {
            return "an object".to_owned();
        }
        "a value".to_owned()
    }

    fn describe_type(&self, schema: &'s Value, t: &str, depth: usize) -> String {
        match (t, schema.get("items")) {
            ("array", Some(items)) if items.is_object() => {
                format!("an array of {}", plural(&self.describe(items, depth + 1)))
            }
            _ => article(t),
        }
    }
}

/// The string values a tag property is pinned to (`const` or an all-string `enum`).
fn pinned_strings(prop: &Value) -> Option<Vec<String>> {
    if let Some(Value::String(value)) = prop.get("const") {
        return Some(vec![value.clone()]);
    }
    if let Some(Value::Array(values)) = prop.get("enum") {
        let strings: Option<Vec<String>> = values
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect();
        return strings.filter(|s| !s.is_empty());
    }
    None
}

fn type_matches(t: &str, value: &Value) -> bool {
    match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        // Strict on purpose: 5.0 passes JSON Schema's `integer`, but serde refuses it for a u64,
        // so accepting it here would only move the error into the plugin.
        "integer" => value.is_i64() || value.is_u64(),
        _ => true,
    }
}

/// `5.5` for an `integer`: the right kind of value, just not whole.
fn kind_only(t: &str, value: &Value) -> bool {
    t == "integer" && value.is_number()
}

fn same_kind(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        // `1` and `1.0` are the same number to JSON Schema.
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn article(t: &str) -> String {
    match t {
        "null" => "null".to_owned(),
        "integer" | "object" | "array" => format!("an {t}"),
        "boolean" => "a boolean (true or false)".to_owned(),
        other => format!("a {other}"),
    }
}

fn plural(phrase: &str) -> String {
    for (singular, plural) in [
        ("a string", "strings"),
        ("an integer", "integers"),
        ("a number", "numbers"),
        ("an object", "objects"),
        ("an array", "arrays"),
        ("a boolean (true or false)", "booleans"),
    ] {
        if phrase == singular {
            return plural.to_owned();
        }
    }
    phrase.to_owned()
}

fn describe_types(types: &[&str]) -> String {
    types
        .iter()
        .map(|t| article(t))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// What to do about a wrong type, for the mistakes agents actually make.
fn type_advice(types: &[&str], expected: &str, value: &Value, path: &str) -> String {
    let wants = |t: &str| types.contains(&t);
    let subject = subject(path);
    match value {
        Value::String(s)
            if (wants("integer") || wants("number")) && s.trim().parse::<f64>().is_ok() =>
        {
            format!("send the number without quotes, e.g. {}.", s.trim())
        }
        Value::String(s) if wants("boolean") && matches!(s.trim(), "true" | "false") => {
            format!("send {} without quotes.", s.trim())
        }
        Value::Number(n) if wants("integer") && !wants("number") && n.as_f64().is_some() => {
            format!(
                "send a whole number, e.g. {}.",
                n.as_f64().unwrap_or_default().round()
            )
        }
        Value::Number(n) if wants("string") => format!("send it as a string, e.g. \"{n}\"."),
        Value::Null => format!("omit {subject} or send {expected}."),
        _ => format!("send {expected}."),
    }
}

/// The field as the subject of a sentence.
fn subject(path: &str) -> String {
    if path.is_empty() {
        "the arguments".to_owned()
    } else {
        format!("`{path}`")
    }
}

fn describe_value(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!(
            "the string {}",
            clip(&Value::from(s.as_str()).to_string(), 40)
        ),
        Value::Array(items) => format!("an array of {} items", items.len()),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// A literal as an agent should type it: strings in backticks, everything else as JSON.
fn show_literal(value: &Value) -> String {
    match value {
        Value::String(s) => format!("`{s}`"),
        other => clip(&other.to_string(), 40),
    }
}

fn show_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        x.to_string()
    }
}

fn list_names(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

fn clip(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use schemars::JsonSchema;
    use serde::Deserialize;
    use serde_json::json;

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
        assert_eq!(tool_alias("api"), "http");
        assert_eq!(tool_alias("sql"), "psql");
        assert_eq!(tool_alias("ssh"), "ssh");
        assert_eq!(tool_alias("API"), "API");
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
}
