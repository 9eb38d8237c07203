//! The arguments of the `psql` tool: the connection every action uses, and per `action` its own
//! fields.

use infra_sdk::prelude::*;
use serde_json::Map;

use crate::sql;

/// Arguments of the `psql` tool: the connection every action uses, and the action with its own
/// fields.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
pub struct PsqlArgs {
    /// The profile and the limits every action runs under.
    #[serde(flatten)]
    pub conn: Conn,
    /// What to do, with the fields only that action takes.
    #[serde(flatten)]
    pub action: Action,
}

/// The profile and the limits every action runs under.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Conn {
    /// A `profiles.json` entry of type postgres; the host holds its password.
    pub profile: String,
    /// Rows returned at most (default 1000); the result says `truncated` when there were more.
    pub max_rows: Option<u32>,
    /// Run read-only: only queries (SELECT, WITH, VALUES, TABLE, SHOW, EXPLAIN), in a READ ONLY
    /// transaction that is rolled back. `select`, `count`, `exists`, `tables`, `columns`,
    /// `database_info` and `explain` are read-only unless this is `false`; `export` always is; a
    /// read-only profile or policy makes every call read-only.
    pub read_only: Option<bool>,
}

/// What to do.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// One SQL statement with bound `params`; the result shaped by `mode`.
    Query {
        /// The SQL, with `$1…$n` placeholders.
        sql: String,
        /// Values for the placeholders (never interpolated).
        params: Option<Vec<Value>>,
        /// rows (default), row, value or command.
        mode: Option<Mode>,
    },
    /// Several statements, each on its own (stops at the first error unless `stop_on_error: false`).
    Batch {
        /// The statements.
        #[schemars(length(min = 1))]
        statements: Vec<Stmt>,
        /// Stop at the first failing statement (default true).
        stop_on_error: Option<bool>,
    },
    /// Several statements in one transaction: all or nothing.
    Transaction {
        /// The statements.
        #[schemars(length(min = 1))]
        statements: Vec<Stmt>,
    },
    /// Rows of `table` matching `where`, with `columns`, `order_by`, `limit`, `offset`.
    Select(Selection),
    /// Inserts `values` (an object or an array of objects) into `table`.
    Insert {
        /// The table to insert into.
        #[serde(flatten)]
        table: Table,
        /// An object of column → value, or an array of them.
        values: Value,
        /// Columns to return from the inserted rows (`["*"]` for all).
        returning: Option<Vec<String>>,
    },
    /// Sets `set` on the rows of `table` matching `where` (`all_rows: true` for no filter).
    Update {
        /// The rows to change.
        #[serde(flatten)]
        rows: Matching,
        /// Column → new value.
        set: Map<String, Value>,
        /// Allow no filter, touching every row.
        all_rows: Option<bool>,
        /// Columns to return from the changed rows (`["*"]` for all).
        returning: Option<Vec<String>>,
    },
    /// Deletes the rows of `table` matching `where` (`all_rows: true` for no filter).
    Delete {
        /// The rows to delete.
        #[serde(flatten)]
        rows: Matching,
        /// Allow no filter, touching every row.
        all_rows: Option<bool>,
        /// Columns to return from the deleted rows (`["*"]` for all).
        returning: Option<Vec<String>>,
    },
    /// Counts the rows of `table` matching `where`.
    Count(Matching),
    /// Whether any row of `table` matches `where`.
    Exists(Matching),
    /// Streams the rows of `sql` (or all of `table`) into an artifact, csv or jsonl.
    Export {
        /// The query whose rows to export.
        sql: Option<String>,
        /// The table to export whole when there is no `sql`, optionally `schema.table`.
        table: Option<String>,
        /// The schema of `table`.
        schema: Option<String>,
        /// csv (default) or jsonl.
        format: Option<Format>,
    },
    /// Tables and views (optionally of one `schema`).
    Tables {
        /// The schema to list (default all but the system schemas).
        schema: Option<String>,
    },
    /// The columns of `table`.
    Columns(Table),
    /// Database name, user, server version, size.
    DatabaseInfo,
    /// The plan of `sql` as JSON (`analyze: true` runs it, read-only unless `read_only: false`).
    Explain {
        /// The SQL, with `$1…$n` placeholders.
        sql: String,
        /// Values for the placeholders (never interpolated).
        params: Option<Vec<Value>>,
        /// Run the statement and report real timings (EXPLAIN ANALYZE).
        analyze: Option<bool>,
    },
}

/// A table, by name and schema.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Table {
    /// The table, optionally `schema.table`.
    pub table: String,
    /// The schema of `table`.
    pub schema: Option<String>,
}

impl Table {
    /// The quoted, schema-qualified name.
    pub fn quoted(&self) -> Result<String, ToolError> {
        sql::table_name(&self.table, self.schema.as_deref())
    }
}

/// The rows of a table a filter matches.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Matching {
    /// The table.
    #[serde(flatten)]
    pub table: Table,
    /// Filter: `{"col": value}` (equality; null is IS NULL) or `{"col": {"op": ">", "value": 5}}`
    /// with op one of =, <>, !=, <, <=, >, >=, like, ilike, in (array), is_null (bool). ANDed.
    #[serde(rename = "where")]
    pub filter: Option<Map<String, Value>>,
}

/// What `select` returns.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Selection {
    /// The rows to return.
    #[serde(flatten)]
    pub rows: Matching,
    /// Columns to return (default all).
    pub columns: Option<Vec<String>>,
    /// Sort columns; a leading `-` sorts descending.
    pub order_by: Option<Vec<String>>,
    /// Rows at most (in SQL).
    pub limit: Option<u64>,
    /// Rows skipped.
    pub offset: Option<u64>,
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

/// `sql` unless it is blank, else an error naming it.
pub fn non_blank(sql: &str) -> Result<&str, ToolError> {
    if sql.trim().is_empty() {
        return Err(ToolError::invalid("sql", "missing: give the SQL statement"));
    }
    Ok(sql)
}
