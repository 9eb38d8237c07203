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
//!   the prepared statement (`$1…$n`), never interpolated: see [`param`] for the mapping.
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
//! - **Rows to JSON** (see [`cell`]): bool, ints, floats (NaN/±Infinity as strings), numeric as
//!   an exact decimal string, text types, json/jsonb as JSON, uuid, timestamptz as RFC 3339,
//!   timestamp/date/time as ISO 8601 text, bytea as base64, arrays of those as JSON arrays,
//!   NULL as null. Any other type gives its binary value as text when that is printable UTF-8
//!   (enums, citext, …) and else as `\x` hex: cast it with `::text` in SQL for the server's text.
//! - **COPY OUT** streams from the server through the secret scrubber into an artifact; the
//!   data never enters plugin memory. An export whose scrubbed bytes pass `[limits]
//!   artifact_bytes` fails with advice and leaves no artifact.
//! - **Lost connections** (the server shut down or restarted mid-call, the link broke) fail the
//!   call saying so and to retry; the dead connection is closed, never returned to the pool.
//! - **Errors** the server raises come back as `sql-error` with its message (plus detail and
//!   hint), SQLSTATE and 1-based position in the caller's SQL.
//!
//! Connections use no TLS yet: profiles reach servers on trusted networks (loopback, VPN).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::{BufMut, BytesMut};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use futures::StreamExt;
use futures::future::BoxFuture;
use postgres_types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use serde_json::{Map, Number, Value, json};
use sha2::{Digest, Sha256};
use tokio_postgres::error::ErrorPosition;
use tokio_postgres::{NoTls, Row};

use super::infra::host::postgres::{
    CopyFormat, CopyResult, Host, PgError, Rows, SqlError, Statement,
};
use super::infra::host::types::CapError;
use super::types::error_chain;
use super::{CallCtx, CapUse, StoreState};
use crate::artifacts::{ArtifactMeta, Measured, ScrubbedSink};
use crate::profiles::{PostgresProfile, Profile};
use crate::redact::{MIN_SECRET_CHARS, REDACTED};

mod read_only;

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

/// A pooled connection lent to one call. Dropped without [`Lease::release`] (the call was
/// abandoned or failed at the connection), it is closed rather than returned in an unknown state.
struct Lease(Option<Object>);

impl Lease {
    /// Resets the session, then returns the connection to the pool; closes it if the reset fails.
    async fn release(mut self) {
        let Some(client) = self.0.take() else { return };
        match tokio::time::timeout(CONNECT_TIMEOUT, client.batch_execute(RESET_SESSION)).await {
            Ok(Ok(())) => drop(client),
            Ok(Err(e)) => {
                tracing::debug!("postgres: closing a connection whose reset failed: {e}");
                drop(Object::take(client));
            }
            Err(_) => drop(Object::take(client)),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(Object::take(client));
        }
    }
}

/// Postgres connection pools: per profile, one for read-write calls and one for read-only calls.
#[derive(Default)]
pub struct Pools {
    by_profile: Mutex<HashMap<(String, bool), (String, Pool)>>,
}

impl Pools {
    /// The pool of profile `name` for read-only or read-write calls, made on first use or when
    /// the profile's settings changed. A read-only pool's sessions start with
    /// `default_transaction_read_only = on`, which `RESET ALL` returns to: should a statement
    /// ever leave the host's read-only transaction, what it runs next is still read-only.
    fn get(
        &self,
        name: &str,
        p: &PostgresProfile,
        password: Option<&str>,
        read_only: bool,
    ) -> Result<Pool, CapError> {
        let mut hash = Sha256::new();
        for part in [&p.host, &p.port.to_string(), &p.user, &p.database] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        hash.update(password.unwrap_or("").as_bytes());
        let key = hex::encode(hash.finalize());
        let mut map = self.by_profile.lock().unwrap_or_else(|e| e.into_inner());
        let slot = (name.to_string(), read_only);
        if let Some((k, pool)) = map.get(&slot)
            && *k == key
        {
            return Ok(pool.clone());
        }
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&p.host)
            .port(p.port)
            .user(&p.user)
            .dbname(&p.database)
            .application_name("infra")
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true);
        if read_only {
            cfg.options("-c default_transaction_read_only=on");
        }
        if let Some(pw) = password {
            cfg.password(pw);
        }
        let manager = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| CapError::Failed(format!("cannot build the pool of '{name}': {e}")))?;
        if let Some((_, old)) = map.insert(slot, (key, pool.clone())) {
            old.close();
        }
        Ok(pool)
    }

    /// `(connections open, connections idle)` of a profile's pools, when it has any.
    pub fn status(&self, name: &str) -> Option<(usize, usize)> {
        let map = self.by_profile.lock().unwrap_or_else(|e| e.into_inner());
        [false, true]
            .iter()
            .filter_map(|ro| map.get(&(name.to_string(), *ro)))
            .map(|(_, pool)| {
                let s = pool.status();
                (s.size, s.available)
            })
            .reduce(|a, b| (a.0 + b.0, a.1 + b.1))
    }
}

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

