//! The `psql` tool: SQL on PostgreSQL through the host's `postgres` capability.
//!
//! The host holds the passwords and the connection pools and enforces the policy (profiles,
//! forced read-only); this plugin shapes requests and results. Table helpers (`select`,
//! `insert`, `update`, `delete`, `count`, `exists`) build SQL in [`sql`] with quoted identifiers
//! and `$n` parameters, so no value is ever spliced into SQL text.

mod args;
mod sql;

use infra_sdk::caps::postgres::{self, CopyFormat, PgError, Rows, Statement};
use infra_sdk::prelude::*;
use serde_json::Map;

use args::{Action, Conn, Format, Mode, PsqlArgs, Stmt, Table};

const DESCRIPTION: &str = "SQL on PostgreSQL through the host (`profile` names a postgres entry \
of profiles.json; the password stays in the host). Actions: `query` (`sql` + `params` bound, \
never interpolated; `mode` rows/row/value/command; `max_rows` cap with `truncated`; \
`read_only: true` runs only queries — SELECT, WITH, VALUES, TABLE, SHOW, EXPLAIN — in a READ ONLY \
transaction, as a read-only profile or policy always does), `batch` (statements each on \
their own), `transaction` (all or nothing), `select`/`count`/`exists`/`insert`/`update`/`delete` \
(`table`, `where`, `values`, `set`, `returning`: quoted identifiers and bound values; update and \
delete without `where` are refused unless `all_rows: true`), `export` (COPY of `sql` or `table` \
streamed by the host into an artifact, csv or jsonl), `tables`, `columns`, `database_info`, \
`explain` (JSON plan; `analyze: true` runs it). SQL errors carry the server's message, SQLSTATE \
and position.";

/// Default row cap.
const MAX_ROWS: u32 = 1000;

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

/// A host error as a tool error: SQL errors keep SQLSTATE and position in `detail`.
fn tool_error(e: PgError, sql: &str) -> ToolError {
    match e {
        PgError::Cap(c) => {
            let mut err: ToolError = c.into();
            err.field = refused_field(&err.message);
            err
        }
        PgError::Sql(s) => {
            // Line and column, not a snippet of the SQL: a snippet cut to a length could end
            // inside a secret the SQL holds, and a cut secret no longer matches the scrubber.
            let at = s
                .position
                .map(|p| {
                    let before: Vec<char> =
                        sql.chars().take((p as usize).saturating_sub(1)).collect();
                    let line = 1 + before.iter().filter(|&&c| c == '\n').count();
                    let column = 1 + before.iter().rev().take_while(|&&c| c != '\n').count();
                    format!(" at position {p} (line {line}, column {column})")
                })
                .unwrap_or_default();
            ToolError {
                kind: ErrorKind::Failed,
                message: format!("{} (SQLSTATE {}){at}", s.message, s.code),
                field: Some("sql".into()),
                detail: Some(json!({
                    "sqlstate": s.code,
                    "position": s.position,
                    "message": s.message,
                })),
            }
        }
    }
}

