//! One call's statements against the host: built with the call's connection settings and
//! deadline, run, and host errors turned into tool errors that name the argument.

use crate::caps::postgres::{self, PgError, Statement};
use infra_sdk::prelude::*;

use crate::args::{Conn, Mode};
use crate::output::{PsqlOutput, shape};
use crate::sql;

/// Default row cap.
const MAX_ROWS: u32 = 1000;

/// A host error as a tool error: SQL errors keep SQLSTATE and position in `detail`.
pub(crate) fn tool_error(e: PgError, sql: &str) -> ToolError {
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

/// One call: the connection settings every action shares, and the call's deadline.
pub(crate) struct Call<'a> {
    /// The connection settings every action shares.
    pub(crate) conn: &'a Conn,
    /// The call's context (its deadline).
    pub(crate) ctx: &'a Ctx,
}

impl Call<'_> {
    /// Read-only as the call asked, else `default` (the action's).
    pub(crate) fn read_only(&self, default: bool) -> bool {
        self.conn.read_only.unwrap_or(default)
    }

    /// One statement under the call's profile, row cap and deadline.
    pub(crate) fn statement(&self, sql: &str, params: &[Value], read_only: bool) -> Statement {
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
    pub(crate) fn run_sql(
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
    pub(crate) fn run_built(
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