/// How a password reads once reflected inside a JSON string (rows, jsonl exports: `"`, `\` and
/// control characters escaped) or a quoted CSV field (csv exports: `"` doubled), when that
/// differs from the password itself: the scrubber matches bytes, so each form is a secret too.
fn quoted_forms(pw: &str) -> Vec<String> {
    let quoted = serde_json::to_string(pw).unwrap_or_default();
    let json = quoted
        .get(1..quoted.len().saturating_sub(1))
        .unwrap_or_default()
        .to_string();
    let csv = pw.replace('"', "\"\"");
    let mut forms: Vec<String> = vec![json, csv];
    forms.retain(|f| f != pw);
    forms.dedup();
    forms
}

/// The server clips what it quotes: values in "Failing row contains (…)" to 64 bytes followed by
/// `...`, identifiers to 63 bytes. A password clipped so is no longer the secret the scrubber
/// matches, so a prefix of it (at least [`MIN_SECRET_CHARS`] long) is redacted where a clipped
/// text ends: before `...`, before a closing quote (`"`, or `\"` inside JSON text) or at the end.
fn unclip<'a>(text: &'a str, pw: &str) -> Cow<'a, str> {
    let head = match pw.char_indices().nth(MIN_SECRET_CHARS) {
        Some((i, _)) => &pw[..i],
        None => return Cow::Borrowed(text),
    };
    let ends_clip = |rest: &str| {
        rest.is_empty()
            || rest.starts_with("...")
            || rest.starts_with('"')
            || rest.starts_with("\\\"")
    };
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for start in memchr::memmem::find_iter(text.as_bytes(), head.as_bytes()) {
        let rest = &text[start..];
        // The longest prefix of the password here, then every shorter one down to the head.
        let common = rest
            .char_indices()
            .zip(pw.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((i, c), _)| i + c.len_utf8());
        let clipped = (head.len()..=common)
            .rev()
            .filter(|&k| pw.is_char_boundary(k) && k < pw.len())
            .find(|&k| ends_clip(&rest[k..]));
        if let Some(k) = clipped
            && spans.last().is_none_or(|&(_, e)| e <= start)
        {
            spans.push((start, start + k));
        }
    }
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (s, e) in spans {
        out.push_str(&text[at..s]);
        out.push_str(REDACTED);
        at = e;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// A result whose text [`Target::unclip`] goes over.
trait Unclip {
    fn map_text(self, f: &impl Fn(String) -> String) -> Self;
}

impl Unclip for Rows {
    fn map_text(self, f: &impl Fn(String) -> String) -> Self {
        Rows {
            columns_json: f(self.columns_json),
            rows_json: f(self.rows_json),
            ..self
        }
    }
}

impl Unclip for Vec<Rows> {
    fn map_text(self, f: &impl Fn(String) -> String) -> Self {
        self.into_iter().map(|r| r.map_text(f)).collect()
    }
}

impl Unclip for CopyResult {
    fn map_text(self, _: &impl Fn(String) -> String) -> Self {
        self
    }
}

/// Applies `f` to an error's message, keeping its kind, SQLSTATE and position.
fn map_message(e: PgError, f: impl Fn(String) -> String) -> PgError {
    match e {
        PgError::Sql(s) => PgError::Sql(SqlError {
            message: f(s.message),
            ..s
        }),
        PgError::Cap(c) => PgError::Cap(match c {
            CapError::Denied(m) => CapError::Denied(f(m)),
            CapError::NotFound(m) => CapError::NotFound(f(m)),
            CapError::Invalid(m) => CapError::Invalid(f(m)),
            CapError::Timeout(m) => CapError::Timeout(f(m)),
            CapError::Failed(m) => CapError::Failed(f(m)),
        }),
    }
}

/// Parses `params-json`: empty text or a JSON array.
fn parse_params(text: &str) -> Result<Vec<Value>, PgError> {
    if text.trim().is_empty() {
        return Ok(vec![]);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(a)) => Ok(a),
        Ok(_) => Err(invalid(
            "params: must be a JSON array, one value per $n placeholder",
        )),
        Err(e) => Err(invalid(format!("params: not JSON: {e}"))),
    }
}

/// The parameters converted to the statement's types.
fn bind_params(st: &tokio_postgres::Statement, values: &[Value]) -> Result<Vec<Param>, PgError> {
    let types = st.params();
    if types.len() != values.len() {
        return Err(invalid(format!(
            "params: the statement has {} placeholder(s) ($1…${}) but {} value(s) were given",
            types.len(),
            types.len(),
            values.len()
        )));
    }
    types
        .iter()
        .zip(values)
        .enumerate()
        .map(|(i, (ty, v))| {
            param(ty, v).map_err(|why| {
                invalid(format!(
                    "params[{i}] (${}, type {}): {why}",
                    i + 1,
                    ty.name()
                ))
            })
        })
        .collect()
}