/// The argument a host refusal names: it starts "sql: …" or "params: …", after "statement N of
/// M: " within a transaction (then the field is `statements[N-1].sql`).
fn refused_field(message: &str) -> Option<String> {
    let (index, rest) = match message.strip_prefix("statement ") {
        Some(r) => {
            let (n, rest) = r.split_once(" of ")?;
            let (_, rest) = rest.split_once(": ")?;
            (Some(n.parse::<usize>().ok()?.checked_sub(1)?), rest)
        }
        None => (None, message),
    };
    let (field, _) = rest.split_once(": ")?;
    if !matches!(field, "sql" | "params") {
        return None;
    }
    Some(match index {
        Some(i) => format!("statements[{i}].{field}"),
        None => field.to_string(),
    })
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// Shapes host rows by `mode`.
fn shape(rows: Rows, mode: Mode) -> PsqlOutput {
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

/// One call: the connection settings every action shares, and the call's deadline.
struct Call<'a> {
    conn: &'a Conn,
    ctx: &'a Ctx,
}

impl Call<'_> {
    /// Read-only as the call asked, else `default` (the action's).
    fn read_only(&self, default: bool) -> bool {
        self.conn.read_only.unwrap_or(default)
    }

    fn statement(&self, sql: &str, params: &[Value], read_only: bool) -> Statement {
        Statement {
            profile: self.conn.profile.clone(),
            sql: sql.to_string(),
            params_json: Value::Array(params.to_vec()).to_string(),
            read_only,
            // The server cancels the statement a little before the call's deadline, so the agent
            // gets the server's clear "statement timeout" rather than a call cut short.
            timeout_ms: self.ctx.timeout_ms - (self.ctx.timeout_ms / 5).min(1000),
            max_rows: self.conn.max_rows.unwrap_or(MAX_ROWS),
        }
    }

    /// Runs one statement and shapes its result.
    fn run_sql(
        &self,
        sql: &str,
        params: &[Value],
        read_only: bool,
        mode: Mode,
    ) -> Result<PsqlOutput, ToolError> {
        let rows = postgres::query(&self.statement(sql, params, read_only))
            .map_err(|e| tool_error(e, sql))?;
        Ok(shape(rows, mode))
    }

    /// Runs SQL a table helper built, reporting the SQL and its values.
    fn run_built(
        &self,
        b: sql::Built,
        read_only: bool,
        mode: Mode,
    ) -> Result<PsqlOutput, ToolError> {
        let mut out = self.run_sql(&b.sql, &b.params, read_only, mode)?;
        out.sql = Some(b.sql);
        out.params = Some(b.params);
        Ok(out)
    }
}

fn statements(stmts: &[Stmt]) -> Result<&[Stmt], ToolError> {
    if stmts.is_empty() {
        return Err(ToolError::invalid(
            "statements",
            "give a non-empty array of {sql, params}",
        ));
    }
    Ok(stmts)
}

fn to_value(out: PsqlOutput) -> Value {
    serde_json::to_value(out).unwrap_or(Value::Null)
}

