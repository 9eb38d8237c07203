//! Reading calls back: a begin merged with its end, filtered, listed, counted.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use anyhow::Result;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Outcome;
use super::read::{Paired, Pairing, for_each_line};

/// The one entry [`list`] shows for a call: its begin with the end's fields added (`seq` and
/// `time` are the begin's; `end_seq` and `end_time` the end's), or a begin alone with
/// `outcome: "unended"`. Chain fields are left out: they belong to records, not to calls.
fn call_view(begin: Value, end: Option<&Value>) -> Value {
    let Value::Object(mut view) = begin else {
        return begin;
    };
    for key in ["prev", "hash", "kind"] {
        view.remove(key);
    }
    match end {
        Some(end) => {
            for key in ["outcome", "error", "events", "duration_ms", "artifacts"] {
                if let Some(v) = end.get(key) {
                    view.insert(key.into(), v.clone());
                }
            }
            view.insert(
                "end_seq".into(),
                end.get("seq").cloned().unwrap_or(Value::Null),
            );
            view.insert(
                "end_time".into(),
                end.get("time").cloned().unwrap_or(Value::Null),
            );
        }
        None => {
            view.insert("outcome".into(), json!(Outcome::Unended.as_str()));
        }
    }
    Value::Object(view)
}

/// Walks the log one call at a time (see [`call_view`]), calling `each(seq, entry)` with the
/// seq that orders it (the begin's); ended calls come when their end is read, unended ones
/// at the end. Lines that are not JSON are skipped; [`verify`] is the tool that reports them.
fn for_each_call(path: &Path, mut each: impl FnMut(u64, Value)) -> Result<()> {
    let mut pairing = Pairing::default();
    let seq_of = |v: &Value| v.get("seq").and_then(Value::as_u64).unwrap_or(0);
    for_each_line(path, |line, bytes| {
        let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
            return;
        };
        match pairing.see(line, &v) {
            None => {}
            Some(Paired::Ended(begin)) => each(seq_of(&begin), call_view(begin, Some(&v))),
            Some(Paired::Alone) => each(seq_of(&v), v),
        }
    })?;
    for (_, begin) in pairing.into_unended() {
        each(seq_of(&begin), call_view(begin, None));
    }
    Ok(())
}

/// Which records [`list`] returns; every field that is set must match. Fields are strings as
/// an agent sends them; [`list`] refuses ones it cannot use, saying how to write them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this trace id.
    pub trace_id: Option<String>,
    /// Only this tool.
    pub tool: Option<String>,
    /// Only this outcome: `ok`, `error`, `denied` or `timeout`.
    pub outcome: Option<String>,
    /// Only records at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Only records before this RFC 3339 time.
    pub until: Option<String>,
}

/// A [`Filter`] with its fields checked and parsed.
struct Matcher<'a> {
    trace_id: Option<&'a str>,
    tool: Option<&'a str>,
    outcome: Option<Outcome>,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
}

impl Filter {
    fn matcher(&self) -> Result<Matcher<'_>> {
        let time = |field: &str, value: &Option<String>| -> Result<Option<OffsetDateTime>> {
            value
                .as_deref()
                .map(|t| {
                    OffsetDateTime::parse(t, &Rfc3339).map_err(|_| {
                        anyhow::anyhow!(
                            "{field} '{t}' is not an RFC 3339 time; write it like 2025-01-31T09:00:00Z"
                        )
                    })
                })
                .transpose()
        };
        let outcome = self
            .outcome
            .as_deref()
            .map(Outcome::from_str)
            .transpose()
            .map_err(|e| anyhow::anyhow!("outcome {e}"))?;
        Ok(Matcher {
            trace_id: self.trace_id.as_deref(),
            tool: self.tool.as_deref(),
            outcome,
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
        })
    }
}

impl Matcher<'_> {
    fn matches(&self, v: &Value) -> bool {
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        if self.trace_id.is_some_and(|t| s("trace_id") != Some(t))
            || self.tool.is_some_and(|t| s("tool") != Some(t))
            || self
                .outcome
                .is_some_and(|o| s("outcome") != Some(o.as_str()))
        {
            return false;
        }
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let Some(time) = s("time").and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()) else {
            return false;
        };
        self.since.is_none_or(|since| time >= since) && self.until.is_none_or(|until| time < until)
    }
}

/// Calls matching `filter`, one entry per call (see [`call_view`]), newest first by when
/// they began, at most `limit`.
pub fn list(path: impl AsRef<Path>, filter: &Filter, limit: usize) -> Result<Vec<Value>> {
    let matcher = filter.matcher()?;
    if limit == 0 {
        return Ok(Vec::new());
    }
    // Calls complete out of order; keeping the `limit` latest-begun bounds the memory.
    let mut found: BTreeMap<u64, Value> = BTreeMap::new();
    for_each_call(path.as_ref(), |seq, v| {
        if matcher.matches(&v) {
            found.insert(seq, v);
            if found.len() > limit {
                found.pop_first();
            }
        }
    })?;
    Ok(found.into_values().rev().collect())
}

/// The last `n` records, oldest first, as `tail` shows lines.
pub fn tail(path: impl AsRef<Path>, n: usize) -> Result<Vec<Value>> {
    let mut newest_first = list(path, &Filter::default(), n)?;
    newest_first.reverse();
    Ok(newest_first)
}

/// Counts of calls by tool and by outcome (`unended` included), denied capability events,
/// total, first and last time.
pub fn stats(path: impl AsRef<Path>) -> Result<Value> {
    let mut total = 0u64;
    let mut by_tool: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_outcome: BTreeMap<String, u64> = BTreeMap::new();
    let mut denied_events = 0u64;
    let mut first_time: Option<(OffsetDateTime, String)> = None;
    let mut last_time: Option<(OffsetDateTime, String)> = None;
    for_each_call(path.as_ref(), |_, v| {
        total += 1;
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
        *by_tool.entry(s("tool")).or_default() += 1;
        *by_outcome.entry(s("outcome")).or_default() += 1;
        denied_events += v.get("events").and_then(Value::as_array).map_or(0, |evs| {
            evs.iter()
                .filter(|e| e.get("decision").and_then(Value::as_str) == Some("deny"))
                .count() as u64
        });
        for key in ["time", "end_time"] {
            let Some(text) = v.get(key).and_then(Value::as_str) else {
                continue;
            };
            let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) else {
                continue;
            };
            if first_time.as_ref().is_none_or(|(f, _)| t < *f) {
                first_time = Some((t, text.to_string()));
            }
            if last_time.as_ref().is_none_or(|(l, _)| t > *l) {
                last_time = Some((t, text.to_string()));
            }
        }
    })?;
    Ok(json!({
        "total": total,
        "by_tool": by_tool,
        "by_outcome": by_outcome,
        "denied_events": denied_events,
        "first_time": first_time.map(|(_, t)| t),
        "last_time": last_time.map(|(_, t)| t),
    }))
}
