//! Checking the chain: the first broken record, torn tails, calls that began and never ended.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use super::read::{Pairing, for_each_line};
use super::{GENESIS, record_hash};

/// The result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The log verified.
    pub path: PathBuf,
    /// Complete lines in the log (a torn last line not counted).
    pub records: u64,
    /// The chain is intact: no record was edited, deleted, inserted or reordered.
    pub ok: bool,
    /// The first place the chain breaks.
    pub first_broken: Option<Broken>,
    /// A torn last line: an interrupted write, not tampering.
    pub torn_tail: Option<TornTail>,
    /// Calls with a begin record and no end record, oldest first: still running, or their
    /// server was killed. Not tampering, and not counted against `ok`.
    pub unended: Vec<Unended>,
}

/// A call that began and has no end record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unended {
    /// The call's trace id.
    pub trace_id: String,
    /// The pairing id its end record would carry.
    pub call_id: String,
    /// The tool called.
    pub tool: String,
    /// The tool's action.
    pub action: Option<String>,
    /// The begin record's seq.
    pub seq: Option<u64>,
    /// Its 1-based line.
    pub line: u64,
    /// When it began.
    pub time: String,
}

/// Unended calls a report names one by one; the rest are counted.
const UNENDED_SHOWN: usize = 10;

/// Where and how the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broken {
    /// 1-based line number.
    pub line: u64,
    /// The record's `seq`, when it has one.
    pub seq: Option<u64>,
    /// What is wrong.
    pub reason: BrokenReason,
}

/// Why a record does not fit the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BrokenReason {
    /// The line is not JSON.
    NotJson,
    /// The line is JSON but lacks a chain field.
    NotARecord {
        /// The missing or malformed field.
        field: String,
    },
    /// Its hash does not match its content: it was edited.
    Edited,
    /// Records between the previous one and this were removed.
    Deleted {
        /// First missing seq.
        from: u64,
        /// Last missing seq.
        to: u64,
    },
    /// This record came early: the one expected here is further down.
    Reordered {
        /// The seq expected here.
        expected: u64,
        /// The line that holds it.
        found_at_line: u64,
    },
    /// The seq repeats or goes back: a record was copied or inserted.
    SeqBackwards {
        /// The seq expected here.
        expected: u64,
    },
    /// The seq is right but `prev` is not the previous record's hash: a record before it was
    /// inserted or replaced with a recomputed hash.
    NotChained,
    /// `prev` chains but the seq is wrong: the seq was changed and the hash recomputed.
    SeqChanged {
        /// The seq expected here.
        expected: u64,
    },
}

/// A torn last line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TornTail {
    /// 1-based line number.
    pub line: u64,
    /// Its length in bytes.
    pub bytes: u64,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.first_broken {
            None => write!(
                f,
                "audit log {path}: {} records, chain intact",
                self.records
            )?,
            Some(b) => {
                let rec = match b.seq {
                    Some(seq) => format!("record {seq} (line {})", b.line),
                    None => format!("line {}", b.line),
                };
                let what = match &b.reason {
                    BrokenReason::NotJson => {
                        format!("{rec} is not JSON — the log was altered or damaged")
                    }
                    BrokenReason::NotARecord { field } => format!(
                        "{rec} is not an audit record (no valid '{field}') — the log was altered"
                    ),
                    BrokenReason::Edited => format!(
                        "{rec} was edited: its hash does not match its content — the log was altered after it was written"
                    ),
                    BrokenReason::Deleted { from, to } if from == to => format!(
                        "{rec} does not follow the record before it: record {from} is missing — it was deleted from the log"
                    ),
                    BrokenReason::Deleted { from, to } => format!(
                        "{rec} does not follow the record before it: records {from} to {to} are missing — they were deleted from the log"
                    ),
                    BrokenReason::Reordered {
                        expected,
                        found_at_line,
                    } => format!(
                        "{rec} stands where record {expected} belongs (that record is at line {found_at_line}) — records were reordered"
                    ),
                    BrokenReason::SeqBackwards { expected } => format!(
                        "{rec} repeats or goes back in sequence (record {expected} belongs here) — a record was copied or inserted"
                    ),
                    BrokenReason::NotChained => format!(
                        "{rec} does not chain to the record before it: its prev is not that record's hash — a record was inserted or replaced before it"
                    ),
                    BrokenReason::SeqChanged { expected } => format!(
                        "{rec} should be record {expected}: its seq was changed and its hash recomputed — the log was altered"
                    ),
                };
                write!(
                    f,
                    "audit log {path}: {what}; the {} lines before it verify — compare the log with a backup",
                    b.line - 1
                )?;
            }
        }
        if let Some(t) = &self.torn_tail {
            write!(
                f,
                "; its last line (line {}, {} bytes) is torn — a write was interrupted (crash or full disk), \
                 which is not tampering; infra moves it aside the next time it opens the log",
                t.line, t.bytes
            )?;
        }
        if !self.unended.is_empty() {
            let n = self.unended.len();
            let calls = if n == 1 { "call" } else { "calls" };
            write!(
                f,
                "; {n} {calls} began and never ended — infra was killed during them, or they are \
                 still running (this is not tampering; their effects may have happened without \
                 a record of how they ended): "
            )?;
            for (i, u) in self.unended.iter().take(UNENDED_SHOWN).enumerate() {
                let what = match &u.action {
                    Some(a) => format!("{} {a}", u.tool),
                    None => u.tool.clone(),
                };
                let at = match u.seq {
                    Some(seq) => format!("record {seq}"),
                    None => format!("line {}", u.line),
                };
                let sep = if i == 0 { "" } else { ", " };
                write!(
                    f,
                    "{sep}trace {} ({what}, {at}, began {})",
                    u.trace_id, u.time
                )?;
            }
            if n > UNENDED_SHOWN {
                write!(f, " and {} more", n - UNENDED_SHOWN)?;
            }
        }
        Ok(())
    }
}

