//! The `psql` tool: SQL on PostgreSQL through the host's `postgres` capability.
//!
//! The host holds the passwords and the connection pools and enforces the policy (profiles,
//! forced read-only); this plugin shapes requests and results. Table helpers (`select`,
//! `insert`, `update`, `delete`, `count`, `exists`) build SQL in [`sql`] with quoted identifiers
//! and `$n` parameters, so no value is ever spliced into SQL text.

mod args;
mod call;
mod output;
mod sql;

use crate::caps::postgres::{self, CopyFormat, PgError, Statement};
use infra_sdk::prelude::*;
use serde_json::Map;

use args::{Action, Format, Mode, PsqlArgs, Stmt, Table};
use call::{Call, tool_error};
use output::{PsqlOutput, parse, shape, to_value};

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

/// The statements of `batch` or `transaction`, refused when there are none.
fn statements(stmts: &[Stmt]) -> Result<&[Stmt], ToolError> {
    if stmts.is_empty() {
        return Err(ToolError::invalid(
            "statements",
            "give a non-empty array of {sql, params}",
        ));
    }
    Ok(stmts)
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
