//! The compile cache: components precompiled once, stored by sha256 of the wasm and the engine's
//! compatibility hash, so a warm start does no Cranelift work.
//!
//! A cache entry is native code: deserializing one is `unsafe` for any file infra did not write
//! itself, and the code that runs comes from the entry, not from the `.wasm` whose sha256 the
//! policy pins. So every entry is authenticated: its last 32 bytes are an HMAC-SHA256, under a
//! per-installation key (`key`, mode `0600`, in the cache directory), over the plugin's wasm
//! sha256, the engine's compatibility hash and the serialized bytes. An entry that was swapped
//! (another plugin's entry renamed), corrupted, or planted by anyone without the key is refused,
//! counted in [`CacheStats::refused`], reported by `infra plugins`, and replaced by a fresh
//! compile. The bytes that are checked are the bytes that are deserialized (one read into memory),
//! so the file cannot change between the check and the use.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasmtime::Engine;
use wasmtime::component::Component;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the authentication tag at the end of every entry.
const TAG_LEN: usize = 32;

/// Precompiled components on disk.
pub struct Cache {
    dir: PathBuf,
    engine_key: String,
    /// `None` when the cache directory or its key is unusable: then nothing is read from or
    /// written to the cache (every start compiles), and the reason is logged once.
    key: Option<[u8; 32]>,
    hits: AtomicU64,
    misses: AtomicU64,
    refused: Mutex<Vec<RefusedEntry>>,
}

/// How the cache has been used since start.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CacheStats {
    /// Components loaded from the cache.
    pub hits: u64,
    /// Components compiled.
    pub misses: u64,
    /// Entries that failed authentication or could not be loaded, and were recompiled.
    pub refused: Vec<RefusedEntry>,
}

/// A cache entry that was not used, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RefusedEntry {
    /// The entry's file.
    pub file: String,
    /// Why it was refused.
    pub reason: String,
}

impl Cache {
    /// A cache in `dir` for this engine. The directory is created private (`0700`); one owned by
    /// another user or writable by others disables the cache (with a warning) rather than trusting it.
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let key = match crate::state::private_dir(&dir, "compile cache")
            .and_then(|()| load_or_create_key(&dir.join("key")))
        {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::warn!("compile cache disabled, every start compiles: {e:#}");
                None
            }
        };
        Self {
            dir,
            engine_key: format!("{:016x}", h.finish()),
            key,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            refused: Mutex::new(Vec::new()),
        }
    }

    /// The component for `wasm` (whose hex sha256 is `sha256`), from the cache or compiled now.
    pub fn component(
        &self,
        engine: &Engine,
        wasm: &[u8],
        sha256: &str,
    ) -> anyhow::Result<(Component, bool)> {
        let path = self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key));
        if let Some(key) = &self.key {
            match self.load(engine, key, &path, sha256) {
                Ok(Some(c)) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok((c, true));
                }
                Ok(None) => {}
                Err(reason) => {
                    tracing::warn!("compile cache entry {} refused: {reason}", path.display());
                    self.refused
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(RefusedEntry {
                            file: path.display().to_string(),
                            reason,
                        });
                }
            }
        }
        let component = Component::new(engine, wasm)
            .map_err(anyhow::Error::from)
            .context("compiling the plugin component")?;
        self.misses.fetch_add(1, Ordering::Relaxed);
        if let Some(key) = &self.key
            && let Err(e) = self.store(key, &path, sha256, &component)
        {
            tracing::warn!(
                "could not write the compile cache {}: {e:#}; the next start compiles again",
                path.display()
            );
        }
        Ok((component, false))
    }

    /// The entry at `path` when it exists and is authentic; `Err` says why it was refused.
    fn load(
        &self,
        engine: &Engine,
        key: &[u8; 32],
        path: &Path,
        sha256: &str,
    ) -> Result<Option<Component>, String> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read it ({e})")),
        };
        if bytes.len() < TAG_LEN {
            return Err("too short to carry an authentication tag".into());
        }
        let (code, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        self.mac(key, sha256, code)
            .verify_slice(tag)
            .map_err(|_| {
                "its authentication tag does not match (not written by this installation for this plugin and engine)".to_string()
            })?;
        // SAFETY: `code` is exactly the bytes `Component::serialize` produced in this
        // installation for this wasm and engine configuration: the HMAC under the private key
        // proves it, and it is checked on the in-memory copy that is deserialized.
        unsafe { Component::deserialize(engine, code) }
            .map(Some)
            .map_err(|e| format!("wasmtime could not load it ({e:#})"))
    }

    fn mac(&self, key: &[u8; 32], sha256: &str, code: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
        // Length-prefixed fields: no two different (sha256, engine) pairs give the same input.
        for field in [sha256.as_bytes(), self.engine_key.as_bytes()] {
            mac.update(&(field.len() as u64).to_le_bytes());
            mac.update(field);
        }
        mac.update(code);
        mac
    }

    fn store(
        &self,
        key: &[u8; 32],
        path: &Path,
        sha256: &str,
        component: &Component,
    ) -> anyhow::Result<()> {
        let mut bytes = component.serialize()?;
        let tag = self.mac(key, sha256, &bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag);
        // A random, exclusively created temp name (mode 0600): no one can pre-create or race it.
        let mut tmp = tempfile::Builder::new()
            .prefix(".entry-")
            .tempfile_in(&self.dir)?;
        tmp.write_all(&bytes)?;
        tmp.persist(path)?;
        Ok(())
    }

    /// Hits, misses and refused entries so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            refused: self
                .refused
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

/// Reads the installation's cache key, creating it (32 random bytes, mode `0600`) when missing.
/// The key is written whole to a temp file and linked into place without clobbering, so two
/// processes starting at once agree on one key and neither reads a half-written one. A key
/// another user owns or others can read is refused: it would let them forge entries.
fn load_or_create_key(path: &Path) -> anyhow::Result<[u8; 32]> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let key: [u8; 32] = rand::random();
    let mut tmp = tempfile::Builder::new()
        .prefix(".key-")
        .tempfile_in(dir)
        .with_context(|| format!("creating the cache key in {}", dir.display()))?;
    tmp.write_all(&key)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing the cache key in {}", dir.display()))?;
    match tmp.persist_noclobber(path) {
        Ok(_) => return Ok(key),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(e.error)
                .with_context(|| format!("creating the cache key {}", path.display()));
        }
    }
    let meta = std::fs::symlink_metadata(path)
        .with_context(|| format!("reading the cache key {}", path.display()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.is_file() || meta.uid() != me || meta.permissions().mode() & 0o077 != 0 {
        anyhow::bail!(
            "the cache key {} must be a regular file of yours with mode 0600 (it is uid {}, mode {:03o}); delete it and the cache directory's entries, and infra makes a new one",
            path.display(),
            meta.uid(),
            meta.permissions().mode() & 0o777
        );
    }
    let bytes =
        std::fs::read(path).with_context(|| format!("reading the cache key {}", path.display()))?;
    bytes.as_slice().try_into().map_err(|_| {
        anyhow::anyhow!(
            "the cache key {} is damaged ({} bytes, not 32); delete it and infra makes a new one",
            path.display(),
            bytes.len()
        )
    })
}
