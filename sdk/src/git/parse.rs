//! Parsers of git's machine formats: `status --porcelain=v2 -z --branch`, `diff --numstat -z`
//! and `log -z` with the format [`LOG_FORMAT`]. Each takes raw bytes (paths are bytes in git:
//! invalid UTF-8 is replaced, never a failure), keeps at most `max` records and counts the rest.

use crate::prelude::*;

/// Branch facts from the `# branch.*` headers.
#[derive(Debug, Default, Clone, Serialize, JsonSchema, PartialEq)]
pub struct BranchInfo {
    /// The current branch; absent when HEAD is detached.
    pub branch: Option<String>,
    /// HEAD is detached (not on a branch).
    pub detached: bool,
    /// The commit HEAD points at; absent in a repository without commits.
    pub head: Option<String>,
    /// The upstream branch, when one is set.
    pub upstream: Option<String>,
    /// Commits on HEAD not on the upstream.
    pub ahead: Option<u64>,
    /// Commits on the upstream not on HEAD.
    pub behind: Option<u64>,
}

/// One changed, untracked or conflicted path.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct StatusEntry {
    /// The path, relative to the top of the repository.
    pub path: String,
    /// The path before a rename or copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `modified`, `added`, `deleted`, `renamed`, `copied`, `type_changed`, `untracked`,
    /// `ignored` or `conflicted`.
    pub kind: String,
    /// The index column of `git status --short` (`.` unchanged), e.g. `M`.
    pub staged: String,
    /// The work-tree column of `git status --short` (`.` unchanged).
    pub unstaged: String,
    /// Rename or copy similarity, percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<u32>,
}

/// What `git status --porcelain=v2 -z --branch` says.
#[derive(Debug, Default, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Status {
    /// The branch headers.
    #[serde(flatten)]
    pub branch: BranchInfo,
    /// Paths, at most `max_entries`.
    pub entries: Vec<StatusEntry>,
    /// Entries left out past `max_entries`.
    pub entries_omitted: u64,
    /// Counts by kind over all entries (also those left out).
    pub counts: StatusCounts,
}

/// Counts of status entries by kind.
#[derive(Debug, Default, Clone, Serialize, JsonSchema, PartialEq)]
pub struct StatusCounts {
    /// Paths with staged changes.
    pub staged: u64,
    /// Tracked paths with unstaged changes.
    pub unstaged: u64,
    /// Untracked paths.
    pub untracked: u64,
    /// Paths with merge conflicts.
    pub conflicted: u64,
}