fn run(args: PsqlArgs, ctx: &Ctx) -> Result<PsqlOutput, ToolError> {
    let call = Call {
        conn: &args.conn,
        ctx,
    };
    match args.action {
        Action::Query { sql, params, mode } => call.run_sql(
            args::non_blank(&sql)?,
            &params.unwrap_or_default(),
            call.read_only(false),
            mode.unwrap_or_default(),
        ),
        Action::Batch {
            statements: stmts,
            stop_on_error,
        } => batch(&call, statements(&stmts)?, stop_on_error.unwrap_or(true)),
        Action::Transaction { statements: stmts } => transaction(&call, statements(&stmts)?),
        Action::Select(s) => {
            let b = sql::select(&sql::Select {
                table: s.rows.table.quoted()?,
                columns: s.columns.as_deref(),
                filter: s.rows.filter.as_ref(),
                order_by: s.order_by.as_deref(),
                limit: s.limit,
                offset: s.offset,
            })?;
            call.run_built(b, call.read_only(true), Mode::Rows)
        }
        Action::Count(rows) => call.run_built(
            sql::count(&rows.table.quoted()?, rows.filter.as_ref())?,
            call.read_only(true),
            Mode::Value,
        ),
        Action::Exists(rows) => call.run_built(
            sql::exists(&rows.table.quoted()?, rows.filter.as_ref())?,
            call.read_only(true),
            Mode::Value,
        ),
        Action::Insert {
            table,
            values,
            returning,
        } => {
            let table = table.quoted()?;
            let rows: Vec<Map<String, Value>> = match values {
                Value::Object(o) => vec![o],
                Value::Array(a) => a
                    .into_iter()
                    .map(|v| match v {
                        Value::Object(o) => Ok(o),
                        _ => Err(ToolError::invalid(
                            "values",
                            "each row must be an object of column → value",
                        )),
                    })
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err(ToolError::invalid(
                        "values",
                        "give an object of column → value, or an array of them",
                    ));
                }
            };
            let b = sql::insert(&table, &rows, returning.as_deref())?;
            call.run_built(b, call.read_only(false), returning_mode(&returning))
        }
        Action::Update {
            rows,
            set,
            all_rows,
            returning,
        } => {
            let b = sql::update(
                &rows.table.quoted()?,
                &set,
                rows.filter.as_ref(),
                all_rows.unwrap_or(false),
                returning.as_deref(),
            )?;
            call.run_built(b, call.read_only(false), returning_mode(&returning))
        }
        Action::Delete {
            rows,
            all_rows,
            returning,
        } => {
            let b = sql::delete(
                &rows.table.quoted()?,
                rows.filter.as_ref(),
                all_rows.unwrap_or(false),
                returning.as_deref(),
            )?;
            call.run_built(b, call.read_only(false), returning_mode(&returning))
        }
        Action::Export {
            sql,
            table,
            schema,
            format,
        } => {
            let sql_text = match (sql, table) {
                (Some(s), _) => s,
                (None, Some(t)) => {
                    format!("SELECT * FROM {}", sql::table_name(&t, schema.as_deref())?)
                }
                (None, None) => {
                    return Err(ToolError::invalid(
                        "sql",
                        "missing: give `sql` (a query) or `table`",
                    ));
                }
            };
            export(&call, &sql_text, format.unwrap_or_default())
        }
        Action::Tables { schema } => {
            let mut params = vec![];
            let mut sql = String::from(
                "SELECT table_schema::text AS schema, table_name::text AS name, table_type::text AS type \
                 FROM information_schema.tables \
                 WHERE table_schema::text NOT IN ('pg_catalog', 'information_schema')",
            );
            if let Some(s) = &schema {
                params.push(json!(s));
                sql.push_str(" AND table_schema::text = $1");
            }
            sql.push_str(" ORDER BY 1, 2");
            call.run_sql(&sql, &params, call.read_only(true), Mode::Rows)
        }
        Action::Columns(table) => columns(&call, &table),
        Action::DatabaseInfo => call.run_sql(
            "SELECT current_database()::text AS database, current_user::text AS user, \
             current_setting('server_version') AS server_version, version() AS version, \
             pg_database_size(current_database()) AS size_bytes, \
             current_setting('TimeZone') AS timezone, current_setting('server_encoding') AS encoding, \
             pg_is_in_recovery() AS in_recovery, current_setting('transaction_read_only') AS read_only",
            &[],
            call.read_only(true),
            Mode::Row,
        ),
        Action::Explain {
            sql,
            params,
            analyze,
        } => explain(
            &call,
            args::non_blank(&sql)?,
            &params.unwrap_or_default(),
            analyze.unwrap_or(false),
        ),
    }
}

/// Runs each statement on its own, recording each result or error.
fn batch(call: &Call, stmts: &[Stmt], stop: bool) -> Result<PsqlOutput, ToolError> {
    let mut results = Vec::with_capacity(stmts.len());
    let mut all_ok = true;
    for (i, s) in stmts.iter().enumerate() {
        let params = s.params.clone().unwrap_or_default();
        match call.run_sql(
            &s.sql,
            &params,
            call.read_only(false),
            s.mode.unwrap_or_default(),
        ) {
            Ok(out) => {
                let mut v = to_value(out);
                v["ok"] = json!(true);
                results.push(v);
            }
            Err(e) => {
                all_ok = false;
                results.push(json!({
                    "ok": false,
                    "statement": i,
                    "error": {"kind": e.kind.as_str(), "message": e.message, "detail": e.detail},
                }));
                if stop {
                    break;
                }
            }
        }
    }
    Ok(PsqlOutput {
        results: Some(results),
        all_ok: Some(all_ok),
        ..Default::default()
    })
}