/// A parameter value of the type the statement expects.
#[derive(Debug)]
enum Param {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    U32(u32),
    F32(f32),
    F64(f64),
    /// A validated decimal, encoded to numeric's binary form.
    Numeric(String),
    Text(String),
    Json(Value),
    Uuid(uuid::Uuid),
    TimestampTz(time::OffsetDateTime),
    Timestamp(time::PrimitiveDateTime),
    Date(time::Date),
    Time(time::Time),
    Bytes(Vec<u8>),
    TextArray(Vec<Option<String>>),
    I32Array(Vec<Option<i32>>),
    I64Array(Vec<Option<i64>>),
    /// A type infra has no encoder for: its text, sent as the binary value (right for enums
    /// and text-like extension types; the server refuses others with SQLSTATE 22P03).
    Raw(String),
}

impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Null => Ok(IsNull::Yes),
            Param::Bool(v) => v.to_sql(ty, out),
            Param::I16(v) => v.to_sql(ty, out),
            Param::I32(v) => v.to_sql(ty, out),
            Param::I64(v) => v.to_sql(ty, out),
            Param::U32(v) => v.to_sql(ty, out),
            Param::F32(v) => v.to_sql(ty, out),
            Param::F64(v) => v.to_sql(ty, out),
            Param::Numeric(s) => {
                encode_numeric(s, out)?;
                Ok(IsNull::No)
            }
            Param::Text(v) => v.to_sql(ty, out),
            Param::Json(v) => v.to_sql(ty, out),
            Param::Uuid(v) => v.to_sql(ty, out),
            Param::TimestampTz(v) => v.to_sql(ty, out),
            Param::Timestamp(v) => v.to_sql(ty, out),
            Param::Date(v) => v.to_sql(ty, out),
            Param::Time(v) => v.to_sql(ty, out),
            Param::Bytes(v) => v.to_sql(ty, out),
            Param::TextArray(v) => v.to_sql(ty, out),
            Param::I32Array(v) => v.to_sql(ty, out),
            Param::I64Array(v) => v.to_sql(ty, out),
            Param::Raw(s) => {
                out.put_slice(s.as_bytes());
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_: &Type) -> bool {
        // The variant was chosen from the statement's type in `param`.
        true
    }

    to_sql_checked!();
}

fn int_of(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| format!("{n} is not an integer")),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("'{s}' is not an integer")),
        other => Err(format!("expected an integer, got {other}")),
    }
}

fn float_of(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("{n} is not a number")),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("'{s}' is not a number")),
        other => Err(format!("expected a number, got {other}")),
    }
}

fn str_of(v: &Value) -> Result<&str, String> {
    v.as_str()
        .ok_or_else(|| format!("expected a string, got {v}"))
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn parse_timestamp(s: &str) -> Result<time::PrimitiveDateTime, String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        let utc = t.to_offset(time::UtcOffset::UTC);
        return Ok(time::PrimitiveDateTime::new(utc.date(), utc.time()));
    }
    let fmt = time::format_description::parse_borrowed::<1>(
        "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]",
    )
    .map_err(|e| e.to_string())?;
    time::PrimitiveDateTime::parse(&s.replacen('T', " ", 1), &fmt).map_err(|e| {
        format!("'{s}' is not a timestamp ({e}); write it as 2024-01-31 12:00:00[.ffffff]")
    })
}