impl Status {
    /// No staged, unstaged or conflicted path (untracked ones counted apart).
    pub fn tracked_clean(&self) -> bool {
        self.counts.staged == 0 && self.counts.unstaged == 0 && self.counts.conflicted == 0
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Splits `rec` on single spaces into `n` fields, the last taking the rest (a path may hold
/// spaces).
fn fields(rec: &[u8], n: usize) -> Option<Vec<&[u8]>> {
    let f: Vec<&[u8]> = rec.splitn(n, |b| *b == b' ').collect();
    (f.len() == n).then_some(f)
}

fn kind_of(xy: &[u8]) -> &'static str {
    let has = |c: u8| xy.contains(&c);
    if has(b'R') {
        "renamed"
    } else if has(b'C') {
        "copied"
    } else if has(b'A') {
        "added"
    } else if has(b'D') {
        "deleted"
    } else if has(b'T') {
        "type_changed"
    } else {
        "modified"
    }
}

fn column(c: u8) -> String {
    (c as char).to_string()
}

/// Parses `git status --porcelain=v2 -z --branch` output; keeps at most `max` entries.
pub fn status(out: &[u8], max: usize) -> Result<Status, String> {
    let mut s = Status::default();
    let mut records = out.split(|b| *b == 0).filter(|r| !r.is_empty());
    let keep = |s: &mut Status, e: StatusEntry| {
        let c = &mut s.counts;
        match e.kind.as_str() {
            "untracked" => c.untracked += 1,
            "ignored" => {}
            "conflicted" => c.conflicted += 1,
            _ => {
                c.staged += u64::from(e.staged != ".");
                c.unstaged += u64::from(e.unstaged != ".");
            }
        }
        if s.entries.len() < max {
            s.entries.push(e);
        } else {
            s.entries_omitted += 1;
        }
    };
    while let Some(rec) = records.next() {
        let bad = || format!("unexpected git status record '{}'", lossy(rec));
        match rec[0] {
            b'#' => branch_header(&mut s.branch, rec),
            b'1' => {
                let f = fields(rec, 9).ok_or_else(bad)?;
                keep(&mut s, entry(f[1], f[8], None, None));
            }
            b'2' => {
                let f = fields(rec, 10).ok_or_else(bad)?;
                // `-z`: the original path is the next NUL-separated record.
                let from = records.next().ok_or_else(bad)?;
                let score = f[8].get(1..).and_then(|n| std::str::from_utf8(n).ok());
                let score = score.and_then(|n| n.parse().ok());
                keep(&mut s, entry(f[1], f[9], Some(from), score));
            }
            b'u' => {
                let f = fields(rec, 11).ok_or_else(bad)?;
                let mut e = entry(f[1], f[10], None, None);
                e.kind = "conflicted".into();
                keep(&mut s, e);
            }
            b'?' | b'!' => {
                let path = rec.get(2..).ok_or_else(bad)?;
                let kind = if rec[0] == b'?' {
                    "untracked"
                } else {
                    "ignored"
                };
                let mark = column(rec[0]);
                keep(
                    &mut s,
                    StatusEntry {
                        path: lossy(path),
                        from: None,
                        kind: kind.into(),
                        staged: mark.clone(),
                        unstaged: mark,
                        score: None,
                    },
                );
            }
            _ => return Err(bad()),
        }
    }
    Ok(s)
}

fn entry(xy: &[u8], path: &[u8], from: Option<&[u8]>, score: Option<u32>) -> StatusEntry {
    StatusEntry {
        path: lossy(path),
        from: from.map(lossy),
        kind: kind_of(xy).into(),
        staged: column(xy.first().copied().unwrap_or(b'.')),
        unstaged: column(xy.get(1).copied().unwrap_or(b'.')),
        score,
    }
}

fn branch_header(b: &mut BranchInfo, rec: &[u8]) {
    let text = lossy(rec);
    let mut words = text.splitn(3, ' ');
    let (_, key, value) = (words.next(), words.next(), words.next().unwrap_or(""));
    match key {
        Some("branch.oid") if value != "(initial)" => b.head = Some(value.into()),
        Some("branch.head") if value == "(detached)" => b.detached = true,
        Some("branch.head") => b.branch = Some(value.into()),
        Some("branch.upstream") => b.upstream = Some(value.into()),
        Some("branch.ab") => {
            let mut n = value
                .split(' ')
                .map(|v| v.get(1..).and_then(|n| n.parse::<u64>().ok()));
            b.ahead = n.next().flatten();
            b.behind = n.next().flatten();
        }
        _ => {}
    }
}

/// Lines added and deleted in one file.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct FileStat {
    /// The path (after a rename).
    pub path: String,
    /// The path before a rename or copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Lines added; absent for a binary file.
    pub added: Option<u64>,
    /// Lines deleted; absent for a binary file.
    pub deleted: Option<u64>,
    /// Git treats the file as binary.
    pub binary: bool,
}

/// A diffstat: per-file counts (at most `max`) and totals over every file.
#[derive(Debug, Default, Clone, Serialize, JsonSchema, PartialEq)]
pub struct DiffStat {
    /// Files, at most `max_entries`.
    pub files: Vec<FileStat>,
    /// Files left out past `max_entries`.
    pub files_omitted: u64,
    /// Files changed.
    pub files_changed: u64,
    /// Lines added over all text files.
    pub insertions: u64,
    /// Lines deleted over all text files.
    pub deletions: u64,
}

/// Parses `git diff --numstat -z`: `A\tD\tpath\0`, or `A\tD\t\0from\0to\0` for a rename;
/// binary files have `-` counts.
pub fn numstat(out: &[u8], max: usize) -> Result<DiffStat, String> {
    let mut d = DiffStat::default();
    let mut records = out.split(|b| *b == 0);
    while let Some(rec) = records.next() {
        if rec.is_empty() {
            continue;
        }
        let bad = || format!("unexpected git numstat record '{}'", lossy(rec));
        let f: Vec<&[u8]> = rec.splitn(3, |b| *b == b'\t').collect();
        let [a, del, path] = f[..] else {
            return Err(bad());
        };
        let (path, from) = if path.is_empty() {
            let from = records.next().ok_or_else(bad)?;
            let to = records.next().ok_or_else(bad)?;
            (to, Some(from))
        } else {
            (path, None)
        };
        let count = |v: &[u8]| std::str::from_utf8(v).ok().and_then(|v| v.parse().ok());
        let (added, deleted) = (count(a), count(del));
        let binary = a == b"-" && del == b"-";
        if !binary && (added.is_none() || deleted.is_none()) {
            return Err(bad());
        }
        d.files_changed += 1;
        d.insertions += added.unwrap_or(0);
        d.deletions += deleted.unwrap_or(0);
        if d.files.len() < max {
            d.files.push(FileStat {
                path: lossy(path),
                from: from.map(lossy),
                added,
                deleted,
                binary,
            });
        } else {
            d.files_omitted += 1;
        }
    }
    Ok(d)
}

/// The `--format` of `git log -z` that [`log`] parses: fields split by the unit separator,
/// the raw message last (it may hold anything but NUL).
pub const LOG_FORMAT: &str =
    "--format=%H%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%cn%x1f%ce%x1f%cI%x1f%D%x1f%B";

/// One commit.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Commit {
    /// Full hash.
    pub sha: String,
    /// Parent hashes (two or more for a merge).
    pub parents: Vec<String>,
    /// Author name.
    pub author: String,
    /// Author e-mail.
    pub author_email: String,
    /// Author date, ISO 8601.
    pub author_date: String,
    /// Committer name.
    pub committer: String,
    /// Committer e-mail.
    pub committer_email: String,
    /// Committer date, ISO 8601.
    pub committer_date: String,
    /// Branch and tag names pointing here.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refs: Vec<String>,
    /// The first line of the message.
    pub subject: String,
    /// The rest of the message, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// Parses `git log -z` with [`LOG_FORMAT`]; `max_body` bytes of each body are kept.
pub fn log(out: &[u8], max_body: usize) -> Result<Vec<Commit>, String> {
    out.split(|b| *b == 0)
        .filter(|r| !r.is_empty())
        .map(|rec| {
            let text = lossy(rec);
            // A `--patch`/`--stat` tail never comes with this format, but show's leading
            // newline may: trim only line ends.
            let text = text.trim_start_matches('\n');
            let f: Vec<&str> = text.splitn(10, '\x1f').collect();
            let [sha, parents, an, ae, ad, cn, ce, cd, refs, message] = f[..] else {
                return Err(format!("unexpected git log record '{}'", text));
            };
            let message = message.trim_end();
            let (subject, body) = message.split_once('\n').unwrap_or((message, ""));
            let body = body.trim();
            Ok(Commit {
                sha: sha.into(),
                parents: parents.split_whitespace().map(String::from).collect(),
                author: an.into(),
                author_email: ae.into(),
                author_date: ad.into(),
                committer: cn.into(),
                committer_email: ce.into(),
                committer_date: cd.into(),
                refs: refs
                    .split(", ")
                    .filter(|r| !r.is_empty())
                    .map(String::from)
                    .collect(),
                subject: subject.into(),
                body: (!body.is_empty()).then(|| cut(body, max_body)),
            })
        })
        .collect()
}

/// `s` cut to at most `max` bytes on a character boundary, marked when cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_reads_branch_renames_conflicts_and_odd_names() {
        let out = b"# branch.oid 1234abcd\0# branch.head main\0# branch.upstream origin/main\0\
# branch.ab +2 -3\0\
1 .M N... 100644 100644 100644 aaa bbb has space.txt\0\
2 R. N... 100644 100644 100644 aaa aaa R87 new name\0old name\0\
u UU N... 100644 100644 100644 100644 a b c both.txt\0\
? new\nline\0! ignored.log\0";
        let s = status(out, 10).unwrap();
        assert_eq!(s.branch.branch.as_deref(), Some("main"));
        assert_eq!(s.branch.upstream.as_deref(), Some("origin/main"));
        assert_eq!((s.branch.ahead, s.branch.behind), (Some(2), Some(3)));
        assert_eq!(s.entries[0].path, "has space.txt");
        assert_eq!(s.entries[0].unstaged, "M");
        assert_eq!(s.entries[1].kind, "renamed");
        assert_eq!(s.entries[1].from.as_deref(), Some("old name"));
        assert_eq!(s.entries[1].score, Some(87));
        assert_eq!(s.entries[2].kind, "conflicted");
        assert_eq!(s.entries[3].path, "new\nline");
        assert_eq!(s.counts.conflicted, 1);
        assert_eq!(s.counts.untracked, 1);
        assert!(!s.tracked_clean());

