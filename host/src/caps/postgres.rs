//! `infra:host/postgres` (tokio-postgres, deadpool-postgres): SQL on the postgres profiles of
//! `profiles.json`, checked against `[plugin.<name>.postgres]`.
//!
//! - **Pools.** Per profile, a pool of at most [`POOL_SIZE`] connections for read-write calls and
//!   one for read-only calls (whose sessions start read-only), kept in [`Pools`] for
//!   the life of the server and shared by every call. At the end of each call the connection's
//!   session is reset ([`RESET_SESSION`]: `ROLLBACK`, `RESET ALL`, `DISCARD TEMP`, … — no
//!   session state, not even a transaction a bare `BEGIN` opened, leaks from one call to the
//!   next, whichever plugin makes it) and only then goes back to the pool; a connection whose
//!   reset fails, or whose call was abandoned or timed out, is closed instead. Checkout only
//!   checks that the connection is still open (`RecyclingMethod::Fast`), so a pool whose server
//!   restarted drops the dead connections and opens new ones.
//!   The password is read from its reference when a call uses the profile; a changed password
//!   (or host, port, user, database) replaces the pool.
//! - **Parameters** arrive as a JSON array and are bound with the types the server infers for
//!   the prepared statement (`$1…$n`), never interpolated: see [`params`] for the mapping.
//! - **Read-only.** `read-only` in the call, `read_only` in the profile or `read_only = true` in
//!   the policy makes a call read-only, in four layers: a statement must begin with a query
//!   keyword (see [`read_only`]: no `COMMIT`, `SET`, `DO`, `CALL` …), checked before anything is
//!   sent; it runs inside a `READ ONLY` transaction the host opens; that transaction is always
//!   rolled back, never committed; and the session's default is read-only too. User SQL only
//!   ever goes through the extended protocol (prepare, then execute or COPY of the prepared
//!   text), which takes exactly one statement. This is a guard, not a permission: a role with
//!   only SELECT grants is what really keeps a database unwritten.
//! - **Timeouts.** `SET LOCAL statement_timeout` from the call's timeout (the server cancels the
//!   statement: SQLSTATE 57014 becomes a `timeout` error), and the host gives up on the
//!   connection at the call's deadline whatever happens.
//! - **Row cap.** Rows come from a portal, `max-rows + 1` at a time: the rest of a large result
//!   is never sent. Rows are kept while their JSON fits the policy's `[limits] capture_bytes`,
//!   whatever `max-rows` asks; the cut falls between whole rows, so a secret in a cell is never
//!   split before scrubbing. When truncated, up to 10,000 more rows are counted (not decoded)
//!   for `total`.
//! - **Rows to JSON** (see [`rows`]): bool, ints, floats (NaN/±Infinity as strings), numeric as
//!   an exact decimal string, text types, json/jsonb as JSON, uuid, timestamptz as RFC 3339,
//!   timestamp/date/time as ISO 8601 text, bytea as base64, arrays of those as JSON arrays,
//!   NULL as null. Any other type gives its binary value as text when that is printable UTF-8
//!   (enums, citext, …) and else as `\x` hex: cast it with `::text` in SQL for the server's text.
//! - **COPY OUT** streams from the server through the secret scrubber into an artifact; the
//!   data never enters plugin memory. An export whose scrubbed bytes pass `[limits]
//!   artifact_bytes` fails with advice and leaves no artifact.
//! - **COPY IN** streams an artifact from the store into one table (`COPY … FROM STDIN`, CSV;
//!   JSONL converted to CSV line by line) in one transaction: a bad row fails the load with the
//!   line the server names and leaves the table as it was. Table and column names must be plain
//!   identifiers and are quoted; a read-only profile or policy refuses the load.
//! - **Lost connections** (the server shut down or restarted mid-call, the link broke) fail the
//!   call saying so and to retry; the dead connection is closed, never returned to the pool.
//! - **Errors** the server raises come back as `sql-error` with its message (plus detail and
//!   hint), SQLSTATE and 1-based position in the caller's SQL.
//!
//! Connections use no TLS yet: profiles reach servers on trusted networks (loopback, VPN).

use std::borrow::Cow;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use futures::future::BoxFuture;
use postgres_types::ToSql;
use tokio_postgres::error::ErrorPosition;

