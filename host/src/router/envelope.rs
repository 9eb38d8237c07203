//! The common envelope every result and failure is wrapped in (`ok`, `tool`, `action`,
//! `duration_ms`, `trace_id`, `error`), and the end record of a call still under way.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};

use crate::audit::{AppendError, AuditEntry, AuditLog, Outcome};
use crate::caps::CapEvent;
use crate::error_kind::ErrorKind;
use crate::failure::Failure;
use crate::redact::Redactor;

/// Where a call's capability events collect as they happen.
pub type Events = Arc<Mutex<Vec<CapEvent>>>;

/// A capability event as the audit record holds it.
pub fn event_value(e: &CapEvent) -> Value {
    serde_json::to_value(e).unwrap_or(Value::Null)
}

/// What labels a call's envelope: the tool, the action, the trace and when it started.
pub struct Label<'a> {
    /// The tool's name.
    pub tool: &'a str,
    /// The action, for tools that have actions.
    pub action: &'a Option<String>,
    /// The call's trace id.
    pub trace_id: &'a str,
    /// When the call arrived.
    pub started: Instant,
}

/// The audit outcome of a failure of `kind`.
fn outcome_of(kind: ErrorKind) -> Outcome {
    match kind {
        ErrorKind::Denied => Outcome::Denied,
        ErrorKind::Timeout => Outcome::Timeout,
        _ => Outcome::Error,
    }
}

/// The common envelope around a tool's result or failure, scrubbed by `redactor`: with the
/// outcome and the error message for the audit record.
pub fn envelope(
    result: Result<Value, Failure>,
    label: &Label,
    redactor: &Redactor,
) -> (Value, Outcome, Option<String>) {
    let is_error = result.is_err();
    let (mut output, outcome, error) = match result {
        Ok(v) => (v, Outcome::Ok, None),
        Err(f) => {
            let mut err = json!({"kind": f.kind, "message": f.message});
            if let Some(field) = f.field {
                err["field"] = json!(field);
            }
            if let Some(d) = f.detail {
                err["detail"] = d;
            }
            let msg = f.message.clone();
            (json!({ "error": err }), outcome_of(f.kind), Some(msg))
        }
    };
    if !output.is_object() {
        output = json!({ "result": output });
    }
    let obj = output.as_object_mut().expect("made an object above");
    obj.insert("ok".into(), json!(!is_error));
    obj.insert("tool".into(), json!(label.tool));
    if let Some(a) = label.action {
        obj.insert("action".into(), json!(a));
    }
    obj.insert(
        "duration_ms".into(),
        json!(label.started.elapsed().as_millis() as u64),
    );
    obj.insert("trace_id".into(), json!(label.trace_id));
    redactor.scrub_value(&mut output);
    (output, outcome, error)
}

/// What the agent gets when a call ran but its end record could not be written: not the
/// result (an unrecorded success must not pass for a recorded one), but what happened.
pub fn unrecorded_end(
    output: Value,
    outcome: Outcome,
    e: &AppendError,
    label: &Label,
    redactor: &Redactor,
) -> Value {
    let mut detail = json!({"audit": "end-not-written", "cause": e.cause, "outcome": outcome});
    if let Some(a) = output.get("artifacts") {
        detail["artifacts"] = a.clone();
    }
    let trace_id = label.trace_id;
    let failure = Failure {
        detail: Some(detail),
        ..Failure::new(
            ErrorKind::Failed,
            format!(
                "the call ran (it ended '{outcome}') but its end record could not be written \
                 to the audit log, so its result is withheld: its effects happened and its \
                 begin record (trace {trace_id}) is in the log, how it ended is not. {e}; \
                 then run `infra audit verify`, and check the effects before calling again"
            ),
        )
    };
    envelope(Err(failure), label, redactor).0
}

/// The failure for a call whose begin record could not be written: it did not run.
pub fn unrecorded_begin(e: &AppendError) -> Failure {
    Failure {
        detail: Some(json!({"audit": "begin-not-written", "cause": e.cause})),
        ..Failure::new(
            ErrorKind::Failed,
            format!(
                "the call was not run: its begin record could not be written to the \
                 audit log, and infra runs nothing it cannot record. {e}; then call again"
            ),
        )
    }
}

/// The end record of a call still under way; if the call's future is dropped (a cancelled
/// request), dropping this writes it with the events so far.
pub struct Unfinished {
    audit: Arc<AuditLog>,
    end: Option<AuditEntry>,
    events: Events,
    started: Instant,
}

impl Unfinished {
    /// Armed with `end`, the record to write however the call ends.
    pub fn new(audit: Arc<AuditLog>, end: AuditEntry, events: Events, started: Instant) -> Self {
        Self {
            audit,
            end: Some(end),
            events,
            started,
        }
    }

    /// The call ended on its own: its end record, with the events and duration filled in.
    pub fn finish(&mut self, outcome: Outcome) -> AuditEntry {
        let mut end = self.take();
        end.outcome = outcome.as_str().into();
        end
    }

    /// Nothing to record: the call never began.
    pub fn disarm(&mut self) {
        self.end = None;
    }

    fn take(&mut self) -> AuditEntry {
        let mut end = self
            .end
            .take()
            .expect("an unfinished call ends once, before it is dropped");
        end.events = self
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(event_value)
            .collect();
        end.duration_ms = self.started.elapsed().as_millis() as u64;
        end
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if self.end.is_some() {
            let mut end = self.take();
            end.error = Some("cancelled by the client before it finished".into());
            // A drop cannot wait for the disk; the writer logs a failure to write it.
            self.audit.submit(end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(kind: ErrorKind) -> (Value, Outcome, Option<String>) {
        let label = Label {
            tool: "http",
            action: &Some("request".into()),
            trace_id: "t-1",
            started: Instant::now(),
        };
        let failure = Failure {
            field: Some("url".into()),
            ..Failure::new(kind, "what to do")
        };
        envelope(Err(failure), &label, &Redactor::new())
    }

    #[test]
    fn a_failure_keeps_its_kind_name_and_sets_the_outcome() {
        let (out, outcome, error) = failed(ErrorKind::NotFound);
        assert_eq!(out["ok"], json!(false));
        assert_eq!(
            out["error"],
            json!({"kind": "not-found", "message": "what to do", "field": "url"})
        );
        assert_eq!(
            (out["tool"].clone(), out["action"].clone()),
            (json!("http"), json!("request"))
        );
        assert_eq!(out["trace_id"], json!("t-1"));
        assert_eq!(outcome, Outcome::Error);
        assert_eq!(error.as_deref(), Some("what to do"));
        assert_eq!(failed(ErrorKind::Denied).1, Outcome::Denied);
        assert_eq!(failed(ErrorKind::Timeout).1, Outcome::Timeout);
        assert_eq!(failed(ErrorKind::Busy).1, Outcome::Error);
    }

    #[test]
    fn a_result_that_is_not_an_object_is_wrapped() {
        let label = Label {
            tool: "help",
            action: &None,
            trace_id: "t-2",
            started: Instant::now(),
        };
        let (out, outcome, error) = envelope(Ok(json!([1, 2])), &label, &Redactor::new());
        assert_eq!(out["result"], json!([1, 2]));
        assert_eq!(out["ok"], json!(true));
        assert!(out.get("action").is_none());
        assert_eq!((outcome, error), (Outcome::Ok, None));
    }
}
