//! The arguments of the `psql` tool: one flat object, fields apply per `action` as documented.

use infra_sdk::prelude::*;
use serde_json::Map;

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// One SQL statement with bound `params`; the result shaped by `mode`.
    Query,
    /// Several statements, each on its own (stops at the first error unless `stop_on_error: false`).
    Batch,
    /// Several statements in one transaction: all or nothing.
    Transaction,
    /// Rows of `table` matching `where`, with `columns`, `order_by`, `limit`, `offset`.
    Select,
    /// Inserts `values` (an object or an array of objects) into `table`.
    Insert,
    /// Sets `set` on the rows of `table` matching `where` (`all_rows: true` for no filter).
    Update,
    /// Deletes the rows of `table` matching `where` (`all_rows: true` for no filter).
    Delete,
    /// Counts the rows of `table` matching `where`.
    Count,
    /// Whether any row of `table` matches `where`.
    Exists,
    /// Streams the rows of `sql` (or all of `table`) into an artifact, csv or jsonl.
    Export,
    /// Tables and views (optionally of one `schema`).
    Tables,
    /// The columns of `table`.
    Columns,
    /// Database name, user, server version, size.
    DatabaseInfo,
    /// The plan of `sql` as JSON (`analyze: true` runs it, read-only unless `read_only: false`).
    Explain,
}

/// How `query` returns its result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// All rows (up to `max_rows`) as objects.
    #[default]
    Rows,
    /// The first row as an object, or null.
    Row,
    /// The first column of the first row, or null.
    Value,
    /// Only the number of rows affected.
    Command,
}

/// Export format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// CSV with a header line.
    #[default]
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// One statement of `batch` or `transaction`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stmt {
    /// SQL with `$1…$n` placeholders.
    pub sql: String,
    /// Values for the placeholders, bound with the types the statement expects.
    pub params: Option<Vec<Value>>,
    /// How to return this statement's result (default rows).
    pub mode: Option<Mode>,
}

/// Arguments of the `psql` tool.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PsqlArgs {
    /// The action.
    pub action: Action,
    /// A `profiles.json` entry of type postgres; the host holds its password.
    pub profile: String,
    /// `query`, `explain`, `export`: the SQL, with `$1…$n` placeholders.
    pub sql: Option<String>,
    /// `query`, `explain`: values for the placeholders (never interpolated).
    pub params: Option<Vec<Value>>,
    /// `query`: rows (default), row, value or command.
    pub mode: Option<Mode>,
    /// Rows returned at most (default 1000); the result says `truncated` when there were more.
    pub max_rows: Option<u32>,
    /// Run read-only: only queries (SELECT, WITH, VALUES, TABLE, SHOW, EXPLAIN), in a READ ONLY
    /// transaction that is rolled back. `select`, `count`, `exists`, `tables`, `columns`,
    /// `database_info` and `explain` are read-only unless this is `false`; a read-only profile
    /// or policy makes every call read-only.
    pub read_only: Option<bool>,
    /// `batch`, `transaction`: the statements.
    pub statements: Option<Vec<Stmt>>,
    /// `batch`: stop at the first failing statement (default true).
    pub stop_on_error: Option<bool>,
    /// Table helpers: the table, optionally `schema.table`.
    pub table: Option<String>,
    /// The schema of `table` (or the schema `tables` lists).
    pub schema: Option<String>,
    /// `select`: columns to return (default all).
    pub columns: Option<Vec<String>>,
    /// Filter: `{"col": value}` (equality; null is IS NULL) or `{"col": {"op": ">", "value": 5}}`
    /// with op one of =, <>, !=, <, <=, >, >=, like, ilike, in (array), is_null (bool). ANDed.
    #[serde(rename = "where")]
    pub filter: Option<Map<String, Value>>,
    /// `select`: sort columns; a leading `-` sorts descending.
    pub order_by: Option<Vec<String>>,
    /// `select`: rows at most (in SQL).
    pub limit: Option<u64>,
    /// `select`: rows skipped.
    pub offset: Option<u64>,
    /// `insert`: an object of column → value, or an array of them.
    pub values: Option<Value>,
    /// `update`: column → new value.
    pub set: Option<Map<String, Value>>,
    /// `insert`, `update`, `delete`: columns to return from the affected rows (`["*"]` for all).
    pub returning: Option<Vec<String>>,
    /// `update`, `delete`: allow no filter, touching every row.
    pub all_rows: Option<bool>,
    /// `export`: csv (default) or jsonl.
    pub format: Option<Format>,
    /// `explain`: run the statement and report real timings (EXPLAIN ANALYZE).
    pub analyze: Option<bool>,
}

impl PsqlArgs {
    /// `sql`, or an error naming it.
    pub fn sql(&self) -> Result<&str, ToolError> {
        self.sql
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ToolError::invalid("sql", "missing: give the SQL statement"))
    }

    /// `table`, or an error naming it.
    pub fn table(&self) -> Result<&str, ToolError> {
        self.table
            .as_deref()
            .ok_or_else(|| ToolError::invalid("table", "missing: give the table name"))
    }
}
