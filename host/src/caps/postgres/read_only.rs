//! What a read-only call may send: queries, never a statement that ends or changes the
//! transaction around it.
//!
//! A read-only call runs inside a `READ ONLY` transaction the host opens and always rolls back,
//! on a session whose default is read-only too. A statement could still step out of that
//! transaction (`COMMIT`, `END`, `ROLLBACK`, `PREPARE TRANSACTION`) or change its mode (`SET
//! TRANSACTION READ WRITE`, `SET SESSION CHARACTERISTICS`, `DO`, `CALL` of a procedure that
//! commits), and what followed would run read-write. So before anything reaches the server, a
//! read-only call's statement must begin with one of [`QUERY_KEYWORDS`]; whatever such a query
//! then tries to write (a data-modifying `WITH`, `SELECT … INTO`, a volatile function, `nextval`)
//! the read-only transaction refuses with SQLSTATE 25006.

/// The first keywords a read-only call's statement may have: queries, which cannot end the
/// transaction they run in nor change its mode.
pub const QUERY_KEYWORDS: &[&str] = &["SELECT", "WITH", "VALUES", "TABLE", "SHOW", "EXPLAIN"];

/// The statement's first keyword, uppercased, past whitespace, `--` and nested `/* */` comments
/// and opening parentheses; `None` when it starts with anything else (a quoted identifier, an
/// unterminated comment, nothing at all).
pub fn first_keyword(sql: &str) -> Option<String> {
    let b = sql.as_bytes();
    let mut i = 0;
    loop {
        match b.get(i)? {
            // The server's whitespace: space, tab, newline, carriage return, form feed, vertical tab.
            b' ' | b'\t' | b'\n' | b'\r' | 0x0c | 0x0b | b'(' => i += 1,
            // A line comment ends at a newline, which for the server is `\n` or `\r`.
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..]
                    .iter()
                    .position(|&c| c == b'\n' || c == b'\r')
                    .map(|p| i + p)?;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => i = skip_block_comment(b, i)?,
            _ => break,
        }
    }
    let word_len = b[i..]
        .iter()
        .take_while(|c| c.is_ascii_alphabetic())
        .count();
    // A keyword runs on into an identifier when followed by one of its characters (`select1`,
    // `select_x`, `table$`, `selectä`): that is not the keyword.
    let continues = b
        .get(i + word_len)
        .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80);
    if word_len == 0 || continues {
        return None;
    }
    Some(sql[i..i + word_len].to_ascii_uppercase())
}