        let s = status(b"# branch.oid (initial)\0# branch.head (detached)\0", 10).unwrap();
        assert!(s.branch.detached && s.branch.head.is_none() && s.tracked_clean());

        let s = status(b"? a\0? b\0? c\0", 2).unwrap();
        assert_eq!((s.entries.len(), s.entries_omitted), (2, 1));
        assert!(status(b"1 broken\0", 2).is_err());
    }

    #[test]
    fn numstat_reads_binary_and_renames() {
        let out = b"3\t1\ta.txt\0-\t-\timg.png\0\
0\t0\t\0old dir/x\0new dir/x\0";
        let d = numstat(out, 10).unwrap();
        assert_eq!(d.files_changed, 3);
        assert_eq!((d.insertions, d.deletions), (3, 1));
        assert!(d.files[1].binary && d.files[1].added.is_none());
        assert_eq!(d.files[2].path, "new dir/x");
        assert_eq!(d.files[2].from.as_deref(), Some("old dir/x"));
        assert_eq!(numstat(out, 1).unwrap().files_omitted, 2);
        assert!(numstat(b"x\ty\tz\0", 1).is_err());
    }

    #[test]
    fn log_reads_merges_and_multiline_messages() {
        let rec = "abc\x1fp1 p2\x1fAnn\x1fa@x\x1f2024-01-01T00:00:00+00:00\x1fCon\x1fc@x\x1f\
2024-01-02T00:00:00+00:00\x1fHEAD -> main, tag: v1\x1fMerge it\n\nwith \x1f body\n";
        let out = format!("{rec}\0{rec}\0");
        let c = log(out.as_bytes(), 100).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].parents, ["p1", "p2"]);
        assert_eq!(c[0].refs, ["HEAD -> main", "tag: v1"]);
        assert_eq!(c[0].subject, "Merge it");
        assert_eq!(c[0].body.as_deref(), Some("with \x1f body"));
        assert_eq!(
            log(out.as_bytes(), 3).unwrap()[0].body.as_deref(),
            Some("wit…")
        );
    }
}
