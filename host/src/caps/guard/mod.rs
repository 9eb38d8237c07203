//! `infra:host/guard`: approvals for writes (see `wit/host/guard.wit`). A write is approved only
//! when, in this order: the call's arguments say `"apply": true`; now is inside a change window
//! of `[plugin.<name>.guard] windows`; for kind `kubernetes`, the profile is granted and every
//! namespace matches `[plugin.<name>.kubernetes] write_namespaces`; the target's lock is free
//! (or stale, and taken over); and a protected target is approved by the user through MCP
//! elicitation. Approvals and locks live in the call's [`CallGuard`], which the Store owns, so
//! they end with the call whatever way it ends (result, trap, timeout, cancellation).
//!
//! Every refusal, lock taken, taken over or released, and approval is one `guard` event in the
//! audit record, target `<kind>:<target>`.

pub mod elicit;
pub mod lock;
mod protected;
pub mod window;
pub mod write;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use self::lock::{Holder, Lock, Taken};
use super::infra::host::guard::{Approval, Host, WriteIntent};
use super::infra::host::types::CapError;
use super::{CallCtx, CapEvent, StoreState, Verdict};
use crate::tool::{Answer, Ask};

/// The capability's name, as events and grants spell it.
const CAP: &str = "guard";
/// Kept back from the call's deadline when waiting for the user, so the tool can still answer.
const ASK_MARGIN: Duration = Duration::from_secs(2);

/// What the guard knows of one call and what it holds for it.
#[derive(Default)]
pub struct CallGuard {
    /// The call's arguments said `"apply": true`.
    apply: bool,
    /// How to ask the user, when the front can.
    ask: Option<Arc<dyn Ask>>,
    /// Locks held, each with the approvals granted under it; released when dropped.
    held: Mutex<Vec<Held>>,
}

impl CallGuard {
    /// The guard of a call whose arguments are `args`, from a front that asks the user through
    /// `ask` (when it can).
    pub fn new(args: &serde_json::Value, ask: Option<Arc<dyn Ask>>) -> Self {
        CallGuard {
            apply: args.get("apply") == Some(&serde_json::Value::Bool(true)),
            ask,
            held: Mutex::default(),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Vec<Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the call holds an approval for a `kind` write to `target`, whatever namespaces.
    pub fn holds(&self, kind: &str, target: &str) -> bool {
        self.held()
            .iter()
            .any(|h| h.kind == kind && h.target == target && !h.approvals.is_empty())
    }

    /// Whether the call holds an approval for a `kind` write to `target` covering namespace `ns`.
    pub fn covers(&self, kind: &str, target: &str, ns: &str) -> bool {
        self.held().iter().any(|h| {
            h.kind == kind
                && h.target == target
                && h.approvals.iter().any(|a| a.iter().any(|n| n == ns))
        })
    }
}

/// A lock the call holds, with the namespaces of each approval granted under it. Dropped, it
/// releases the lock and records that.
struct Held {
    kind: String,
    target: String,
    lock: Option<Lock>,
    name: String,
    since: Instant,
    approvals: Vec<Vec<String>>,
    events: Arc<Mutex<Vec<CapEvent>>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(mut lock) = self.lock.take() else {
            return;
        };
        let detail = match lock.release() {
            Ok(true) => format!(
                "lock {} released after {} ms",
                self.name,
                self.since.elapsed().as_millis()
            ),
            Ok(false) => format!(
                "lock {} was no longer ours at release (it outlived lock_ttl_secs and was taken over)",
                self.name
            ),
            Err(e) => format!(
                "lock {} not released ({e}); it expires by itself",
                self.name
            ),
        };
        super::call::push_event(
            &mut self.events.lock().unwrap_or_else(|p| p.into_inner()),
            CapEvent {
                cap: CAP.into(),
                target: format!("{}:{}", self.kind, self.target),
                decision: Verdict::Allow,
                reason: None,
                duration_ms: self.since.elapsed().as_millis() as u64,
                detail: Some(detail),
            },
        );
    }
}

impl CallCtx {
    /// Approves a write, or says why not (see the module doc for the order of the checks).
    pub async fn guard_approve(&self, intent: WriteIntent) -> Result<Approval, CapError> {
        let target = format!("{}:{}", intent.kind, intent.target);
        self.require(CAP, &target).map_err(CapError::Denied)?;
        check_intent(&intent)?;
        let policy = self.shared.policy.clone();
        if !self.guard.apply {
            return Err(self.deny(CAP, &target, format!(
                "apply: this call would change {} '{}', and writes need \"apply\": true in the call's arguments; without it the tool answers with the plan; call again with apply: true after the user has reviewed it",
                intent.kind, intent.target
            )));
        }
        let grant = policy.guard(&self.plugin).ok_or_else(|| {
            CapError::Denied(format!("plugin '{}' has no guard grant", self.plugin))
        })?;
        let now = OffsetDateTime::now_utc();
        if !window::open(&grant.windows, now) {
            let listed: Vec<&str> = grant.windows.iter().map(window::Window::as_str).collect();
            let next = match window::next_opening(&grant.windows, now) {
                Some((t, w)) => format!("the next opens {} ({w})", window::show(t)),
                None => "none opens in the next week".into(),
            };
            return Err(self.deny(CAP, &target, format!(
                "policy: now ({}) is outside the change windows of plugin '{}' ({}); {next}; call again then, or ask the operator to change windows under [plugin.{}.guard] in {}",
                window::show(now),
                self.plugin,
                listed.join("; "),
                self.plugin,
                policy.edit_target()
            )));
        }
        if intent.kind == "kubernetes" {
            self.decide(
                CAP,
                &target,
                policy.check_profile(&self.plugin, "http", &intent.target),
            )
            .map_err(CapError::Denied)?;
            for ns in &intent.namespaces {
                self.decide(CAP, &target, policy.check_write_namespace(&self.plugin, ns))
                    .map_err(CapError::Denied)?;
            }
        }
        let lock_name = self.hold_lock(&intent, grant.lock_ttl_secs, &target)?;
        let by = match protected::is_protected(&self.shared, &intent.kind, &intent.target) {
            false => "policy",
            true => match self.ask_user(&intent).await {
                Ok(()) => "user",
                Err(reason) => {
                    self.drop_unused(&intent);
                    return Err(self.deny(CAP, &target, reason));
                }
            },
        };
        let id = format!("a-{:016x}", rand::random::<u64>());
        if let Some(h) = self
            .guard
            .held()
            .iter_mut()
            .find(|h| h.kind == intent.kind && h.target == intent.target)
        {
            h.approvals.push(intent.namespaces.clone());
        }
        let namespaces = match intent.namespaces.is_empty() {
            true => String::new(),
            false => format!(", namespaces [{}]", intent.namespaces.join(", ")),
        };
        self.event(CAP, &target).ok(format!(
            "approved by {by} ({id}{namespaces}), lock {lock_name}"
        ));
        Ok(Approval {
            id,
            approved_by: by.into(),
            lock: lock_name,
        })
    }