/// Runs the statements in one transaction: all or nothing.
fn transaction(call: &Call, stmts: &[Stmt]) -> Result<PsqlOutput, ToolError> {
    let list: Vec<Statement> = stmts
        .iter()
        .map(|s| {
            call.statement(
                &s.sql,
                s.params.as_deref().unwrap_or(&[]),
                call.read_only(false),
            )
        })
        .collect();
    let rows = postgres::transaction(&list).map_err(|e| {
        // The host names the failing statement as "statement N of M".
        let n = match &e {
            PgError::Sql(s) => s
                .message
                .strip_prefix("statement ")
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse::<usize>().ok()),
            PgError::Cap(_) => None,
        };
        let sql = n
            .and_then(|n| stmts.get(n.wrapping_sub(1)))
            .map_or("", |s| s.sql.as_str());
        tool_error(e, sql)
    })?;
    let results = rows
        .into_iter()
        .zip(stmts)
        .map(|(r, s)| to_value(shape(r, s.mode.unwrap_or_default())))
        .collect();
    Ok(PsqlOutput {
        results: Some(results),
        all_ok: Some(true),
        ..Default::default()
    })
}

/// Streams the rows of `sql_text` into an artifact; always read-only.
fn export(call: &Call, sql_text: &str, format: Format) -> Result<PsqlOutput, ToolError> {
    let format = match format {
        Format::Csv => CopyFormat::Csv,
        Format::Jsonl => CopyFormat::Jsonl,
    };
    let got = postgres::copy_out(&call.statement(sql_text, &[], true), format)
        .map_err(|e| tool_error(e, sql_text))?;
    Ok(PsqlOutput {
        artifact: Some(json!({
            "uri": got.artifact.uri,
            "size": got.artifact.size,
            "sha256": got.artifact.sha256,
        })),
        exported_rows: Some(got.rows),
        ..Default::default()
    })
}

/// The columns of a table; not-found when it has none.
fn columns(call: &Call, t: &Table) -> Result<PsqlOutput, ToolError> {
    let (schema, table) = match (t.schema.as_deref(), t.table.split_once('.')) {
        (Some(s), _) => (Some(s.to_string()), t.table.clone()),
        (None, Some((s, t))) => (Some(s.to_string()), t.to_string()),
        (None, None) => (None, t.table.clone()),
    };
    let sql = "SELECT column_name::text AS name, data_type::text AS type, \
               (is_nullable = 'YES') AS nullable, column_default::text AS default, \
               ordinal_position::int AS position \
               FROM information_schema.columns \
               WHERE table_name::text = $1 \
               AND table_schema::text = coalesce($2::text, current_schema()) \
               ORDER BY ordinal_position";
    let out = call.run_sql(
        sql,
        &[json!(table), json!(schema)],
        call.read_only(true),
        Mode::Rows,
    )?;
    if out.row_count == Some(0) {
        return Err(ToolError::not_found(format!(
            "no table '{table}' in schema {}; `tables` lists them",
            schema.as_deref().unwrap_or("current_schema()")
        )));
    }
    Ok(out)
}

/// The plan of `sql` as JSON, error positions pointing into the caller's SQL.
fn explain(
    call: &Call,
    sql: &str,
    params: &[Value],
    analyze: bool,
) -> Result<PsqlOutput, ToolError> {
    let text = format!(
        "EXPLAIN (FORMAT JSON{}) {sql}",
        if analyze { ", ANALYZE" } else { "" }
    );
    let prefix_len = text.len() - sql.len();
    let rows = postgres::query(&call.statement(&text, params, call.read_only(true))).map_err(
        |e| match e {
            // Point positions back into the caller's SQL.
            PgError::Sql(mut s) => {
                s.position = s
                    .position
                    .map(|p| p.saturating_sub(prefix_len as u32).max(1));
                tool_error(PgError::Sql(s), sql)
            }
            other => tool_error(other, sql),
        },
    )?;
    let out = shape(rows, Mode::Value);
    let plan = match out.value {
        Some(Value::String(s)) => parse(&s),
        Some(v) => v,
        None => Value::Null,
    };
    Ok(PsqlOutput {
        plan: Some(plan),
        ..Default::default()
    })
}

/// Rows when `returning` asks for them, else the affected count.
fn returning_mode(returning: &Option<Vec<String>>) -> Mode {
    if returning.as_ref().is_some_and(|r| !r.is_empty()) {
        Mode::Rows
    } else {
        Mode::Command
    }
}

infra_sdk::plugin!(tools: [
    Tool::new("psql", "PostgreSQL", DESCRIPTION, run).open_world().destructive(),
]);
