//! The compile cache: components precompiled once, stored by sha256 of the wasm and the engine's
//! compatibility hash, so a warm start does no Cranelift work.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Precompiled components on disk.
pub struct Cache {
    dir: PathBuf,
    engine_key: String,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// How the cache has been used since start.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct CacheStats {
    /// Components loaded from the cache.
    pub hits: u64,
    /// Components compiled.
    pub misses: u64,
}

impl Cache {
    /// A cache in `dir` for this engine.
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Self {
            dir,
            engine_key: format!("{:016x}", h.finish()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
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
        if path.is_file() {
            // SAFETY: the file was written by `Component::serialize` of this same engine
            // configuration (the name carries the engine's compatibility hash), in a directory
            // only infra writes; wasmtime still checks its header and refuses a mismatch.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok((c, true));
                }
                Err(e) => tracing::warn!(
                    "cache entry {} unusable ({e:#}); recompiling",
                    path.display()
                ),
            }
        }
        let component = Component::new(engine, wasm)
            .map_err(anyhow::Error::from)
            .context("compiling the plugin component")?;
        self.misses.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.store(&path, &component) {
            tracing::warn!(
                "could not write the compile cache {}: {e:#}; the next start compiles again",
                path.display()
            );
        }
        Ok((component, false))
    }

    fn store(&self, path: &std::path::Path, component: &Component) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let bytes = component.serialize()?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    /// Hits and misses so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}