use super::infra::host::postgres::{
    CopyFormat, CopyInRequest, CopyInResult, CopyResult, Host, PgError, Rows, SqlError, Statement,
};
use super::infra::host::types::CapError;
use super::types::error_chain;
use super::{CallCtx, CapUse, StoreState};
use crate::profiles::Profile;

mod copy;
mod copy_in;
mod params;
mod pool;
mod read_only;
mod rows;
mod unclip;

use params::{Param, bind_params, parse_params};
use pool::Lease;
pub use pool::Pools;
use rows::{rows_detail, run_in_tx};
use unclip::{Unclip, map_message, quoted_forms, unclip};

/// Connections one profile's pool holds at most: N concurrent calls share them.
pub const POOL_SIZE: usize = 4;
/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Rows counted (not decoded) past the cap to report `total`.
const COUNT_PAST_CAP: i32 = 10_000;
/// The host waits this long past the statement timeout for the server's own cancel.
const GRACE: Duration = Duration::from_secs(2);
/// Run on a connection after each call, before it goes back to the pool: what deadpool's
/// `RecyclingMethod::Clean` runs at checkout, plus a `ROLLBACK` for a transaction a statement
/// such as `BEGIN` left open (deadpool's `Clean` would have run inside it).
const RESET_SESSION: &str = "ROLLBACK; CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; \
RESET ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES;";

/// Why a call that set `read-only` is read-only.
const ASKED: &str = "the call asked for read_only";

/// A profile resolved for one call.
struct Target {
    pool: Pool,
    /// `profile NAME (host:port/db)`, for events and messages.
    label: String,
    /// Why the call is read-only (the policy, the profile or the call said so), when it is.
    read_only: Option<String>,
    /// The profile's password, to redact what the server clips of it.
    password: Option<String>,
}

impl Target {
    /// Redacts, in a result or an error, what the server clipped of the password (see
    /// [`unclip`]); the whole password is scrubbed on the way out like every secret.
    fn unclip<T: Unclip>(&self, r: Result<T, PgError>) -> Result<T, PgError> {
        let Some(pw) = self.password.as_deref() else {
            return r;
        };
        let fix = |t: String| match unclip(&t, pw) {
            Cow::Borrowed(_) => t,
            Cow::Owned(o) => o,
        };
        match r {
            Ok(v) => Ok(v.map_text(&fix)),
            Err(e) => Err(map_message(e, fix)),
        }
    }

    /// Refuses, before anything is sent, a statement a read-only call may not run.
    fn check(&self, sql: &str) -> Result<(), PgError> {
        match &self.read_only {
            Some(why) => read_only::check(sql, why).map_err(invalid),
            None => Ok(()),
        }
    }
}

fn cap(e: CapError) -> PgError {
    PgError::Cap(e)
}

fn invalid(msg: impl Into<String>) -> PgError {
    cap(CapError::Invalid(msg.into()))
}

/// A tokio-postgres error as the guest sees it. `offset` is subtracted from server positions
/// (the length of SQL the host wrapped around the caller's).
/// Opens the host-owned transaction every statement runs in: READ ONLY when asked, and a
/// server-side `statement_timeout` of `ms` so a runaway query stops on the server too.
async fn begin(
    client: &mut deadpool_postgres::Client,
    read_only: bool,
    ms: u64,
) -> Result<deadpool_postgres::Transaction<'_>, tokio_postgres::Error> {
    let tx = client
        .build_transaction()
        .read_only(read_only)
        .start()
        .await?;
    tx.batch_execute(&format!("SET LOCAL statement_timeout = {ms}"))
        .await?;
    Ok(tx)
}

fn pg_err(e: &tokio_postgres::Error, label: &str, offset: u32) -> PgError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code().to_string();
        let mut message = db.message().to_string();
        if let Some(d) = db.detail() {
            message.push_str("; detail: ");
            message.push_str(d);
        }
        if let Some(h) = db.hint() {
            message.push_str("; hint: ");
            message.push_str(h);
        }
        // The server went away under the call (shut down, crashed, restarting) or the link broke.
        if code.starts_with("57P") || code.starts_with("08") {
            return lost(label, &format!("{message} (SQLSTATE {code})"));
        }
        if code == "57014" {
            return cap(CapError::Timeout(format!(
                "{message} (SQLSTATE 57014, on {label}); raise timeout_ms or make the statement cheaper"
            )));
        }
        if code == "22P03" {
            message.push_str(
                "; infra sends parameters of this type as text: cast the placeholder in SQL, e.g. $1::text::inet",
            );
        }
        let position = match db.position() {
            Some(ErrorPosition::Original(p)) => Some(p.saturating_sub(offset).max(1)),
            _ => None,
        };
        return PgError::Sql(SqlError {
            message,
            code,
            position,
        });
    }
    let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
    if e.is_closed() || io {
        return lost(label, &error_chain(e));
    }
    cap(CapError::Failed(format!("{label}: {}", error_chain(e))))
}

