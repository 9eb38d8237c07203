//! The one way a capability streams bytes from elsewhere into an artifact (an HTTP download, an
//! SFTP read, a COPY export): scrubbed of known secrets on the way in, held to a byte cap, and
//! stored only whole — past the cap the artifact is dropped, never kept cut.
//!
//! The scrubber sees the bytes before anything is measured or written, so a secret is replaced
//! before a cap could split it (a partial secret would no longer match).

use super::{ArtifactInfo, ArtifactMeta, ArtifactStore, ArtifactWriter};
use crate::redact::{Redactor, StreamScrubber};

/// Input is gathered to about this many bytes before it is scrubbed: sources such as COPY send
/// one small message per row, and the scrubber and the file work best on large pieces.
const SCRUB_BATCH: usize = 256 * 1024;

/// Which bytes a sink's cap counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measured {
    /// The bytes as they arrive: the cap is on the source's size (a download, a remote file),
    /// which is what the caller asked about.
    Received,
    /// The scrubbed bytes the artifact holds: the cap is on the artifact.
    Stored,
}

/// Why a sink stopped.
#[derive(Debug)]
pub enum SinkError {
    /// More than the cap; nothing was stored. The caller says what the cap was and what to do.
    TooLarge,
    /// The store failed; the error says why.
    Store(anyhow::Error),
}

/// An artifact being streamed in, scrubbed and capped. Dropped before [`ScrubbedSink::finish`]
/// (an error, a cancelled call), it leaves nothing behind.
pub struct ScrubbedSink {
    writer: ArtifactWriter,
    scrubber: StreamScrubber,
    pending: Vec<u8>,
    cap: u64,
    measured: Measured,
    received: u64,
    stored: u64,
}

impl ScrubbedSink {
    /// Starts an artifact described by `meta`, scrubbed of what `redactor` knows, holding at
    /// most `cap` bytes counted as `measured` says.
    pub async fn open(
        store: &ArtifactStore,
        redactor: &Redactor,
        meta: ArtifactMeta,
        cap: u64,
        measured: Measured,
    ) -> anyhow::Result<ScrubbedSink> {
        Ok(ScrubbedSink {
            writer: store.writer(meta).await?,
            scrubber: StreamScrubber::new(redactor),
            pending: Vec::new(),
            cap,
            measured,
            received: 0,
            stored: 0,
        })
    }

    /// Takes the next bytes of the stream.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), SinkError> {
        self.received += chunk.len() as u64;
        if self.measured == Measured::Received && self.received > self.cap {
            return Err(SinkError::TooLarge);
        }
        self.pending.extend_from_slice(chunk);
        if self.pending.len() >= SCRUB_BATCH {
            let scrubbed = self.scrubber.push(&std::mem::take(&mut self.pending));
            self.store(&scrubbed).await?;
        }
        Ok(())
    }

    /// Bytes taken so far, as they arrived.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Ends the stream: the rest is scrubbed and stored, and the artifact published.
    pub async fn finish(mut self) -> Result<ArtifactInfo, SinkError> {
        let mut rest = self.scrubber.push(&std::mem::take(&mut self.pending));
        rest.extend(self.scrubber.clone().finish());
        self.store(&rest).await?;
        self.writer.finish().await.map_err(SinkError::Store)
    }

    async fn store(&mut self, scrubbed: &[u8]) -> Result<(), SinkError> {
        self.stored += scrubbed.len() as u64;
        if self.measured == Measured::Stored && self.stored > self.cap {
            return Err(SinkError::TooLarge);
        }
        self.writer.write(scrubbed).await.map_err(SinkError::Store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::ArtifactId;

    async fn sink(dir: &std::path::Path, cap: u64, measured: Measured) -> ScrubbedSink {
        let store = ArtifactStore::open(dir).unwrap();
        let r = Redactor::new();
        r.add("s3cr3t-t0ken-value");
        ScrubbedSink::open(&store, &r, ArtifactMeta::default(), cap, measured)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_secret_split_across_chunks_is_stored_scrubbed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(dir.path(), 1000, Measured::Stored).await;
        for chunk in [&b"a s3cr3t-t"[..], b"0ken-val", b"ue b"] {
            s.write(chunk).await.unwrap();
        }
        let info = s.finish().await.unwrap();
        let id = ArtifactId::from_uri(&info.uri).unwrap();
        let data = std::fs::read(dir.path().join(id.as_str())).unwrap();
        assert_eq!(data, b"a [REDACTED] b");
    }

    #[tokio::test]
    async fn past_the_cap_nothing_is_stored() {
        for measured in [Measured::Received, Measured::Stored] {
            let dir = tempfile::tempdir().unwrap();
            // Dropping the sink after a refused write (the block's end) removes its temp file.
            let r = {
                let mut s = sink(dir.path(), 10, measured).await;
                match s.write(b"0123456789abc").await {
                    Err(e) => Err(e),
                    Ok(()) => s.finish().await.map(|_| ()),
                }
            };
            assert!(matches!(r, Err(SinkError::TooLarge)), "{measured:?}: {r:?}");
            let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert!(left.is_empty(), "{measured:?}: {left:?}");
        }
    }
}