/// Converts one JSON value to the parameter type `ty`.
fn param(ty: &Type, v: &Value) -> Result<Param, String> {
    use time::format_description::well_known::Rfc3339;
    if v.is_null() {
        return Ok(Param::Null);
    }
    let range = |n: i64, what: &str| format!("{n} is out of range for {what}");
    Ok(match *ty {
        Type::BOOL => match v {
            Value::Bool(b) => Param::Bool(*b),
            Value::String(s) if matches!(s.as_str(), "true" | "t" | "false" | "f") => {
                Param::Bool(s.starts_with('t'))
            }
            other => return Err(format!("expected true or false, got {other}")),
        },
        Type::INT2 => {
            let n = int_of(v)?;
            Param::I16(i16::try_from(n).map_err(|_| range(n, "int2"))?)
        }
        Type::INT4 => {
            let n = int_of(v)?;
            Param::I32(i32::try_from(n).map_err(|_| range(n, "int4"))?)
        }
        Type::INT8 => Param::I64(int_of(v)?),
        Type::OID => {
            let n = int_of(v)?;
            Param::U32(u32::try_from(n).map_err(|_| range(n, "oid"))?)
        }
        Type::FLOAT4 => Param::F32(float_of(v)? as f32),
        Type::FLOAT8 => Param::F64(float_of(v)?),
        Type::NUMERIC => {
            let text = match v {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.trim().to_string(),
                other => {
                    return Err(format!(
                        "expected a number or a decimal string, got {other}"
                    ));
                }
            };
            encode_numeric(&text, &mut BytesMut::new())?;
            Param::Numeric(text)
        }
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            Param::Text(text_of(v))
        }
        Type::JSON | Type::JSONB => Param::Json(v.clone()),
        Type::UUID => {
            let s = str_of(v)?;
            Param::Uuid(uuid::Uuid::parse_str(s).map_err(|e| format!("'{s}' is not a UUID: {e}"))?)
        }
        Type::TIMESTAMPTZ => {
            let s = str_of(v)?;
            Param::TimestampTz(time::OffsetDateTime::parse(s, &Rfc3339).map_err(|e| {
                format!("'{s}' is not an RFC 3339 time ({e}); write it as 2024-01-31T12:00:00Z")
            })?)
        }
        Type::TIMESTAMP => Param::Timestamp(parse_timestamp(str_of(v)?)?),
        Type::DATE => {
            let s = str_of(v)?;
            let fmt = time::format_description::parse_borrowed::<1>("[year]-[month]-[day]")
                .map_err(|e| e.to_string())?;
            Param::Date(
                time::Date::parse(s, &fmt)
                    .map_err(|e| format!("'{s}' is not a date ({e}); write it as 2024-01-31"))?,
            )
        }
        Type::TIME => {
            let s = str_of(v)?;
            let fmt = time::format_description::parse_borrowed::<1>(
                "[hour]:[minute]:[second][optional [.[subsecond]]]",
            )
            .map_err(|e| e.to_string())?;
            Param::Time(
                time::Time::parse(s, &fmt)
                    .map_err(|e| format!("'{s}' is not a time ({e}); write it as 12:00:00"))?,
            )
        }
        Type::BYTEA => {
            let s = str_of(v)?;
            Param::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| format!("bytea parameters are base64: {e}"))?,
            )
        }
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY => {
            let a = v.as_array().ok_or("expected an array of strings")?;
            Param::TextArray(
                a.iter()
                    .map(|x| (!x.is_null()).then(|| text_of(x)))
                    .collect(),
            )
        }
        Type::INT4_ARRAY => {
            let a = v.as_array().ok_or("expected an array of integers")?;
            let mut out = Vec::with_capacity(a.len());
            for x in a {
                out.push(match x {
                    Value::Null => None,
                    x => {
                        let n = int_of(x)?;
                        Some(i32::try_from(n).map_err(|_| range(n, "int4"))?)
                    }
                });
            }
            Param::I32Array(out)
        }
        Type::INT8_ARRAY => {
            let a = v.as_array().ok_or("expected an array of integers")?;
            let mut out = Vec::with_capacity(a.len());
            for x in a {
                out.push(if x.is_null() { None } else { Some(int_of(x)?) });
            }
            Param::I64Array(out)
        }
        _ => match v {
            Value::String(s) => Param::Raw(s.clone()),
            other => {
                return Err(format!(
                    "infra binds this type only from a string (sent as its text), got {other}; \
                     or cast the placeholder in SQL, e.g. $1::text::{}",
                    ty.name()
                ));
            }
        },
    })
}

/// Encodes a decimal (`-12.50`, `1e3`, `NaN`) in numeric's binary form.
fn encode_numeric(text: &str, out: &mut BytesMut) -> Result<(), String> {
    let bad = || format!("'{text}' is not a decimal number");
    if text.eq_ignore_ascii_case("nan") {
        out.put_i16(0);
        out.put_i16(0);
        out.put_u16(0xC000);
        out.put_u16(0);
        return Ok(());
    }
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().map_err(|_| bad())?),
        None => (body, 0),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((a, b)) => (a, b),
        None => (mantissa, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
        || exp.abs() > 1000
    {
        return Err(bad());
    }
    // All digits, and where the decimal point falls among them.
    let digits: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes())
        .map(|b| b - b'0')
        .collect();
    let point = int_part.len() as i64 + i64::from(exp);
    let dscale = (digits.len() as i64 - point).max(0);
    // Align to base-10000 groups: pad so the point sits on a group boundary.
    let lead = (4 - point.rem_euclid(4)) % 4;
    let mut padded = vec![0u8; lead as usize];
    padded.extend(&digits);
    while !padded.len().is_multiple_of(4) {
        padded.push(0);
    }
    let int_groups = (point + lead) / 4;
    let mut groups: Vec<i16> = padded
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |a, d| a * 10 + i16::from(*d)))
        .collect();
    let mut weight = int_groups - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let weight = i16::try_from(weight).map_err(|_| bad())?;
    out.put_i16(groups.len() as i16);
    out.put_i16(weight);
    out.put_u16(if neg && !groups.is_empty() { 0x4000 } else { 0 });
    out.put_u16(u16::try_from(dscale).map_err(|_| bad())?);
    for g in groups {
        out.put_i16(g);
    }
    Ok(())
}

