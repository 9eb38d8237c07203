//! The walk over schema and value: which schemas apply, tagged unions resolved by their tag,
//! objects and their unknown or missing fields.

use std::cell::Cell;
use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::ArgError;
use super::suggest::did_you_mean;
use super::words::*;

/// How many `$ref`/`allOf` hops one value may take before the schema is deemed cyclic; deep
/// enough for any real schema, small enough to stop `A → B → A` quickly.
pub(super) const MAX_SCHEMA_HOPS: usize = 32;

/// How deeply checks may nest. Values nest at most 128 deep (serde_json's parse limit), so this
/// only trips on a schema that recurses without consuming the value (`A = anyOf[$ref A]`).
pub(super) const MAX_CHECK_DEPTH: usize = 256;

pub(super) struct Validator<'s> {
    pub(super) tool: &'s str,
    pub(super) root: &'s Value,
    /// Nesting of [`Validator::check`] calls, to stop a self-referencing union.
    pub(super) depth: Cell<usize>,
}

/// The tag of a tagged union (`action` for an action enum) and the branch each value selects.
pub(super) struct Tagged<'s> {
    pub(super) key: String,
    pub(super) branches: Vec<(Vec<String>, &'s Value)>,
}

impl Tagged<'_> {
    pub(super) fn all_values(&self) -> Vec<&str> {
        self.branches
            .iter()
            .flat_map(|(values, _)| values.iter().map(String::as_str))
            .collect()
    }
}

/// The tagged union that chose the branch being validated, kept to explain unknown fields.
pub(super) struct Selection<'s> {
    key: String,
    value: String,
    tagged: Tagged<'s>,
}

/// Every schema that applies to one value at the same time: the schema itself, what its
/// `$ref`s and `allOf`s point at, and the branch a tagged union selected.
#[derive(Default)]
pub(super) struct Applicable<'s> {
    nodes: Vec<&'s Map<String, Value>>,
    /// `oneOf`/`anyOf` lists that are not resolved by a tag: one branch must match as a whole.
    unions: Vec<&'s [Value]>,
    /// A `false` schema applies: no value is accepted here.
    refused: bool,
    selections: Vec<Selection<'s>>,
}

impl<'s> Validator<'s> {
    pub(super) fn check(
        &self,
        schema: &'s Value,
        value: &Value,
        path: &str,
    ) -> Result<(), ArgError> {
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

    pub(super) fn check_here(
        &self,
        schema: &'s Value,
        value: &Value,
        path: &str,
    ) -> Result<(), ArgError> {
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
    pub(super) fn gather(
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
    pub(super) fn resolve(&self, reference: &str) -> Option<&'s Value> {
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
    pub(super) fn deref(&self, mut schema: &'s Value) -> &'s Value {
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
    pub(super) fn branch_properties(
        &self,
        schema: &'s Value,
        hops: usize,
    ) -> Vec<(&'s str, &'s Value)> {
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
    pub(super) fn tagged(&self, branches: &'s [Value]) -> Option<Tagged<'s>> {
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
    pub(super) fn select(
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
}

impl<'s> Validator<'s> {
    /// One branch of a plain (untagged) `oneOf`/`anyOf` must match. When none does, the error of
    /// the only branch of the right JSON type is the precise one; otherwise list the forms.
    pub(super) fn check_union(
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
    pub(super) fn accepts_kind(&self, branch: &'s Value, value: &Value) -> bool {
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

    pub(super) fn check_object(
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
    pub(super) fn scope(&self, applicable: &Applicable<'s>, path: &str) -> String {
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

    pub(super) fn unknown_field(
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
    pub(super) fn owners_elsewhere<'a>(
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
}