/// The connection died under a call: the statement did not finish; the pool drops the dead
/// connection, so the same call made again opens a new one.
fn lost(label: &str, why: &str) -> PgError {
    cap(CapError::Failed(format!(
        "the connection to {label} was lost ({why}); the statement did not finish — retry the \
         call: the next call opens a new connection"
    )))
}

impl CallCtx {
    /// Checks the grants and resolves the profile and its pool. `asked` says why the call itself
    /// is read-only, when it is; the policy and the profile can make it read-only, never undo it.
    fn pg_target(&self, profile: &str, asked: Option<&str>) -> Result<Target, PgError> {
        let target = format!("profile {profile}");
        self.require("postgres", &target)
            .map_err(|r| cap(CapError::Denied(r)))?;
        self.decide(
            "postgres",
            &target,
            self.shared
                .policy
                .check_profile(&self.plugin, "postgres", profile),
        )
        .map_err(|r| cap(CapError::Denied(r)))?;
        let p = match self.shared.profiles.get(profile) {
            Some(Profile::Postgres(p)) => p,
            Some(_) => {
                return Err(invalid(format!(
                    "profile: '{profile}' is not a postgres profile"
                )));
            }
            None => {
                let known: Vec<&str> = self
                    .shared
                    .profiles
                    .names()
                    .filter(|n| matches!(self.shared.profiles.get(n), Some(Profile::Postgres(_))))
                    .collect();
                return Err(cap(CapError::NotFound(format!(
                    "no postgres profile '{profile}' in {}; known postgres profiles: {}",
                    self.shared.profiles.origin(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))));
            }
        };
        let password = match &p.password {
            None => None,
            Some(r) => Some(
                r.resolve()
                    .map_err(|e| cap(CapError::Failed(format!("{e:#}"))))?,
            ),
        };
        if let Some(pw) = &password {
            self.shared.redactor.add(pw);
            for form in quoted_forms(pw) {
                self.shared.redactor.add(&form);
            }
        }
        let read_only = if self.shared.policy.postgres_read_only(&self.plugin) {
            Some(format!(
                "the policy's [plugin.{}.postgres] read_only forces it",
                self.plugin
            ))
        } else if p.read_only {
            Some(format!("profile '{profile}' has \"read_only\": true"))
        } else {
            asked.map(str::to_string)
        };
        let pool = self
            .shared
            .postgres
            .get(profile, p, password.as_deref(), read_only.is_some())
            .map_err(cap)?;
        Ok(Target {
            pool,
            label: format!("profile {profile} ({}:{}/{})", p.host, p.port, p.database),
            read_only,
            password,
        })
    }

    /// The statement timeout of a call asking for `timeout_ms` (0: the call's own deadline).
    fn pg_budget(&self, timeout_ms: u32) -> u64 {
        let left = self.remaining_ms();
        if timeout_ms == 0 {
            left
        } else {
            u64::from(timeout_ms).min(left)
        }
    }

    /// Runs `work` on a pooled connection, giving up at the statement timeout plus a grace
    /// period (never past the call's deadline); a connection given up on is closed, not reused.
    async fn with_client<T>(
        &self,
        t: &Target,
        budget_ms: u64,
        work: impl for<'c> FnOnce(
            &'c mut deadpool_postgres::Client,
        ) -> BoxFuture<'c, Result<T, PgError>>,
    ) -> Result<T, PgError> {
        let deadline =
            (Instant::now() + Duration::from_millis(budget_ms) + GRACE).min(self.deadline);
        let deadline = tokio::time::Instant::from_std(deadline);
        let mut client = match tokio::time::timeout_at(deadline, t.pool.get()).await {
            Err(_) => {
                return Err(cap(CapError::Timeout(format!(
                    "no connection to {} before the deadline (the pool holds {POOL_SIZE}); raise timeout_ms",
                    t.label
                ))));
            }
            Ok(Err(deadpool_postgres::PoolError::Backend(e))) => {
                return Err(match pg_err(&e, &t.label, 0) {
                    PgError::Sql(mut s) => {
                        s.message = format!("connecting to {}: {}", t.label, s.message);
                        PgError::Sql(s)
                    }
                    PgError::Cap(_) => cap(CapError::Failed(format!(
                        "cannot connect to {}: {}",
                        t.label,
                        error_chain(&e)
                    ))),
                });
            }
            Ok(Err(e)) => {
                return Err(cap(CapError::Failed(format!(
                    "cannot connect to {}: {e}",
                    t.label
                ))));
            }
            Ok(Ok(c)) => Lease(Some(c)),
        };
        let Some(conn) = client.0.as_mut() else {
            unreachable!("a new lease holds its connection")
        };
        match tokio::time::timeout_at(deadline, work(conn)).await {
            Ok(r) => {
                client.release().await;
                r
            }
            Err(_) => {
                drop(client);
                Err(cap(CapError::Timeout(format!(
                    "the statement on {} ran past {budget_ms} ms; the connection was closed — raise timeout_ms",
                    t.label
                ))))
            }
        }
    }