/// Decodes numeric's binary form to exact decimal text.
fn decode_numeric(raw: &[u8]) -> Option<String> {
    let word = |i: usize| -> Option<i16> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
    };
    let ndigits = word(0)? as usize;
    let weight = i64::from(word(1)?);
    let sign = word(2)? as u16;
    let dscale = word(3)? as u16 as usize;
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        _ => {}
    }
    let digits: Vec<i16> = (0..ndigits).map(|i| word(4 + i)).collect::<Option<_>>()?;
    let at = |i: i64| -> i16 {
        if i >= 0 && (i as usize) < digits.len() {
            digits[i as usize]
        } else {
            0
        }
    };
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                s.push_str(&at(i).to_string());
            } else {
                s.push_str(&format!("{:04}", at(i)));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut i = weight + 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", at(i)));
            i += 1;
        }
        frac.truncate(dscale);
        s.push('.');
        s.push_str(&frac);
    }
    Some(s)
}

/// Any value, as the server sent it (binary format).
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

fn float_value(f: f64) -> Value {
    match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None if f.is_nan() => json!("NaN"),
        None if f > 0.0 => json!("Infinity"),
        None => json!("-Infinity"),
    }
}

fn raw_value(ty: &Type, raw: &[u8]) -> Value {
    // ±infinity of the date/time types, which the time crate cannot hold.
    let infinite = match (ty, raw.len()) {
        (&Type::TIMESTAMP | &Type::TIMESTAMPTZ, 8) => {
            let v = i64::from_be_bytes(raw.try_into().unwrap_or_default());
            (v == i64::MAX || v == i64::MIN).then_some(v > 0)
        }
        (&Type::DATE, 4) => {
            let v = i32::from_be_bytes(raw.try_into().unwrap_or_default());
            (v == i32::MAX || v == i32::MIN).then_some(v > 0)
        }
        _ => None,
    };
    if let Some(pos) = infinite {
        return json!(if pos { "infinity" } else { "-infinity" });
    }
    match std::str::from_utf8(raw) {
        Ok(s) if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => json!(s),
        _ => json!(format!("\\x{}", hex::encode(raw))),
    }
}

/// One cell as JSON (the mapping is in the module docs).
fn cell(row: &Row, i: usize, ty: &Type) -> Value {
    fn opt<T, E>(r: Result<Option<T>, E>, f: impl FnOnce(T) -> Value) -> Result<Value, E> {
        r.map(|o| o.map_or(Value::Null, f))
    }
    fn arr<T>(v: Vec<Option<T>>, f: impl Fn(T) -> Value) -> Value {
        Value::Array(v.into_iter().map(|x| x.map_or(Value::Null, &f)).collect())
    }
    use time::format_description::well_known::Rfc3339;
    let iso = |s: String| json!(s);
    let r: Result<Value, tokio_postgres::Error> = match *ty {
        Type::BOOL => opt(row.try_get::<_, Option<bool>>(i), Value::Bool),
        Type::INT2 => opt(row.try_get::<_, Option<i16>>(i), |v| json!(v)),
        Type::INT4 => opt(row.try_get::<_, Option<i32>>(i), |v| json!(v)),
        Type::INT8 => opt(row.try_get::<_, Option<i64>>(i), |v| json!(v)),
        Type::OID => opt(row.try_get::<_, Option<u32>>(i), |v| json!(v)),
        Type::CHAR => opt(row.try_get::<_, Option<i8>>(i), |v| {
            json!((v as u8 as char).to_string())
        }),
        Type::FLOAT4 => opt(row.try_get::<_, Option<f32>>(i), |v| {
            float_value(f64::from(v))
        }),
        Type::FLOAT8 => opt(row.try_get::<_, Option<f64>>(i), float_value),
        Type::NUMERIC => opt(row.try_get::<_, Option<Raw>>(i), |r| {
            decode_numeric(r.0).map_or(Value::Null, Value::String)
        }),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            opt(row.try_get::<_, Option<String>>(i), Value::String)
        }
        Type::JSON | Type::JSONB => opt(row.try_get::<_, Option<Value>>(i), |v| v),
        Type::UUID => opt(row.try_get::<_, Option<uuid::Uuid>>(i), |v| {
            json!(v.to_string())
        }),
        Type::TIMESTAMPTZ => opt(row.try_get::<_, Option<time::OffsetDateTime>>(i), |v| {
            v.format(&Rfc3339).map_or(Value::Null, iso)
        }),
        Type::TIMESTAMP => opt(row.try_get::<_, Option<time::PrimitiveDateTime>>(i), |v| {
            let t = v.assume_utc().format(&Rfc3339).unwrap_or_default();
            // No offset: the server's local wall time, as stored.
            json!(t.trim_end_matches('Z'))
        }),
        Type::DATE => opt(row.try_get::<_, Option<time::Date>>(i), |v| {
            json!(v.to_string())
        }),
        Type::TIME => opt(row.try_get::<_, Option<time::Time>>(i), |v| {
            json!(v.to_string())
        }),
        Type::BYTEA => opt(row.try_get::<_, Option<Vec<u8>>>(i), |v| {
            json!(base64::engine::general_purpose::STANDARD.encode(v))
        }),
        Type::BOOL_ARRAY => opt(row.try_get::<_, Option<Vec<Option<bool>>>>(i), |v| {
            arr(v, Value::Bool)
        }),
        Type::INT2_ARRAY => opt(row.try_get::<_, Option<Vec<Option<i16>>>>(i), |v| {
            arr(v, |x| json!(x))
        }),
        Type::INT4_ARRAY => opt(row.try_get::<_, Option<Vec<Option<i32>>>>(i), |v| {
            arr(v, |x| json!(x))
        }),
        Type::INT8_ARRAY => opt(row.try_get::<_, Option<Vec<Option<i64>>>>(i), |v| {
            arr(v, |x| json!(x))
        }),
        Type::FLOAT8_ARRAY => opt(row.try_get::<_, Option<Vec<Option<f64>>>>(i), |v| {
            arr(v, float_value)
        }),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::NAME_ARRAY | Type::BPCHAR_ARRAY => {
            opt(row.try_get::<_, Option<Vec<Option<String>>>>(i), |v| {
                arr(v, Value::String)
            })
        }
        Type::JSONB_ARRAY | Type::JSON_ARRAY => {
            opt(row.try_get::<_, Option<Vec<Option<Value>>>>(i), |v| {
                arr(v, |x| x)
            })
        }
        _ => opt(row.try_get::<_, Option<Raw>>(i), |r| raw_value(ty, r.0)),
    };
    r.unwrap_or_else(|_| match row.try_get::<_, Option<Raw>>(i) {
        Ok(Some(r)) => raw_value(ty, r.0),
        _ => Value::Null,
    })
}