    /// Takes the target's lock for this call (or finds it already held by this call); returns
    /// its name. A live holder elsewhere is a refusal naming it.
    fn hold_lock(&self, intent: &WriteIntent, ttl: u64, target: &str) -> Result<String, CapError> {
        if let Some(h) = self
            .guard
            .held()
            .iter()
            .find(|h| h.kind == intent.kind && h.target == intent.target)
        {
            return Ok(h.name.clone());
        }
        let now = lock::now();
        let holder = Holder {
            id: format!("l-{:016x}", rand::random::<u64>()),
            kind: intent.kind.clone(),
            target: intent.target.clone(),
            trace_id: self.trace_id.clone(),
            plugin: self.plugin.clone(),
            tool: self.tool.clone(),
            pid: std::process::id(),
            host: lock::host_name(),
            started: now,
            expires: now + ttl,
        };
        let taken = self.shared.locks.take(&holder).map_err(|e| {
            CapError::Failed(format!(
                "guard: cannot take the lock of {target} under {}: {e}; check that the state directory is writable by this user",
                self.shared.locks.dir().display()
            ))
        })?;
        let (lock, detail) = match taken {
            Taken::Held(other) => {
                return Err(self.deny(CAP, target, format!(
                    "{} '{}' is locked by {} since {}, until {} at the latest; another write to it is under way — wait for that call to end, then call again",
                    intent.kind,
                    intent.target,
                    other.describe(),
                    show_secs(other.started),
                    show_secs(other.expires),
                )));
            }
            Taken::Fresh(lock) => {
                let detail = format!("lock {} taken", lock.name());
                (lock, detail)
            }
            Taken::TakenOver(lock, previous, why) => {
                let from =
                    previous.map_or_else(|| "an unreadable holder".to_string(), |p| p.describe());
                let detail = format!("lock {} taken over from {from}: {why}", lock.name());
                (lock, detail)
            }
        };
        let name = lock.name();
        self.event(CAP, target).ok(detail);
        self.guard.held().push(Held {
            kind: intent.kind.clone(),
            target: intent.target.clone(),
            lock: Some(lock),
            name: name.clone(),
            since: Instant::now(),
            approvals: Vec::new(),
            events: self.events.clone(),
        });
        Ok(name)
    }

    /// Releases a lock this call took for an approval that was then refused.
    fn drop_unused(&self, intent: &WriteIntent) {
        let unused = {
            let mut held = self.guard.held();
            held.iter()
                .position(|h| {
                    h.kind == intent.kind && h.target == intent.target && h.approvals.is_empty()
                })
                .map(|i| held.remove(i))
        };
        drop(unused);
    }