    /// Closes the capability event of one call with its outcome.
    fn pg_event<T>(&self, ev: CapUse<'_>, r: &Result<T, PgError>, ok: String) {
        match r {
            Ok(_) => ev.ok(ok),
            Err(PgError::Sql(s)) => ev.fail(format!("SQLSTATE {}", s.code)),
            // Scrubbed whole, then cut: a cut first could split a secret past recognition.
            Err(PgError::Cap(e)) => ev.fail(
                self.shared
                    .redactor
                    .scrub_str(&format!("{e:?}"))
                    .chars()
                    .take(200)
                    .collect::<String>(),
            ),
        }
    }

    fn scrub_err(&self, e: PgError) -> PgError {
        map_message(e, |t| self.shared.redactor.scrub_str(&t).into_owned())
    }

    fn scrub_rows(&self, r: Rows) -> Rows {
        let s = |t: String| self.shared.redactor.scrub_str(&t).into_owned();
        Rows {
            columns_json: s(r.columns_json),
            rows_json: s(r.rows_json),
            ..r
        }
    }
}

impl CallCtx {
    async fn pg_query(&self, stmt: Statement) -> Result<Rows, PgError> {
        let call = self;
        let t = call.pg_target(&stmt.profile, stmt.read_only.then_some(ASKED))?;
        let read_only = t.read_only.is_some();
        t.check(&stmt.sql)?;
        let values = parse_params(&stmt.params_json)?;
        let ms = call.pg_budget(stmt.timeout_ms);
        let label = t.label.clone();
        let sql = stmt.sql.clone();
        let max_rows = stmt.max_rows;
        let capture = call.shared.policy.limits().capture_bytes;
        let ev = call.event("postgres", &t.label);
        let r = call
            .with_client(&t, ms, move |client| {
                Box::pin(async move {
                    let err = |e: tokio_postgres::Error| pg_err(&e, &label, 0);
                    // One round trip for both: the prepare's errors come first (they point into
                    // the caller's SQL). The session-level timeout covers whatever runs next
                    // and is reset with the session after the call.
                    let set_timeout = format!("SET statement_timeout = {ms}");
                    let (st, ()) = futures::try_join!(
                        async { client.prepare(&sql).await.map_err(err) },
                        async { client.batch_execute(&set_timeout).await.map_err(err) },
                    )?;
                    let params = bind_params(&st, &values)?;
                    if st.columns().is_empty() && !read_only {
                        // A command runs on its own, outside a transaction block, so that
                        // VACUUM, CREATE DATABASE, CREATE INDEX CONCURRENTLY work too.
                        let refs: Vec<&(dyn ToSql + Sync)> =
                            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                        let n = client.execute(&st, &refs).await.map_err(err)?;
                        return Ok(Rows {
                            columns_json: "[]".into(),
                            rows_json: "[]".into(),
                            truncated: false,
                            affected: Some(n),
                            total: None,
                        });
                    }
                    let tx = client
                        .build_transaction()
                        .read_only(read_only)
                        .start()
                        .await
                        .map_err(err)?;
                    let rows = run_in_tx(&tx, &st, &params, max_rows, capture, &label).await?;
                    // A read-only call never commits: whatever slipped past the guard and the
                    // READ ONLY transaction is undone.
                    if read_only {
                        tx.rollback().await.map_err(err)?;
                    } else {
                        tx.commit().await.map_err(err)?;
                    }
                    Ok(rows)
                })
            })
            .await;
        let r = t.unclip(r);
        let detail = r.as_ref().map(rows_detail).unwrap_or_default();
        call.pg_event(ev, &r, detail);
        r
    }