/// Column names made unique (a repeated name gets `_2`, `_3`…) and their type names.
fn columns(cols: &[tokio_postgres::Column]) -> (Vec<String>, Value) {
    let mut names: Vec<String> = Vec::with_capacity(cols.len());
    for c in cols {
        let mut name = c.name().to_string();
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{}_{n}", c.name());
            n += 1;
        }
        names.push(name);
    }
    let described = names
        .iter()
        .zip(cols)
        .map(|(n, c)| json!({"name": n, "type": c.type_().name()}))
        .collect();
    (names, Value::Array(described))
}

/// One row as a JSON object.
fn row_json(names: &[String], cols: &[tokio_postgres::Column], row: &Row) -> String {
    let mut obj = Map::with_capacity(names.len());
    for (i, (name, col)) in names.iter().zip(cols).enumerate() {
        obj.insert(name.clone(), cell(row, i, col.type_()));
    }
    Value::Object(obj).to_string()
}

/// Runs one prepared statement inside `tx`: rows through a capped portal, or a command.
///
/// Rows are kept while they fit both `max_rows` and `capture_bytes` of JSON (the policy's
/// `[limits] capture_bytes`, so an agent's `max_rows` cannot make the host hold more): the cut
/// falls between whole rows, so a secret in a cell is either whole, and scrubbed, or absent.
async fn run_in_tx(
    tx: &tokio_postgres::Transaction<'_>,
    st: &tokio_postgres::Statement,
    params: &[Param],
    max_rows: u32,
    capture_bytes: u64,
    label: &str,
) -> Result<Rows, PgError> {
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    let err = |e: tokio_postgres::Error| pg_err(&e, label, 0);
    if st.columns().is_empty() {
        let n = tx.execute(st, &refs).await.map_err(err)?;
        return Ok(Rows {
            columns_json: "[]".into(),
            rows_json: "[]".into(),
            truncated: false,
            affected: Some(n),
            total: None,
        });
    }
    let cap = max_rows.min(i32::MAX as u32 - 1) as i32;
    let capture = usize::try_from(capture_bytes).unwrap_or(usize::MAX);
    let (names, described) = columns(st.columns());
    let portal = tx.bind(st, &refs).await.map_err(err)?;
    let stream = tx.query_portal_raw(&portal, cap + 1).await.map_err(err)?;
    futures::pin_mut!(stream);
    let mut json = String::from("[");
    let mut kept: u64 = 0;
    let mut seen: u64 = 0;
    let mut full = false;
    while let Some(row) = stream.next().await {
        let row = row.map_err(err)?;
        seen += 1;
        // Past a cap the rest of this batch is only counted, never decoded.
        if full || kept == cap as u64 {
            continue;
        }
        let text = row_json(&names, st.columns(), &row);
        // The separating comma and the closing bracket count too.
        if json.len() + text.len() + 2 > capture {
            full = true;
            continue;
        }
        if kept > 0 {
            json.push(',');
        }
        json.push_str(&text);
        kept += 1;
    }
    json.push(']');
    let total = if seen > cap as u64 {
        let more = tx
            .query_portal_raw(&portal, COUNT_PAST_CAP)
            .await
            .map_err(err)?;
        futures::pin_mut!(more);
        let mut counted: u64 = 0;
        while let Some(r) = more.next().await {
            r.map_err(err)?;
            counted += 1;
        }
        (counted < COUNT_PAST_CAP as u64).then_some(seen + counted)
    } else {
        Some(seen)
    };
    Ok(Rows {
        columns_json: described.to_string(),
        rows_json: json,
        truncated: seen > kept,
        affected: None,
        total,
    })
}

