//! Opening a log a crash left torn: the last complete record is found and a torn last line is
//! moved aside, so it is recorded rather than silently dropped or accepted.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::GENESIS;

pub(super) struct Tail {
    pub(super) next_seq: u64,
    pub(super) prev: String,
    pub(super) len: u64,
}

pub(super) struct Torn {
    pub(super) bytes: u64,
    pub(super) sha256: String,
    pub(super) moved_to: PathBuf,
}

/// The seq and hash of a line, if it is a chain record.
fn chain_fields(line: &[u8]) -> Option<(u64, String)> {
    let v: Value = serde_json::from_slice(line).ok()?;
    let seq = v.get("seq")?.as_u64()?;
    let hash = v.get("hash")?.as_str()?;
    (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then(|| (seq, hash.into()))
}

/// Finds the end of the chain. A last line that lacks its newline, or that ends in a newline
/// but is not a record, is torn: its bytes are moved to `<log>.torn-<unix time>` and the file
/// is cut back to the last complete record.
pub(super) fn recover_tail(file: &mut File, path: &Path) -> Result<(Tail, Option<Torn>)> {
    let len = file.metadata()?.len();
    let damaged = |what: &str| {
        anyhow::anyhow!(
            "audit log {} is damaged: {what}; run `infra audit verify` to see where, then move the \
             file aside to start a new chain",
            path.display()
        )
    };
    let mut keep = rfind_byte(file, len, b'\n')?.map_or(0, |p| p + 1);
    let mut last = None;
    if keep > 0 {
        let start = rfind_byte(file, keep - 1, b'\n')?.map_or(0, |p| p + 1);
        let line = read_range(file, start, keep - 1)?;
        match chain_fields(&line) {
            Some(fields) => last = Some(fields),
            // A torn write is a prefix of a JSON line, never whole JSON: a JSON line that is
            // not a record was put there, which is for `verify` to report, not for us to hide.
            None if serde_json::from_slice::<Value>(&line).is_ok() => {
                return Err(damaged("its last line is JSON but not an audit record"));
            }
            None if keep == len => {
                // No unterminated tail, but the final line is not a record: the torn write
                // happened to end in a newline. That line is the torn part.
                keep = start;
                if keep > 0 {
                    let start = rfind_byte(file, keep - 1, b'\n')?.map_or(0, |p| p + 1);
                    let line = read_range(file, start, keep - 1)?;
                    last = Some(
                        chain_fields(&line)
                            .ok_or_else(|| damaged("its last two lines are not audit records"))?,
                    );
                }
            }
            None => {
                return Err(damaged(
                    "the line before its torn end is not an audit record",
                ));
            }
        }
    }
    let torn = if keep < len {
        let bytes = read_range(file, keep, len)?;
        let moved_to = write_torn_file(path, &bytes)?;
        file.set_len(keep).with_context(|| {
            format!(
                "cannot cut the torn end off audit log {}; check it is writable",
                path.display()
            )
        })?;
        file.sync_all()?;
        Some(Torn {
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
            moved_to,
        })
    } else {
        None
    };
    let (next_seq, prev) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_string()),
    };
    Ok((
        Tail {
            next_seq,
            prev,
            len: keep,
        },
        torn,
    ))
}

fn write_torn_file(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let unix = OffsetDateTime::now_utc().unix_timestamp();
    let base = format!("{}.torn-{unix}", path.display());
    for n in 0..1000 {
        let candidate = PathBuf::from(if n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&candidate) {
            Ok(mut f) => {
                f.write_all(bytes)?;
                f.sync_all()?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot save the torn end of the audit log to {}; check the directory is writable",
                        candidate.display()
                    )
                });
            }
        }
    }
    bail!(
        "cannot find a free name for the torn end of audit log {}; remove old {base}-* files",
        path.display()
    )
}

/// Position of the last `byte` in `file[..end]`.
fn rfind_byte(file: &mut File, end: u64, byte: u8) -> Result<Option<u64>> {
    const CHUNK: u64 = 64 * 1024;
    let mut hi = end;
    let mut buf = vec![0u8; CHUNK as usize];
    while hi > 0 {
        let lo = hi.saturating_sub(CHUNK);
        let n = (hi - lo) as usize;
        file.seek(SeekFrom::Start(lo))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == byte) {
            return Ok(Some(lo + i as u64));
        }
        hi = lo;
    }
    Ok(None)
}

fn read_range(file: &mut File, start: u64, end: u64) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; (end - start) as usize];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut buf)?;
    Ok(buf)
}