    /// Asks the user to approve a write to a protected target; `Err` is the refusal's reason.
    async fn ask_user(&self, intent: &WriteIntent) -> Result<(), String> {
        let Some(ask) = self.guard.ask.clone() else {
            return elicit::verdict(
                Answer::Unsupported("this front has no way to ask, e.g. `infra call`".into()),
                &intent.target,
            );
        };
        let plan = self.shared.redactor.scrub_str(&intent.plan).into_owned();
        let req = elicit::Request {
            kind: &intent.kind,
            target: &intent.target,
            namespaces: &intent.namespaces,
            plan: &plan,
            plugin: &self.plugin,
            tool: &self.tool,
            trace_id: &self.trace_id,
        };
        let left = self
            .deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(ASK_MARGIN);
        let wait = left.min(elicit::ASK_TIMEOUT);
        let question = elicit::question(&req, wait);
        let answer = match tokio::time::timeout(wait, ask.ask(question)).await {
            Ok(a) => a,
            Err(_) => Answer::Failed(format!(
                "no answer within {} s{}",
                wait.as_secs(),
                if wait < elicit::ASK_TIMEOUT {
                    " (the call's timeout; pass a larger timeout_ms to give the user more time)"
                } else {
                    ""
                }
            )),
        };
        elicit::verdict(answer, &intent.target)
    }

    /// Whether this call may send a write through kubernetes profile `profile` into namespace
    /// `ns` ("" for cluster-scoped): it must hold an approval from `guard.approve` covering it.
    /// Records the refusal; the http capability calls this before any write leaves the host.
    pub fn require_kubernetes_write(&self, profile: &str, ns: &str) -> Result<(), String> {
        if self.guard.covers("kubernetes", profile, ns) {
            return Ok(());
        }
        let place = match ns {
            "" => "cluster-scoped objects".to_string(),
            ns => format!("namespace '{ns}'"),
        };
        let reason = format!(
            "kubernetes profile '{profile}': this call holds no approval to write to {place}; a write through a kubernetes profile needs guard.approve first (kind \"kubernetes\", target \"{profile}\", its namespaces), which needs apply: true, the change window, the granted namespaces and the lock — or send it as a dry run (dryRun=All)"
        );
        self.decide(
            CAP,
            &format!("kubernetes:{profile}"),
            crate::policy::Decision::Deny(reason.clone()),
        )?;
        Err(reason)
    }
}

impl CallCtx {
    /// Whether this call may run a Terraform command that changes infrastructure or state
    /// (`apply`, `destroy`, `import`, …) in working directory `target` (`<root>:<dir>`): it must
    /// hold an approval from `guard.approve` for kind `terraform` and that target — so the
    /// windows, the lock and a protected root's user approval cannot be skipped by a plugin
    /// that runs terraform itself. Records the refusal; `exec` calls this before the run.
    pub fn require_terraform_write(&self, target: &str, sub: &str) -> Result<(), String> {
        if self.guard.holds("terraform", target) {
            return Ok(());
        }
        let reason = format!(
            "terraform {sub} in '{target}': this call holds no approval to change that workspace; a Terraform write needs guard.approve first (kind \"terraform\", target \"{target}\"), which needs apply: true, the change window, the workspace's lock and, for a protected root, the user's approval — plan first, then apply the reviewed plan with apply: true"
        );
        self.decide(
            CAP,
            &format!("terraform:{target}"),
            crate::policy::Decision::Deny(reason.clone()),
        )?;
        Err(reason)
    }
}

/// Refuses a malformed intent, naming the field.
fn check_intent(i: &WriteIntent) -> Result<(), CapError> {
    let invalid = |m: String| Err(CapError::Invalid(m));
    if i.kind.is_empty()
        || i.kind.len() > 32
        || !i
            .kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return invalid(format!(
            "kind: '{}' is not a kind of target; write a lowercase word such as \"kubernetes\", \"terraform\", \"git\" or \"ssh\"",
            i.kind
        ));
    }
    if i.target.is_empty() || i.target.len() > 256 || i.target.chars().any(char::is_control) {
        return invalid(
            "target: give the profile, target or workspace name the write goes to (1 to 256 characters, no control characters)".into(),
        );
    }
    match i.kind.as_str() {
        "kubernetes" if i.namespaces.is_empty() => invalid(
            "namespaces: a kubernetes write names every namespace it touches (\"\" for cluster-scoped objects)".into(),
        ),
        "kubernetes" => match i.namespaces.iter().find(|n| !n.is_empty() && !is_dns_label(n)) {
            Some(bad) => invalid(format!(
                "namespaces: '{bad}' is not a namespace name (lowercase letters, digits and '-', at most 63)"
            )),
            None => Ok(()),
        },
        _ if !i.namespaces.is_empty() => invalid(format!(
            "namespaces: only kubernetes writes name namespaces; leave it empty for kind '{}'",
            i.kind
        )),
        _ => Ok(()),
    }
}

/// An RFC 1123 label, what a Kubernetes namespace name is.
fn is_dns_label(s: &str) -> bool {
    s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A lock file's epoch seconds as refusals show them.
fn show_secs(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .map_or_else(|| format!("{secs} (epoch seconds)"), window::show)
}

impl Host for StoreState {
    async fn approve(&mut self, intent: WriteIntent) -> Result<Approval, CapError> {
        self.call.guard_approve(intent).await
    }
}