/// Counts records in a COPY stream: newlines outside quotes.
struct RecordCounter {
    quote: Option<u8>,
    inside: bool,
    lines: u64,
}

impl RecordCounter {
    fn feed(&mut self, chunk: &[u8]) {
        let Some(q) = self.quote else {
            self.lines += memchr::memchr_iter(b'\n', chunk).count() as u64;
            return;
        };
        // Only quotes and newlines matter: jump between them rather than look at every byte.
        for i in memchr::memchr2_iter(q, b'\n', chunk) {
            if chunk[i] == q {
                self.inside = !self.inside;
            } else if !self.inside {
                self.lines += 1;
            }
        }
    }
}

fn rows_detail(r: &Rows) -> String {
    match r.affected {
        Some(n) => format!("{n} affected"),
        None => format!(
            "{} rows{}",
            r.total.map_or("?".to_string(), |t| t.to_string()),
            if r.truncated { " (truncated)" } else { "" }
        ),
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
                    let tx = client
                        .build_transaction()
                        .read_only(read_only)
                        .start()
                        .await
                        .map_err(err)?;
                    tx.batch_execute(&format!("SET LOCAL statement_timeout = {ms}"))
                        .await
                        .map_err(err)?;
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

    async fn pg_copy_out(
        &self,
        stmt: Statement,
        format: CopyFormat,
    ) -> Result<CopyResult, PgError> {
        let call = self;
        let t = call.pg_target(&stmt.profile, Some("an export always runs read-only"))?;
        read_only::check_export(&stmt.sql).map_err(invalid)?;
        call.require("artifacts", "copy-out")
            .map_err(|r| cap(CapError::Denied(r)))?;
        if !parse_params(&stmt.params_json)?.is_empty() {
            return Err(invalid(
                "params: COPY cannot bind parameters; export a query without $n placeholders",
            ));
        }
        let sql = stmt
            .sql
            .trim_end()
            .trim_end_matches(';')
            .trim_end()
            .to_string();
        let (prefix_sql, suffix, media_type, quote) = match format {
            CopyFormat::Csv => (
                "COPY (\n",
                "\n) TO STDOUT (FORMAT csv, HEADER)",
                "text/csv",
                Some(b'"'),
            ),
            // CSV framing with a quote and delimiter that JSON text never holds raw: each line
            // is the JSON as row_to_json wrote it, with no text-format escaping.
            CopyFormat::Jsonl => (
                "COPY (SELECT row_to_json(q) FROM (\n",
                "\n) AS q) TO STDOUT (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')",
                "application/x-ndjson",
                None,
            ),
        };
        let ms = call.pg_budget(stmt.timeout_ms);
        let label = t.label.clone();
        let shared = call.shared.clone();
        let limit = shared.policy.limits().artifact_bytes;
        let meta = ArtifactMeta {
            media_type: media_type.into(),
            tool: call.tool.clone(),
            trace_id: call.trace_id.clone(),
            description: format!(
                "COPY export ({}) from {}",
                if quote.is_some() { "csv" } else { "jsonl" },
                t.label
            ),
        };
        let ev = call.event("postgres", &t.label);
        let r = call
            .with_client(&t, ms, move |client| {
                Box::pin(async move {
                    let err = |e: tokio_postgres::Error| pg_err(&e, &label, 0);
                    let tx = client
                        .build_transaction()
                        .read_only(true)
                        .start()
                        .await
                        .map_err(err)?;
                    tx.batch_execute(&format!("SET LOCAL statement_timeout = {ms}"))
                        .await
                        .map_err(err)?;
                    // Prepared alone first: one statement that returns rows, and errors point
                    // into the caller's SQL.
                    let st = tx.prepare(&sql).await.map_err(err)?;
                    if st.columns().is_empty() {
                        return Err(invalid(
                            "sql: export needs a query that returns rows (SELECT, VALUES, TABLE …)",
                        ));
                    }
                    drop(st);
                    let wrapped = format!("{prefix_sql}{sql}{suffix}");
                    let offset = prefix_sql.chars().count() as u32;
                    let stream = tx
                        .copy_out(wrapped.as_str())
                        .await
                        .map_err(|e| pg_err(&e, &label, offset))?;
                    futures::pin_mut!(stream);
                    // Measured on scrubbed bytes: a secret is replaced before any cut could
                    // split it. Past the limit the export fails and the partial artifact is
                    // removed (the sink is dropped unfinished).
                    let mut sink = ScrubbedSink::open(
                        &shared.artifacts,
                        &shared.redactor,
                        meta,
                        limit,
                        Measured::Stored,
                    )
                    .await
                    .map_err(|e| cap(CapError::Failed(format!("{e:#}"))))?;
                    let too_large = || {
                        format!(
                            "the export passed {limit} bytes, the most one artifact may \
                             hold ([limits] artifact_bytes of the policy); export fewer rows \
                             or columns (WHERE, LIMIT, a column list), or ask the operator \
                             to raise the limit"
                        )
                    };
                    let mut counter = RecordCounter {
                        quote,
                        inside: false,
                        lines: 0,
                    };
                    while let Some(chunk) = stream.next().await {
                        let chunk = chunk.map_err(|e| pg_err(&e, &label, offset))?;
                        counter.feed(&chunk);
                        sink.write(&chunk)
                            .await
                            .map_err(|e| cap(CapError::from_sink(e, too_large)))?;
                    }
                    let info = sink
                        .finish()
                        .await
                        .map_err(|e| cap(CapError::from_sink(e, too_large)))?;
                    tx.rollback().await.map_err(err)?;
                    let rows = counter.lines - u64::from(quote.is_some() && counter.lines > 0);
                    Ok(CopyResult {
                        artifact: info.into(),
                        rows,
                    })
                })
            })
            .await;
        let r = t.unclip(r);
        let detail = match &r {
            Ok(c) => format!("{} rows to {}", c.rows, c.artifact.uri),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(text: &str) -> String {
        let mut b = BytesMut::new();
        encode_numeric(text, &mut b).unwrap();
        decode_numeric(&b).unwrap()
    }

    #[test]
    fn numeric_encodes_and_decodes_exactly() {
        for (input, want) in [
            ("0", "0"),
            ("1", "1"),
            ("-12.50", "-12.50"),
            ("12345678.000123", "12345678.000123"),
            ("0.0001", "0.0001"),
            ("0.00001", "0.00001"),
            ("10000", "10000"),
            ("1e3", "1000"),
            ("1.5e-3", "0.0015"),
            ("NaN", "NaN"),
            ("99999999999999999999.99", "99999999999999999999.99"),
        ] {
            assert_eq!(roundtrip(input), want, "{input}");
        }
        assert!(encode_numeric("12a", &mut BytesMut::new()).is_err());
        assert!(encode_numeric("", &mut BytesMut::new()).is_err());
    }

    #[test]
    fn quoted_forms_are_how_json_and_csv_write_a_password() {
        assert!(quoted_forms("plain-secret").is_empty());
        assert_eq!(
            quoted_forms("a\"b\\c\n"),
            vec!["a\\\"b\\\\c\\n".to_string(), "a\"\"b\\c\n".to_string()]
        );
    }

    #[test]
    fn what_the_server_clipped_of_a_password_is_redacted() {
        let pw = "pgcanary-0123456789";
        for (text, want) in [
            (
                "Failing row contains (xxxxpgcanary-0123..., null).",
                "Failing row contains (xxxx[REDACTED]..., null).",
            ),
            (
                r#"[{"name":"xxpgcanary-01"}]"#,
                r#"[{"name":"xx[REDACTED]"}]"#,
            ),
            (r#"{\"k\":\"xpgca\"}"#, r#"{\"k\":\"x[REDACTED]\"}"#),
            ("ends in pgcanary-0", "ends in [REDACTED]"),
            ("pgcanary is a word", "pgcanary is a word"),
            ("pgc...", "pgc..."),
            (
                "the whole pgcanary-0123456789 is the scrubber's",
                "the whole pgcanary-0123456789 is the scrubber's",
            ),
        ] {
            assert_eq!(unclip(text, pw), want, "{text}");
        }
        assert_eq!(unclip("abc...", "abcd"), "abc...");
    }

    #[test]
    fn csv_records_are_counted_outside_quotes() {
        let mut c = RecordCounter {
            quote: Some(b'"'),
            inside: false,
            lines: 0,
        };
        c.feed(b"a,b\n1,\"x\ny\"\n2,\"");
        c.feed(b"\"\"z\"\n");
        assert_eq!(c.lines, 3);
    }
}
