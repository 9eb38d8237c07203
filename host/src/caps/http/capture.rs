//! A response body held in host memory: scrubbed first, then cut to the cap.
//!
//! Cutting first hands the scrubber a secret's first characters with the rest gone, and a
//! partial secret no longer matches. So the scrubber reads past the cut (its look-ahead is the
//! longest secret), and only bytes it has released — clean, or already replaced — are kept.

use crate::redact::{Redactor, StreamScrubber};

/// A capped, scrubbed body being read.
pub struct Capture {
    scrubber: StreamScrubber,
    body: Vec<u8>,
    cap: usize,
    full: bool,
}

impl Capture {
    /// An empty body that keeps at most `cap` bytes, scrubbed of the secrets `redactor` knows.
    pub fn new(redactor: &Redactor, cap: u64) -> Capture {
        Capture {
            scrubber: StreamScrubber::new(redactor),
            body: Vec::new(),
            cap: usize::try_from(cap).unwrap_or(usize::MAX),
            full: false,
        }
    }

    /// Takes the next chunk of the body; false once more than `cap` scrubbed bytes are known,
    /// when reading further would only be thrown away.
    pub fn push(&mut self, chunk: &[u8]) -> bool {
        self.body.extend_from_slice(&self.scrubber.push(chunk));
        self.full = self.body.len() > self.cap;
        !self.full
    }

    /// The body, at most `cap` bytes, and whether it was cut.
    pub fn finish(self) -> (Vec<u8>, bool) {
        let Capture {
            scrubber,
            mut body,
            cap,
            full,
        } = self;
        // The scrubber's held-back tail may be the start of a secret whose end was never read:
        // it is released only when the body really ended there.
        if !full {
            body.extend_from_slice(&scrubber.finish());
        }
        let truncated = body.len() > cap;
        body.truncate(cap);
        (body, truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `body` split at `splits`, stopping when the capture says so, like a reader would.
    fn capture(redactor: &Redactor, body: &[u8], splits: &[usize], cap: u64) -> (Vec<u8>, bool) {
        let mut c = Capture::new(redactor, cap);
        let mut at = 0;
        let mut cuts: Vec<usize> = splits.iter().map(|s| s % (body.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(body.len());
        for cut in cuts {
            if cut < at {
                continue;
            }
            if !c.push(&body[at..cut]) {
                break;
            }
            at = cut;
        }
        c.finish()
    }

    #[test]
    fn a_cut_inside_a_secret_keeps_none_of_it() {
        let r = Redactor::new();
        r.add("s3cr3t-t0ken");
        let body = b"token: s3cr3t-t0ken and more";
        for cap in 0..body.len() as u64 + 4 {
            let (kept, truncated) = capture(&r, body, &[3, 9, 15], cap);
            let text = String::from_utf8_lossy(&kept);
            assert!(!text.contains("s3cr"), "cap {cap}: {text}");
            assert_eq!(kept.len() as u64, cap.min(kept.len() as u64));
            let whole = r.scrub_bytes(body);
            assert_eq!(truncated, (cap as usize) < whole.len(), "cap {cap}");
            assert_eq!(&kept[..], &whole[..kept.len()], "cap {cap}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Whatever the cap and however the body arrives in chunks, the kept body is the scrubbed
        /// body cut to the cap: no prefix of the secret longer than the redactor's minimum
        /// survives, and nothing past the cap is kept.
        #[test]
        fn scrubbed_then_cut(
            secret in "[A-Za-z0-9]{8,40}",
            before in "[ .:{}\"-]{0,60}",
            after in "[ .:{}\"-]{0,60}",
            repeats in 1usize..3,
            splits in proptest::collection::vec(any::<usize>(), 0..8),
            cap in 0u64..200,
        ) {
            let r = Redactor::new();
            r.add(&secret);
            let body = format!("{before}{}{after}", secret.repeat(repeats)).into_bytes();
            let (kept, truncated) = capture(&r, &body, &splits, cap);
            let whole = r.scrub_bytes(&body);
            prop_assert_eq!(&kept[..], &whole[..kept.len()]);
            prop_assert_eq!(kept.len(), whole.len().min(cap as usize));
            prop_assert_eq!(truncated, whole.len() > cap as usize);
            let text = String::from_utf8_lossy(&kept);
            prop_assert!(!text.contains(&secret[..crate::redact::MIN_SECRET_CHARS]), "{}", text);
        }
    }
}