/// Walks the chain of the log at `path` and reports the first break and any torn tail.
pub fn verify(path: impl AsRef<Path>) -> Result<VerifyReport> {
    let path = path.as_ref();
    let mut records = 0u64;
    let mut expected_seq = 1u64;
    let mut expected_prev = GENESIS.to_string();
    let mut first_broken: Option<Broken> = None;
    // A seq that jumped ahead is a deletion unless the missing record turns up later.
    let mut looking_for: Option<u64> = None;
    let mut last_line_bad: Option<(u64, u64)> = None;
    let mut open = Pairing::default();
    let torn = for_each_line(path, |line_no, bytes| {
        records += 1;
        last_line_bad = None;
        let parsed: Option<Value> = serde_json::from_slice(bytes).ok();
        if let Some(v) = &parsed {
            open.see(line_no, v);
        }
        if let (Some(want), Some(v)) = (looking_for, &parsed)
            && v.get("seq").and_then(Value::as_u64) == Some(want)
            && let Some(b) = first_broken.as_mut()
        {
            b.reason = BrokenReason::Reordered {
                expected: want,
                found_at_line: line_no,
            };
            looking_for = None;
        }
        let Some(v) = parsed else {
            last_line_bad = Some((line_no, bytes.len() as u64 + 1));
            if first_broken.is_none() {
                first_broken = Some(Broken {
                    line: line_no,
                    seq: None,
                    reason: BrokenReason::NotJson,
                });
            }
            return;
        };
        if first_broken.is_some() {
            return;
        }
        let seq = v.get("seq").and_then(Value::as_u64);
        let broken = |reason| Broken {
            line: line_no,
            seq,
            reason,
        };
        let field = |name: &str| {
            v.get(name)
                .and_then(Value::as_str)
                .filter(|h| h.len() == 64)
        };
        let (Some(seq_n), Some(prev), Some(hash)) = (seq, field("prev"), field("hash")) else {
            let missing = match (seq, field("prev")) {
                (None, _) => "seq",
                (_, None) => "prev",
                _ => "hash",
            };
            first_broken = Some(broken(BrokenReason::NotARecord {
                field: missing.into(),
            }));
            return;
        };
        let reason = if record_hash(&v) != hash {
            Some(BrokenReason::Edited)
        } else if prev != expected_prev {
            Some(if seq_n > expected_seq {
                looking_for = Some(expected_seq);
                BrokenReason::Deleted {
                    from: expected_seq,
                    to: seq_n - 1,
                }
            } else if seq_n < expected_seq {
                BrokenReason::SeqBackwards {
                    expected: expected_seq,
                }
            } else {
                BrokenReason::NotChained
            })
        } else if seq_n != expected_seq {
            Some(BrokenReason::SeqChanged {
                expected: expected_seq,
            })
        } else {
            None
        };
        match reason {
            Some(reason) => first_broken = Some(broken(reason)),
            None => {
                expected_seq = seq_n + 1;
                expected_prev = hash.to_string();
            }
        }
    })?;
    let mut torn_tail = torn.map(|(line, bytes)| TornTail { line, bytes });
    // A terminated but unparseable last line is a torn write that happened to end in a
    // newline, not tampering in the middle of the log.
    if torn_tail.is_none()
        && let Some((line, bytes)) = last_line_bad
    {
        if first_broken.as_ref().is_some_and(|b| b.line == line) {
            first_broken = None;
        }
        records -= 1;
        torn_tail = Some(TornTail { line, bytes });
    }
    let unended = open
        .into_unended()
        .map(|(line, begin)| {
            let s = |k: &str| begin.get(k).and_then(Value::as_str).map(str::to_string);
            Unended {
                trace_id: s("trace_id").unwrap_or_default(),
                call_id: s("call_id").unwrap_or_default(),
                tool: s("tool").unwrap_or_default(),
                action: s("action"),
                seq: begin.get("seq").and_then(Value::as_u64),
                line,
                time: s("time").unwrap_or_default(),
            }
        })
        .collect();
    Ok(VerifyReport {
        path: path.to_path_buf(),
        records,
        ok: first_broken.is_none(),
        first_broken,
        torn_tail,
        unended,
    })
}