/// The index just past the `/* … */` comment opening at `start`; comments nest, as in
/// PostgreSQL. `None` when it never closes.
fn skip_block_comment(b: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i + 1 < b.len() {
        match (b[i], b[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Refuses, before anything is sent, a statement a read-only call may not run. `why` says what
/// made the call read-only; the message names the `sql` field and what to do instead.
pub fn check(sql: &str, why: &str) -> Result<(), String> {
    match first_keyword(sql) {
        Some(k) if QUERY_KEYWORDS.contains(&k.as_str()) => Ok(()),
        found => Err(format!(
            "sql: this call is read-only ({why}), and a read-only call runs only queries — \
             statements that begin with {}; this one begins with {}. Transaction control \
             (BEGIN, COMMIT, ROLLBACK, SAVEPOINT), SET, DO, CALL, COPY and writes are refused: \
             run them through a profile and a policy that allow writes",
            QUERY_KEYWORDS.join(", "),
            found.unwrap_or_else(|| "something else".to_string())
        )),
    }
}

/// Refuses an export of anything but a query that returns rows: the statement goes inside
/// `COPY (…) TO STDOUT`, which takes no SHOW or EXPLAIN and, read-only, no writes.
pub fn check_export(sql: &str) -> Result<(), String> {
    match first_keyword(sql) {
        Some(k) if matches!(k.as_str(), "SELECT" | "WITH" | "VALUES" | "TABLE") => Ok(()),
        found => Err(format!(
            "sql: export needs a query that returns rows, beginning with SELECT, WITH, VALUES or \
             TABLE; this one begins with {}. An export runs read-only: writes, SET and \
             transaction control are refused — run those with `query`",
            found.unwrap_or_else(|| "something else".to_string())
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_keyword_is_found_past_comments_and_parentheses() {
        for (sql, want) in [
            ("SELECT 1", Some("SELECT")),
            ("  \n\tselect 1", Some("SELECT")),
            ("-- note\nCOMMIT", Some("COMMIT")),
            ("-- note\rCOMMIT\nSELECT 1", Some("COMMIT")),
            ("/* a /* nested */ b */ commit; insert", Some("COMMIT")),
            ("((VALUES (1)))", Some("VALUES")),
            ("\x0b\x0cEnd", Some("END")),
            (
                "with x as (insert into t values (1)) select 1",
                Some("WITH"),
            ),
            ("SELECT(1)", Some("SELECT")),
            ("select1", None),
            ("select_x", None),
            ("\"SELECT\"", None),
            ("/* never closed SELECT", None),
            ("-- only a comment", None),
            ("", None),
            ("\u{a0}SELECT 1", None),
        ] {
            assert_eq!(first_keyword(sql).as_deref(), want, "{sql:?}");
        }
    }

    /// Every combination of what may come before the keyword, of keywords in mixed case and of
    /// what may follow it: the keyword is found exactly when nothing glues it to an identifier.
    #[test]
    fn every_prefix_keyword_and_suffix_combination_is_read_as_the_server_reads_it() {
        let prefixes = [
            "",
            " ",
            "\t\n\r",
            "\x0b\x0c",
            "(",
            "( (",
            "-- c\n",
            "--\n",
            "/**/",
            "/* a */",
            "/* /* nested */ */",
            "/*/**/*/",
            "/* -- */",
            "-- /*\n",
            " ( /* x */ ( -- y\n",
        ];
        let keywords = [
            "select",
            "SELECT",
            "SeLeCt",
            "with",
            "values",
            "table",
            "show",
            "explain",
            "commit",
            "END",
            "rollback",
            "abort",
            "begin",
            "start",
            "set",
            "do",
            "call",
            "copy",
            "insert",
            "prepare",
            "savepoint",
            "release",
            "alter",
            "create",
        ];
        let suffixes = [
            ("", true),
            (" 1", true),
            ("(", true),
            (";", true),
            ("\n", true),
            ("/**/", true),
            ("--", true),
            ("1", false),
            ("_x", false),
            ("$", false),
            ("\u{e9}", false),
        ];
        for p in prefixes {
            for k in keywords {
                for (sfx, is_keyword) in suffixes {
                    let sql = format!("{p}{k}{sfx}");
                    let want = is_keyword.then(|| k.to_ascii_uppercase());
                    assert_eq!(first_keyword(&sql), want, "{sql:?}");
                    let allowed = want.is_some_and(|w| QUERY_KEYWORDS.contains(&w.as_str()));
                    assert_eq!(check(&sql, "test").is_ok(), allowed, "{sql:?}");
                }
            }
        }
    }

    /// Every string of up to six characters over the characters that steer the scan: no panic,
    /// and a keyword found is a run of ASCII letters, uppercased.
    #[test]
    fn any_short_string_scans_without_panicking() {
        let alphabet = ['-', '/', '*', '(', ' ', '\n', 's', '\u{e9}'];
        let mut stack = vec![String::new()];
        while let Some(s) = stack.pop() {
            if let Some(k) = first_keyword(&s) {
                assert!(k.bytes().all(|b| b.is_ascii_uppercase()), "{s:?} -> {k:?}");
            }
            if s.chars().count() < 6 {
                stack.extend(alphabet.iter().map(|c| format!("{s}{c}")));
            }
        }
    }

    #[test]
    fn only_queries_pass() {
        for ok in [
            "SELECT 1",
            "WITH a AS (SELECT 1) TABLE a",
            "show search_path",
            "EXPLAIN SELECT 1",
        ] {
            assert!(check(ok, "test").is_ok(), "{ok}");
        }
        for bad in [
            "COMMIT",
            "end",
            "BEGIN",
            "SAVEPOINT a",
            "SET TRANSACTION READ WRITE",
            "DO $$ BEGIN END $$",
            "CALL p()",
            "COPY t FROM STDIN",
            "INSERT INTO t VALUES (1)",
        ] {
            let e = check(bad, "the profile says read_only").unwrap_err();
            assert!(e.starts_with("sql: ") && e.contains("read_only"), "{e}");
            assert!(check_export(bad).is_err(), "{bad}");
        }
        assert!(check_export("SHOW search_path").is_err());
        assert!(check_export("(TABLE t)").is_ok());
    }
}
