//! The `psql` tool: SQL on PostgreSQL through the host's `postgres` capability.
//!
//! The host holds the passwords and the connection pools and enforces the policy (profiles,
//! forced read-only); this plugin shapes requests and results. Table helpers (`select`,
//! `insert`, `update`, `delete`, `count`, `exists`) build SQL in [`sql`] with quoted identifiers
//! and `$n` parameters, so no value is ever spliced into SQL text.

mod args;
mod sql;

use crate::caps::postgres::{self, CopyFormat, PgError, Rows, Statement};
use infra_sdk::prelude::*;
use serde_json::Map;

use args::{Action, Format, Mode, PsqlArgs, Stmt};

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

fn statement(
    args: &PsqlArgs,
    ctx: &Ctx,
    sql: &str,
    params: &[Value],
    read_only: bool,
) -> Statement {
    Statement {
        profile: args.profile.clone(),
        sql: sql.to_string(),
        params_json: Value::Array(params.to_vec()).to_string(),
        read_only,
        // The server cancels the statement a little before the call's deadline, so the agent
        // gets the server's clear "statement timeout" rather than a call cut short.
        timeout_ms: ctx.timeout_ms - (ctx.timeout_ms / 5).min(1000),
        max_rows: args.max_rows.unwrap_or(MAX_ROWS),
    }
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

/// Runs one statement and shapes its result.
fn run_sql(
    args: &PsqlArgs,
    ctx: &Ctx,
    sql: &str,
    params: &[Value],
    read_only: bool,
    mode: Mode,
) -> Result<PsqlOutput, ToolError> {
    let rows = postgres::query(&statement(args, ctx, sql, params, read_only))
        .map_err(|e| tool_error(e, sql))?;
    Ok(shape(rows, mode))
}

/// Runs SQL a table helper built, reporting the SQL and its values.
fn run_built(
    args: &PsqlArgs,
    ctx: &Ctx,
    b: sql::Built,
    read_only: bool,
    mode: Mode,
) -> Result<PsqlOutput, ToolError> {
    let mut out = run_sql(args, ctx, &b.sql, &b.params, read_only, mode)?;
    out.sql = Some(b.sql);
    out.params = Some(b.params);
    Ok(out)
}

fn statements(args: &PsqlArgs) -> Result<&[Stmt], ToolError> {
    match args.statements.as_deref() {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(ToolError::invalid(
            "statements",
            "give a non-empty array of {sql, params}",
        )),
    }
}

fn to_value(out: PsqlOutput) -> Value {
    serde_json::to_value(out).unwrap_or(Value::Null)
}

fn run(args: PsqlArgs, ctx: &Ctx) -> Result<PsqlOutput, ToolError> {
    let ro_default = |d: bool| args.read_only.unwrap_or(d);
    let filter = args.filter.as_ref();
    match args.action {
        Action::Query => {
            let sql = args.sql()?;
            let params = args.params.clone().unwrap_or_default();
            run_sql(
                &args,
                ctx,
                sql,
                &params,
                ro_default(false),
                args.mode.unwrap_or_default(),
            )
        }
        Action::Batch => {
            let stmts = statements(&args)?;
            let stop = args.stop_on_error.unwrap_or(true);
            let mut results = Vec::with_capacity(stmts.len());
            let mut all_ok = true;
            for (i, s) in stmts.iter().enumerate() {
                let params = s.params.clone().unwrap_or_default();
                match run_sql(
                    &args,
                    ctx,
                    &s.sql,
                    &params,
                    ro_default(false),
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
        Action::Transaction => {
            let stmts = statements(&args)?;
            let list: Vec<Statement> = stmts
                .iter()
                .map(|s| {
                    statement(
                        &args,
                        ctx,
                        &s.sql,
                        s.params.as_deref().unwrap_or(&[]),
                        ro_default(false),
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
        Action::Select => {
            let table = sql::table_name(args.table()?, args.schema.as_deref())?;
            let b = sql::select(&sql::Select {
                table,
                columns: args.columns.as_deref(),
                filter,
                order_by: args.order_by.as_deref(),
                limit: args.limit,
                offset: args.offset,
            })?;
            run_built(&args, ctx, b, ro_default(true), Mode::Rows)
        }
        Action::Count => {
            let table = sql::table_name(args.table()?, args.schema.as_deref())?;
            run_built(
                &args,
                ctx,
                sql::count(&table, filter)?,
                ro_default(true),
                Mode::Value,
            )
        }
        Action::Exists => {
            let table = sql::table_name(args.table()?, args.schema.as_deref())?;
            run_built(
                &args,
                ctx,
                sql::exists(&table, filter)?,
                ro_default(true),
                Mode::Value,
            )
        }
        Action::Insert => {
            let table = sql::table_name(args.table()?, args.schema.as_deref())?;
            let rows: Vec<Map<String, Value>> = match &args.values {
                Some(Value::Object(o)) => vec![o.clone()],
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_object().cloned().ok_or_else(|| {
                            ToolError::invalid(
                                "values",
                                "each row must be an object of column → value",
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err(ToolError::invalid(
                        "values",
                        "missing: give an object of column → value, or an array of them",
                    ));
                }
            };
            let b = sql::insert(&table, &rows, args.returning.as_deref())?;
            run_built(&args, ctx, b, ro_default(false), returning_mode(&args))
        }
        Action::Update => {
            let table = sql::table_name(args.table()?, args.schema.as_deref())?;
            let set = args
                .set
                .as_ref()
                .ok_or_else(|| ToolError::invalid("set", "missing: give column → new value"))?;
            let b = sql::update(
                &table,
                set,
                filter,
                args.all_rows.unwrap_or(false),
                args.returning.as_deref(),
            )?;
            run_built(&args, ctx, b, ro_default(false), returning_mode(&args))
        }
        Action::Delete => {
            let table = sql::table_name(args.table()?, args.schema.as_deref())?;
            let b = sql::delete(
                &table,
                filter,
                args.all_rows.unwrap_or(false),
                args.returning.as_deref(),
            )?;
            run_built(&args, ctx, b, ro_default(false), returning_mode(&args))
        }
        Action::Export => {
            let sql_text = match (&args.sql, &args.table) {
                (Some(s), _) => s.clone(),
                (None, Some(t)) => format!(
                    "SELECT * FROM {}",
                    sql::table_name(t, args.schema.as_deref())?
                ),
                (None, None) => {
                    return Err(ToolError::invalid(
                        "sql",
                        "missing: give `sql` (a query) or `table`",
                    ));
                }
            };
            let format = match args.format.unwrap_or_default() {
                Format::Csv => CopyFormat::Csv,
                Format::Jsonl => CopyFormat::Jsonl,
            };
            let got = postgres::copy_out(&statement(&args, ctx, &sql_text, &[], true), format)
                .map_err(|e| tool_error(e, &sql_text))?;
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
        Action::Tables => {
            let mut params = vec![];
            let mut sql = String::from(
                "SELECT table_schema::text AS schema, table_name::text AS name, table_type::text AS type \
                 FROM information_schema.tables \
                 WHERE table_schema::text NOT IN ('pg_catalog', 'information_schema')",
            );
            if let Some(s) = &args.schema {
                params.push(json!(s));
                sql.push_str(" AND table_schema::text = $1");
            }
            sql.push_str(" ORDER BY 1, 2");
            run_sql(&args, ctx, &sql, &params, ro_default(true), Mode::Rows)
        }
        Action::Columns => {
            let (schema, table) = match (args.schema.as_deref(), args.table()?.split_once('.')) {
                (Some(s), _) => (Some(s.to_string()), args.table()?.to_string()),
                (None, Some((s, t))) => (Some(s.to_string()), t.to_string()),
                (None, None) => (None, args.table()?.to_string()),
            };
            let sql = "SELECT column_name::text AS name, data_type::text AS type, \
                       (is_nullable = 'YES') AS nullable, column_default::text AS default, \
                       ordinal_position::int AS position \
                       FROM information_schema.columns \
                       WHERE table_name::text = $1 \
                       AND table_schema::text = coalesce($2::text, current_schema()) \
                       ORDER BY ordinal_position";
            let out = run_sql(
                &args,
                ctx,
                sql,
                &[json!(table), json!(schema)],
                ro_default(true),
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
        Action::DatabaseInfo => run_sql(
            &args,
            ctx,
            "SELECT current_database()::text AS database, current_user::text AS user, \
             current_setting('server_version') AS server_version, version() AS version, \
             pg_database_size(current_database()) AS size_bytes, \
             current_setting('TimeZone') AS timezone, current_setting('server_encoding') AS encoding, \
             pg_is_in_recovery() AS in_recovery, current_setting('transaction_read_only') AS read_only",
            &[],
            ro_default(true),
            Mode::Row,
        ),
        Action::Explain => {
            let sql = args.sql()?;
            let analyze = args.analyze.unwrap_or(false);
            let text = format!(
                "EXPLAIN (FORMAT JSON{}) {sql}",
                if analyze { ", ANALYZE" } else { "" }
            );
            let params = args.params.clone().unwrap_or_default();
            let prefix_len = text.len() - sql.len();
            let rows = postgres::query(&statement(&args, ctx, &text, &params, ro_default(true)))
                .map_err(|e| match e {
                    // Point positions back into the caller's SQL.
                    PgError::Sql(mut s) => {
                        s.position = s
                            .position
                            .map(|p| p.saturating_sub(prefix_len as u32).max(1));
                        tool_error(PgError::Sql(s), sql)
                    }
                    other => tool_error(other, sql),
                })?;
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
    }
}

/// Rows when `returning` asks for them, else the affected count.
fn returning_mode(args: &PsqlArgs) -> Mode {
    if args.returning.as_ref().is_some_and(|r| !r.is_empty()) {
        Mode::Rows
    } else {
        Mode::Command
    }
}

infra_sdk::plugin!(tools: [
    Tool::new("psql", "PostgreSQL", DESCRIPTION, run).open_world().destructive(),
]);
