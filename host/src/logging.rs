//! Logs on stderr, scrubbed. stdout belongs to JSON-RPC; stderr is read by people and by MCP
//! clients that keep it, and at `debug` the libraries infra uses log whole requests, SQL
//! parameters and responses. So every log line goes through the same redactor as tool outputs,
//! artifacts and the audit log before it is written.

use std::io::Write;

use crate::redact::Redactor;

/// One log event, buffered so that a secret split across the formatter's writes is still found.
struct Scrubbed<W: Write> {
    redactor: Redactor,
    buf: Vec<u8>,
    out: W,
}

impl<W: Write> Write for Scrubbed<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let clean = self.redactor.scrub_bytes(&self.buf).into_owned();
            self.buf.clear();
            self.out.write_all(&clean)?;
        }
        Ok(())
    }
}

impl<W: Write> Drop for Scrubbed<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Installs the stderr logger: `INFRA_LOG` sets the filter (default `warn`); every line is
/// scrubbed of the secrets `redactor` knows, including those it learns later.
pub fn init(redactor: Redactor) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("INFRA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_writer(move || Scrubbed {
            redactor: redactor.clone(),
            buf: Vec::with_capacity(256),
            out: std::io::stderr(),
        })
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_written_in_pieces_is_scrubbed_as_a_whole() {
        let r = Redactor::default();
        r.add("hunter2-secret-value");
        let mut w = Scrubbed {
            redactor: r,
            buf: Vec::new(),
            out: Vec::new(),
        };
        w.write_all(b"login with hunter2-").unwrap();
        w.write_all(b"secret-value done\n").unwrap();
        assert!(
            w.out.is_empty(),
            "nothing is written before the event is whole"
        );
        w.flush().unwrap();
        let text = String::from_utf8(std::mem::take(&mut w.out)).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("login with") && text.contains("done"),
            "{text}"
        );
    }
}
