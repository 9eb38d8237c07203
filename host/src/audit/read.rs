//! Reading the log: its complete lines in order, and begin records paired with their ends —
//! what both the queries and `verify` walk.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

/// Reads the complete lines of a log, calling `each(line_number, bytes)`; returns the torn
/// unterminated last line, if any, as (line number, length).
pub(super) fn for_each_line(
    path: &Path,
    mut each: impl FnMut(u64, &[u8]),
) -> Result<Option<(u64, u64)>> {
    let file = File::open(path).with_context(|| {
        format!(
            "cannot read audit log {}; it is created by the first tool call — check INFRA_HOME points at the right state directory",
            path.display()
        )
    })?;
    // Records are appended whole under an exclusive lock, so the length read under a shared
    // lock ends on a record boundary even while another process appends.
    file.lock_shared()
        .with_context(|| format!("cannot lock audit log {}", path.display()))?;
    let len = file.metadata()?.len();
    let _ = file.unlock();
    let mut reader = BufReader::new(file.take(len));
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        line_no += 1;
        if buf.last() != Some(&b'\n') {
            return Ok(Some((line_no, n as u64)));
        }
        buf.pop();
        each(line_no, &buf);
    }
}

/// Pairs begin records with their ends while the log is read, in order.
#[derive(Default)]
pub(super) struct Pairing {
    /// Begins waiting for their end, by call id: (line, record).
    open: HashMap<String, (u64, Value)>,
}

impl Pairing {
    /// Takes in one record; returns the begin that `v` ends, or `v` itself when it is not
    /// part of a pair (a `call` record, an end whose begin is not in the log).
    pub(super) fn see(&mut self, line: u64, v: &Value) -> Option<Paired> {
        let kind = v.get("kind").and_then(Value::as_str);
        let id = v.get("call_id").and_then(Value::as_str);
        match (kind, id) {
            (Some("begin"), Some(id)) => {
                self.open.insert(id.to_string(), (line, v.clone()));
                None
            }
            (Some("end"), Some(id)) => Some(match self.open.remove(id) {
                Some((_, begin)) => Paired::Ended(begin),
                None => Paired::Alone,
            }),
            _ => Some(Paired::Alone),
        }
    }

    /// The begins left without an end, oldest first: (line, record).
    pub(super) fn into_unended(self) -> impl Iterator<Item = (u64, Value)> {
        let mut rest: Vec<(u64, Value)> = self.open.into_values().collect();
        rest.sort_by_key(|(line, _)| *line);
        rest.into_iter()
    }
}

/// What a record completes, as [`Pairing::see`] tells it.
pub(super) enum Paired {
    /// This end record closes that begin record.
    Ended(Value),
    /// The record stands for itself.
    Alone,
}
