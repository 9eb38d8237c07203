//! The result of a `psql` call, and host rows shaped into it.

use crate::caps::postgres::Rows;
use infra_sdk::prelude::*;

use crate::args::Mode;

/// The result of a `psql` call; fields appear as the action produces them.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct PsqlOutput {
    /// Column names and types.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns: Option<Value>,
    /// Rows as objects (mode rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<Value>,
    /// Rows returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_count: Option<u64>,
    /// The first row (mode row), or null.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<Value>,
    /// The first column of the first row (mode value, count, exists), or null.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// Rows affected by a command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affected: Option<u64>,
    /// More rows existed than `max_rows`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    /// Rows the statement produced in all, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// `batch`, `transaction`: one result per statement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<Value>>,
    /// `batch`: whether every statement succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all_ok: Option<bool>,
    /// `export`: the artifact holding the data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Value>,
    /// `export`: data rows written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exported_rows: Option<u64>,
    /// `explain`: the plan as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Value>,
    /// Table helpers: the SQL that ran (values are in `params`, never in the text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// Table helpers: the bound values, `$1` first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<Value>>,
}

/// Parses JSON the host wrote, null when it is not JSON.
pub(crate) fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// Shapes host rows by `mode`.
pub(crate) fn shape(rows: Rows, mode: Mode) -> PsqlOutput {
    let data = parse(&rows.rows_json);
    let list = data.as_array().cloned().unwrap_or_default();
    let first = list.first().cloned();
    let mut out = PsqlOutput {
        affected: rows.affected,
        ..Default::default()
    };
    match mode {
        Mode::Rows => {
            out.columns = Some(parse(&rows.columns_json));
            out.row_count = Some(list.len() as u64);
            out.rows = Some(Value::Array(list));
            out.truncated = Some(rows.truncated);
            out.total = rows.total;
        }
        Mode::Row => {
            out.columns = Some(parse(&rows.columns_json));
            out.row = Some(first.unwrap_or(Value::Null));
        }
        Mode::Value => {
            out.value = Some(
                first
                    .and_then(|r| r.as_object().and_then(|o| o.values().next().cloned()))
                    .unwrap_or(Value::Null),
            );
        }
        Mode::Command => {
            if out.affected.is_none() {
                out.affected = Some(list.len() as u64);
            }
        }
    }
    out
}

/// The result as JSON, for one entry of `results`.
pub(crate) fn to_value(out: PsqlOutput) -> Value {
    serde_json::to_value(out).unwrap_or(Value::Null)
}
