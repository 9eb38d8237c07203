use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::*;
use crate::redact::Redactor;
use std::sync::Arc;

/// A temporary directory removed on drop.
struct TempDir(tempfile::TempDir);

impl TempDir {
    fn new(_tag: &str) -> TempDir {
        TempDir(tempfile::tempdir().unwrap())
    }

    fn log(&self) -> PathBuf {
        self.0.path().join("audit.jsonl")
    }
}

fn entry(i: u64) -> AuditEntry {
    let mut e = AuditEntry::new(&format!("trace-{}", i % 3), "http", Outcome::Ok);
    e.action = Some("request".into());
    e.plugin = Some("http".into());
    e.plugin_sha256 = Some("ab".repeat(32));
    e.args = json!({"url": format!("https://example.com/{i}"), "n": i, "nested": {"z": 1, "a": [1, 2.5, null]}});
    let decision = if i.is_multiple_of(4) { "deny" } else { "allow" };
    e.events = vec![json!({
        "cap": "http",
        "target": "example.com:443",
        "decision": decision,
        "duration_ms": 3,
        "detail": "200",
    })];
    e.duration_ms = i;
    e
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

fn write_chain(path: &Path, n: u64) {
    let log = AuditLog::open(path, Redactor::new()).unwrap();
    for i in 1..=n {
        log.append(entry(i)).unwrap();
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

fn broken(path: &Path) -> Broken {
    let r = verify(path).unwrap();
    assert!(!r.ok, "tampering must be detected: {r}");
    assert!(r.torn_tail.is_none(), "tampering is not a torn tail: {r}");
    r.first_broken.unwrap()
}

#[test]
fn canonical_json_sorts_keys_at_every_depth_without_whitespace() {
    let mut inner = serde_json::Map::new();
    inner.insert("b".into(), json!(1));
    inner.insert("a".into(), json!("x\"y\n"));
    let mut outer = serde_json::Map::new();
    outer.insert(
        "z".into(),
        json!([Value::Object(inner), null, true, -1, 2.5]),
    );
    outer.insert("é".into(), json!({}));
    outer.insert("A".into(), json!([]));
    let text = canonical_json(&Value::Object(outer));
    assert_eq!(
        text,
        r#"{"A":[],"z":[{"a":"x\"y\n","b":1},null,true,-1,2.5],"é":{}}"#
    );
    // Parsing back and canonicalising again is stable, whatever order the map keeps.
    let back: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(canonical_json(&back), text);
}

#[test]
fn a_chain_of_appends_verifies() {
    let dir = TempDir::new("chain");
    let path = dir.log();
    let log = AuditLog::open(&path, Redactor::new()).unwrap();
    let first = log.append(entry(1)).unwrap();
    assert_eq!(first.seq, 1);
    assert_eq!(first.prev, GENESIS);
    let second = log.append(entry(2)).unwrap();
    assert_eq!(second.seq, 2);
    assert_eq!(second.prev, first.hash);
    for i in 3..=20 {
        log.append(entry(i)).unwrap();
    }
    let r = verify(&path).unwrap();
    assert!(
        r.ok && r.first_broken.is_none() && r.torn_tail.is_none(),
        "{r}"
    );
    assert_eq!(r.records, 20);
    assert!(r.to_string().contains("20 records, chain intact"), "{r}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the audit log must be private, is {mode:o}"
        );
    }
    // Every line is canonical JSON, hashes recompute, times parse.
    for line in lines(&path) {
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(canonical_json(&v), line);
        assert_eq!(record_hash(&v), v["hash"]);
        OffsetDateTime::parse(v["time"].as_str().unwrap(), &Rfc3339).unwrap();
    }
    // Reopening continues the chain.
    drop(log);
    let log = AuditLog::open(&path, Redactor::new()).unwrap();
    assert_eq!(log.append(entry(21)).unwrap().seq, 21);
    assert!(verify(&path).unwrap().ok);
}

#[test]
fn editing_a_field_is_detected_at_that_record() {
    let dir = TempDir::new("edit");
    let path = dir.log();
    write_chain(&path, 10);
    let mut ls = lines(&path);
    ls[6] = ls[6].replace("\"outcome\":\"ok\"", "\"outcome\":\"error\"");
    write_lines(&path, &ls);
    let b = broken(&path);
    assert_eq!(
        (b.line, b.seq, &b.reason),
        (7, Some(7), &BrokenReason::Edited)
    );
    let text = verify(&path).unwrap().to_string();
    assert!(
        text.contains("record 7 (line 7) was edited: its hash does not match its content — the log was altered after it was written"),
        "{text}"
    );
}

#[test]
fn editing_with_a_recomputed_hash_is_detected_at_the_next_record() {
    let dir = TempDir::new("rehash");
    let path = dir.log();
    write_chain(&path, 6);
    let mut ls = lines(&path);
    let mut v: Value = serde_json::from_str(&ls[2]).unwrap();
    v["tool"] = json!("innocent");
    v["hash"] = json!(record_hash(&v));
    ls[2] = canonical_json(&v);
    write_lines(&path, &ls);
    let b = broken(&path);
    assert_eq!(
        (b.line, b.seq, &b.reason),
        (4, Some(4), &BrokenReason::NotChained)
    );
}

#[test]
fn deleting_a_record_is_detected() {
    let dir = TempDir::new("delete");
    let path = dir.log();
    write_chain(&path, 10);
    let mut ls = lines(&path);
    ls.remove(4); // record 5
    write_lines(&path, &ls);
    let b = broken(&path);
    assert_eq!(b.line, 5);
    assert_eq!(b.seq, Some(6));
    assert_eq!(b.reason, BrokenReason::Deleted { from: 5, to: 5 });
    let text = verify(&path).unwrap().to_string();
    assert!(
        text.contains("record 5 is missing — it was deleted"),
        "{text}"
    );
    assert_eq!(verify(&path).unwrap().records, 9);

    // Deleting the first record is caught too: the new first line does not start the chain.
    let mut ls = lines(&path);
    ls.remove(0);
    write_lines(&path, &ls);
    let b = broken(&path);
    assert_eq!((b.line, b.seq), (1, Some(2)));
    assert_eq!(b.reason, BrokenReason::Deleted { from: 1, to: 1 });
}

#[test]
fn reordering_two_records_is_detected() {
    let dir = TempDir::new("reorder");
    let path = dir.log();
    write_chain(&path, 10);
    let mut ls = lines(&path);
    ls.swap(3, 4); // records 4 and 5
    write_lines(&path, &ls);
    let b = broken(&path);
    assert_eq!((b.line, b.seq), (4, Some(5)));
    assert_eq!(
        b.reason,
        BrokenReason::Reordered {
            expected: 4,
            found_at_line: 5
        }
    );
    let text = verify(&path).unwrap().to_string();
    assert!(text.contains("record 5 (line 4) stands where record 4 belongs (that record is at line 5) — records were reordered"), "{text}");
}

#[test]
fn a_forged_line_with_a_recomputed_hash_is_detected() {
    let dir = TempDir::new("forge");
    let path = dir.log();
    write_chain(&path, 8);
    let ls = lines(&path);
    let template: Value = serde_json::from_str(&ls[3]).unwrap();

    // Forged with a self-consistent hash but a made-up prev: named at the forged line.
    let mut forged = template.clone();
    forged["seq"] = json!(5);
    forged["tool"] = json!("ssh");
    forged["prev"] = json!("11".repeat(32));
    forged["hash"] = json!(record_hash(&forged));
    let mut tampered = ls.clone();
    tampered.insert(4, canonical_json(&forged));
    write_lines(&path, &tampered);
    let b = broken(&path);
    assert_eq!(
        (b.line, b.seq, &b.reason),
        (5, Some(5), &BrokenReason::NotChained)
    );

    // Forged with the right prev too: the real record after it no longer chains.
    let mut forged = template;
    forged["seq"] = json!(5);
    forged["tool"] = json!("ssh");
    forged["prev"] = serde_json::from_str::<Value>(&ls[3]).unwrap()["hash"].clone();
    forged["hash"] = json!(record_hash(&forged));
    let mut tampered = ls.clone();
    tampered.insert(4, canonical_json(&forged));
    write_lines(&path, &tampered);
    let b = broken(&path);
    assert_eq!(b.line, 6, "the line after the forgery");
    assert_eq!(b.reason, BrokenReason::SeqBackwards { expected: 6 });

    // Garbage and non-records in the middle are named, not skipped.
    let mut tampered = ls.clone();
    tampered.insert(2, "{not json".into());
    write_lines(&path, &tampered);
    assert_eq!(
        (broken(&path).line, broken(&path).reason),
        (3, BrokenReason::NotJson)
    );
    let mut tampered = ls;
    tampered.insert(2, r#"{"seq":3,"note":"hi"}"#.into());
    write_lines(&path, &tampered);
    let b = broken(&path);
    assert_eq!(b.line, 3);
    assert!(matches!(b.reason, BrokenReason::NotARecord { .. }), "{b:?}");
}

#[test]
fn a_torn_tail_is_reported_as_torn_not_as_tampering() {
    let dir = TempDir::new("torn");
    let path = dir.log();
    write_chain(&path, 5);
    let full = std::fs::read(&path).unwrap();
    // Cut the last record in the middle, as a crash during its write would.
    let cut = full.len() - 40;
    std::fs::write(&path, &full[..cut]).unwrap();
    let r = verify(&path).unwrap();
    assert!(r.ok, "{r}");
    assert!(r.first_broken.is_none());
    assert_eq!(r.records, 4);
    let torn = r.torn_tail.clone().unwrap();
    assert_eq!(torn.line, 5);
    let last_start = full[..full.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    let last_len = (full.len() - last_start) as u64;
    assert_eq!(torn.bytes, last_len - 40);
    assert!(r.to_string().contains("(line 5, "), "{r}");
    assert!(
        r.to_string().contains("is torn — a write was interrupted"),
        "{r}"
    );

    // A torn write that happens to end in a newline is still torn, not tampering.
    let mut damaged = full[..cut].to_vec();
    damaged.push(b'\n');
    std::fs::write(&path, &damaged).unwrap();
    let r = verify(&path).unwrap();
    assert!(r.ok && r.first_broken.is_none(), "{r}");
    assert_eq!(r.torn_tail.map(|t| t.line), Some(5));
}

#[test]
fn reopening_after_a_torn_tail_moves_it_aside_and_records_it() {
    let dir = TempDir::new("recover");
    let path = dir.log();
    write_chain(&path, 5);
    let full = std::fs::read(&path).unwrap();
    let cut = full.len() - 25;
    std::fs::write(&path, &full[..cut]).unwrap();
    let last_nl = full[..cut].iter().rposition(|&b| b == b'\n').unwrap() + 1;
    let torn_bytes = full[last_nl..cut].to_vec();

    let log = AuditLog::open(&path, Redactor::new()).unwrap();
    let r = verify(&path).unwrap();
    assert!(r.ok && r.torn_tail.is_none(), "{r}");
    assert_eq!(r.records, 5, "4 intact records and the recovery record");
    let recovery: Value = serde_json::from_str(&lines(&path)[4]).unwrap();
    assert_eq!(recovery["seq"], 5);
    assert_eq!(recovery["tool"], "audit");
    assert_eq!(recovery["outcome"], "error");
    let sha = hex::encode(Sha256::digest(&torn_bytes));
    let moved_to = recovery["args"]["moved_to"].as_str().unwrap().to_string();
    let error = recovery["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("{} bytes", torn_bytes.len())),
        "{error}"
    );
    assert!(error.contains(&sha) && error.contains(&moved_to), "{error}");
    assert!(moved_to.contains("audit.jsonl.torn-"), "{moved_to}");
    assert_eq!(
        std::fs::read(&moved_to).unwrap(),
        torn_bytes,
        "the torn bytes are kept"
    );

    let next = log.append(entry(6)).unwrap();
    assert_eq!(next.seq, 6);
    assert_eq!(next.prev, recovery["hash"]);
    assert!(verify(&path).unwrap().ok);
}

#[test]
fn reopening_after_a_newline_terminated_torn_line_recovers_it() {
    let dir = TempDir::new("recover-nl");
    let path = dir.log();
    write_chain(&path, 3);
    let mut text = std::fs::read(&path).unwrap();
    text.extend_from_slice(b"{\"seq\":4,\"tim\n");
    std::fs::write(&path, &text).unwrap();
    let _log = AuditLog::open(&path, Redactor::new()).unwrap();
    let r = verify(&path).unwrap();
    assert!(r.ok && r.torn_tail.is_none(), "{r}");
    assert_eq!(r.records, 4);
    assert_eq!(tail(&path, 1).unwrap()[0]["tool"], "audit");
}

#[test]
fn a_log_damaged_before_its_end_is_refused_on_open() {
    let dir = TempDir::new("damaged");
    let path = dir.log();
    write_chain(&path, 3);
    let mut text = std::fs::read(&path).unwrap();
    text.extend_from_slice(b"garbage line\n{\"torn");
    std::fs::write(&path, &text).unwrap();
    let err = AuditLog::open(&path, Redactor::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is damaged") && err.contains("infra audit verify"),
        "{err}"
    );
    // A whole JSON line cannot come from a torn write, so it is not moved aside as one.
    let mut text = std::fs::read(&path).unwrap();
    text.truncate(text.len() - "garbage line\n{\"torn".len());
    text.extend_from_slice(b"{\"seq\":4}\n");
    std::fs::write(&path, &text).unwrap();
    let err = AuditLog::open(&path, Redactor::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("JSON but not an audit record"), "{err}");
    assert!(!verify(&path).unwrap().ok, "verify calls it tampering too");
}

#[test]
fn concurrent_appends_form_one_valid_chain() {
    let dir = TempDir::new("threads");
    let path = dir.log();
    let log = Arc::new(AuditLog::open(&path, Redactor::new()).unwrap());
    // A second handle on the same file stands in for a second infra process.
    let other = Arc::new(AuditLog::open(&path, Redactor::new()).unwrap());
    let handles: Vec<_> = (0..6)
        .map(|t| {
            let log = if t % 2 == 0 {
                log.clone()
            } else {
                other.clone()
            };
            std::thread::spawn(move || {
                for i in 0..25 {
                    log.append(entry(t * 100 + i)).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let r = verify(&path).unwrap();
    assert!(r.ok && r.torn_tail.is_none(), "{r}");
    assert_eq!(r.records, 150);
    let seqs: Vec<u64> = lines(&path)
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, (1..=150).collect::<Vec<_>>());
}

#[test]
fn a_shrunken_log_is_recorded_not_silently_continued() {
    let dir = TempDir::new("shrink");
    let path = dir.log();
    let log = AuditLog::open(&path, Redactor::new()).unwrap();
    for i in 1..=4 {
        log.append(entry(i)).unwrap();
    }
    let mut ls = lines(&path);
    ls.truncate(2);
    write_lines(&path, &ls);
    let rec = log.append(entry(5)).unwrap();
    assert_eq!(rec.seq, 4, "after the recovery record (seq 3)");
    let all = tail(&path, 10).unwrap();
    assert_eq!(all[2]["tool"], "audit");
    assert!(all[2]["error"].as_str().unwrap().contains("shrank"));
    assert!(verify(&path).unwrap().ok);
}

#[test]
fn a_registered_secret_never_reaches_the_file() {
    let dir = TempDir::new("secret");
    let path = dir.log();
    let redactor = Redactor::new();
    let log = AuditLog::open(&path, redactor.clone()).unwrap();
    redactor.add("hunter2-prod-pass");
    let mut e = entry(1);
    e.args =
        json!({"cmd": "mysql -phunter2-prod-pass", "hunter2-prod-pass": 1, "password": "other"});
    e.error = Some("login failed for hunter2-prod-pass".into());
    e.events[0]["reason"] = json!("saw hunter2-prod-pass");
    e.events[0]["detail"] = json!({"echo": ["hunter2-prod-pass"]});
    e.trace_id = "trace-hunter2-prod-pass".into();
    let rec = log.append(e).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("hunter2-prod-pass"), "{text}");
    assert!(
        !text.contains("other"),
        "values under secret keys are hidden"
    );
    assert_eq!(rec.args["cmd"], "mysql -p[REDACTED]");
    assert!(
        verify(&path).unwrap().ok,
        "scrubbing happens before hashing"
    );
}

#[test]
fn list_tail_and_stats_answer_queries() {
    let dir = TempDir::new("query");
    let path = dir.log();
    let log = AuditLog::open(&path, Redactor::new()).unwrap();
    let start = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    for i in 1..=9 {
        let mut e = entry(i);
        if i.is_multiple_of(3) {
            e.tool = "ssh".into();
            e.outcome = Outcome::Denied.to_string();
        }
        log.append(e).unwrap();
    }
    let all = list(&path, &Filter::default(), 100).unwrap();
    assert_eq!(all.len(), 9);
    assert_eq!(all[0]["seq"], 9, "newest first");
    let two = list(&path, &Filter::default(), 2).unwrap();
    assert_eq!(
        two.iter()
            .map(|v| v["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [9, 8]
    );
    let ssh = Filter {
        tool: Some("ssh".into()),
        ..Default::default()
    };
    assert_eq!(list(&path, &ssh, 100).unwrap().len(), 3);
    let denied = Filter {
        outcome: Some("denied".into()),
        trace_id: Some("trace-0".into()),
        ..Default::default()
    };
    let d = list(&path, &denied, 100).unwrap();
    assert_eq!(
        d.iter()
            .map(|v| v["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [9, 6, 3]
    );
    let future = Filter {
        since: Some(rfc3339(
            OffsetDateTime::now_utc() + time::Duration::hours(1),
        )),
        ..Default::default()
    };
    assert!(list(&path, &future, 100).unwrap().is_empty());
    let window = Filter {
        since: Some(rfc3339(start)),
        until: Some(rfc3339(
            OffsetDateTime::now_utc() + time::Duration::seconds(1),
        )),
        ..Default::default()
    };
    assert_eq!(list(&path, &window, 100).unwrap().len(), 9);
    for (bad, says) in [
        (
            Filter {
                since: Some("yesterday".into()),
                ..Default::default()
            },
            "since 'yesterday' is not an RFC 3339 time",
        ),
        (
            Filter {
                until: Some("2025-01-01".into()),
                ..Default::default()
            },
            "until '2025-01-01' is not an RFC 3339 time",
        ),
        (
            Filter {
                outcome: Some("failed".into()),
                ..Default::default()
            },
            "use one of ok, error, denied, timeout",
        ),
    ] {
        let err = list(&path, &bad, 10).unwrap_err().to_string();
        assert!(err.contains(says), "{err}");
    }
    assert!(list(&path, &Filter::default(), 0).unwrap().is_empty());

    let t = tail(&path, 3).unwrap();
    assert_eq!(
        t.iter()
            .map(|v| v["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [7, 8, 9]
    );

    let s = stats(&path).unwrap();
    assert_eq!(s["total"], 9);
    assert_eq!(s["by_tool"]["http"], 6);
    assert_eq!(s["by_tool"]["ssh"], 3);
    assert_eq!(s["by_outcome"]["denied"], 3);
    assert_eq!(s["denied_events"], 2, "events of entries 4 and 8");
    assert_eq!(s["first_time"], all[8]["time"]);
    assert_eq!(s["last_time"], all[0]["time"]);
    assert!(
        "maybe"
            .parse::<Outcome>()
            .unwrap_err()
            .contains("ok, error, denied, timeout")
    );
}

/// A begin and its end, as the router writes them.
fn call(log: &AuditLog, id: &str, trace: &str, outcome: Option<Outcome>) {
    let mut begin = AuditEntry::begin(id, trace, "http");
    begin.action = Some("request".into());
    begin.args = json!({"url": "https://example.com/"});
    let end = begin.end(outcome.unwrap_or(Outcome::Ok));
    log.append(begin).unwrap();
    if let Some(outcome) = outcome {
        let mut end = end;
        end.outcome = outcome.to_string();
        end.events = vec![json!({"cap": "http", "decision": "deny", "target": "x"})];
        end.duration_ms = 7;
        log.append(end).unwrap();
    }
}

#[test]
fn begin_and_end_records_carry_their_own_fields_and_pair_by_call_id() {
    let dir = TempDir::new("pairs");
    let path = dir.log();
    let log = AuditLog::open(&path, Redactor::new()).unwrap();
    call(&log, "c-1", "same-trace", Some(Outcome::Ok));
    call(&log, "c-2", "same-trace", Some(Outcome::Denied));
    let ls: Vec<Value> = lines(&path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ls[0]["kind"], "begin");
    assert!(ls[0].get("outcome").is_none() && ls[0].get("events").is_none());
    assert_eq!(ls[0]["args"]["url"], "https://example.com/");
    assert_eq!(ls[1]["kind"], "end");
    assert!(
        ls[1].get("args").is_none(),
        "the args are in the begin only"
    );
    assert_eq!(ls[1]["call_id"], "c-1");

    // One entry per call, a reused trace id notwithstanding.
    let all = list(&path, &Filter::default(), 10).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["call_id"], "c-2", "newest first");
    assert_eq!(all[0]["outcome"], "denied");
    assert_eq!(all[0]["seq"], 3);
    assert_eq!(all[0]["end_seq"], 4);
    assert_eq!(all[1]["args"]["url"], "https://example.com/");
    assert_eq!(all[1]["events"][0]["cap"], "http");
    let s = stats(&path).unwrap();
    assert_eq!(s["total"], 2);
    assert_eq!(s["by_outcome"]["ok"], 1);
    assert_eq!(s["denied_events"], 2);
    let r = verify(&path).unwrap();
    assert!(r.ok && r.unended.is_empty(), "{r}");
}

#[test]
fn a_begin_without_an_end_is_named_by_verify_list_and_stats_without_breaking_the_chain() {
    let dir = TempDir::new("unended");
    let path = dir.log();
    let log = AuditLog::open(&path, Redactor::new()).unwrap();
    call(&log, "c-1", "done", Some(Outcome::Ok));
    call(&log, "c-2", "killed-midway", None);
    call(&log, "c-3", "done-later", Some(Outcome::Error));
    let r = verify(&path).unwrap();
    assert!(r.ok && r.first_broken.is_none(), "{r}");
    assert_eq!(r.records, 5);
    assert_eq!(r.unended.len(), 1);
    assert_eq!(r.unended[0].trace_id, "killed-midway");
    assert_eq!(r.unended[0].seq, Some(3));
    let text = r.to_string();
    assert!(text.contains("chain intact"), "{text}");
    assert!(
        text.contains("1 call began and never ended")
            && text.contains("trace killed-midway (http request, record 3")
            && text.contains("not tampering"),
        "{text}"
    );
    let unended = Filter {
        outcome: Some("unended".into()),
        ..Default::default()
    };
    let found = list(&path, &unended, 10).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["trace_id"], "killed-midway");
    assert_eq!(stats(&path).unwrap()["by_outcome"]["unended"], 1);
}

#[test]
fn concurrent_appenders_share_syncs() {
    let dir = TempDir::new("group");
    let path = dir.log();
    let log = Arc::new(AuditLog::open(&path, Redactor::new()).unwrap());
    let start = Arc::new(std::sync::Barrier::new(64));
    let handles: Vec<_> = (0..64)
        .map(|t| {
            let (log, start) = (log.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for i in 0..4 {
                    let rec = log.append(entry(t * 10 + i)).unwrap();
                    // Durable on return: the record is in the file already.
                    assert!(
                        std::fs::read_to_string(log.path())
                            .unwrap()
                            .contains(&rec.hash)
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let r = verify(&path).unwrap();
    assert!(r.ok, "{r}");
    assert_eq!(r.records, 256);
    assert!(
        log.syncs() < 256,
        "64 appenders at once share syncs: {} syncs for 256 records",
        log.syncs()
    );
}

#[test]
fn a_record_queued_by_submit_is_written_before_the_log_closes() {
    let dir = TempDir::new("submit");
    let path = dir.log();
    let log = AuditLog::open(&path, Redactor::new()).unwrap();
    log.submit(entry(1));
    drop(log);
    assert_eq!(verify(&path).unwrap().records, 1);
}

#[test]
fn verifying_a_missing_log_says_where_it_looked() {
    let dir = TempDir::new("missing");
    let err = verify(dir.log()).unwrap_err().to_string();
    assert!(
        err.contains("audit.jsonl") && err.contains("INFRA_HOME"),
        "{err}"
    );
}