    async fn pg_transaction(&self, stmts: Vec<Statement>) -> Result<Vec<Rows>, PgError> {
        let call = self;
        let Some(first) = stmts.first() else {
            return Err(invalid("statements: give at least one statement"));
        };
        if let Some(other) = stmts.iter().find(|s| s.profile != first.profile) {
            return Err(invalid(format!(
                "statements: one transaction runs on one profile; got '{}' and '{}'",
                first.profile, other.profile
            )));
        }
        let t = call.pg_target(
            &first.profile,
            stmts.iter().any(|s| s.read_only).then_some(ASKED),
        )?;
        let read_only = t.read_only.is_some();
        for (i, s) in stmts.iter().enumerate() {
            t.check(&s.sql).map_err(|e| prefix(e, i, stmts.len()))?;
        }
        let capture = call.shared.policy.limits().capture_bytes;
        let ms = call.pg_budget(stmts.iter().map(|s| s.timeout_ms).max().unwrap_or(0));
        let mut work = Vec::with_capacity(stmts.len());
        for (i, s) in stmts.iter().enumerate() {
            let values = parse_params(&s.params_json).map_err(|e| prefix(e, i, stmts.len()))?;
            work.push((s.sql.clone(), values, s.max_rows));
        }
        let label = t.label.clone();
        let ev = call.event("postgres", &t.label);
        let r = call
            .with_client(&t, ms, move |client| {
                Box::pin(async move {
                    let err = |e: tokio_postgres::Error| pg_err(&e, &label, 0);
                    let n = work.len();
                    let tx = begin(client, read_only, ms).await.map_err(err)?;
                    let mut out = Vec::with_capacity(n);
                    // The statements share one capture budget: all their rows are held at once.
                    let mut left = capture;
                    for (i, (sql, values, max_rows)) in work.iter().enumerate() {
                        let one = async {
                            let st = tx.prepare(sql).await.map_err(err)?;
                            let params = bind_params(&st, values)?;
                            run_in_tx(&tx, &st, &params, *max_rows, left, &label).await
                        };
                        let rows = one.await.map_err(|e| prefix(e, i, n))?;
                        left = left.saturating_sub(rows.rows_json.len() as u64);
                        out.push(rows);
                    }
                    if read_only {
                        tx.rollback().await.map_err(err)?;
                    } else {
                        tx.commit().await.map_err(err)?;
                    }
                    Ok(out)
                })
            })
            .await;
        let r = t.unclip(r);
        let detail = match &r {
            Ok(v) if read_only => format!("{} statements rolled back (read-only)", v.len()),
            Ok(v) => format!("{} statements committed", v.len()),
            Err(_) => String::new(),
        };
        call.pg_event(ev, &r, detail);
        r
    }
}

/// Names the failing statement of a transaction.
fn prefix(e: PgError, i: usize, n: usize) -> PgError {
    map_message(e, |m| format!("statement {} of {n}: {m}", i + 1))
}

impl Host for StoreState {
    async fn query(&mut self, stmt: Statement) -> Result<Rows, PgError> {
        match self.call.pg_query(stmt).await {
            Ok(r) => Ok(self.call.scrub_rows(r)),
            Err(e) => Err(self.call.scrub_err(e)),
        }
    }

    async fn transaction(&mut self, stmts: Vec<Statement>) -> Result<Vec<Rows>, PgError> {
        match self.call.pg_transaction(stmts).await {
            Ok(v) => Ok(v.into_iter().map(|r| self.call.scrub_rows(r)).collect()),
            Err(e) => Err(self.call.scrub_err(e)),
        }
    }

    async fn copy_out(
        &mut self,
        stmt: Statement,
        format: CopyFormat,
    ) -> Result<CopyResult, PgError> {
        self.call
            .pg_copy_out(stmt, format)
            .await
            .map_err(|e| self.call.scrub_err(e))
    }

    async fn copy_in(&mut self, req: CopyInRequest) -> Result<CopyInResult, PgError> {
        self.call
            .pg_copy_in(req)
            .await
            .map_err(|e| self.call.scrub_err(e))
    }
}
