//! The resource limiter of one call's store: wasmtime's [`StoreLimits`], which also remembers
//! that it stopped the plugin for growing past its memory limit — so the runtime can say so
//! from a fact, not by reading the error's text.

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

/// The limits of one store, and whether the memory limit was hit.
pub struct Limiter {
    limits: StoreLimits,
    memory_hit: bool,
}

impl Limiter {
    /// Linear memory up to `memory_bytes`; growing past it traps (a plugin whose allocator
    /// ignored a failed grow would otherwise fail in ways that hide the cause).
    pub fn new(memory_bytes: usize) -> Self {
        Self {
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .instances(64)
                .tables(64)
                .memories(16)
                .trap_on_grow_failure(true)
                .build(),
            memory_hit: false,
        }
    }

    /// Whether a memory grow was refused in this store.
    pub fn memory_hit(&self) -> bool {
        self.memory_hit
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum);
        if !matches!(allowed, Ok(true)) {
            self.memory_hit = true;
        }
        allowed
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory_hit = true;
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_a_refused_memory_grow_only() {
        let mut l = Limiter::new(1 << 20);
        assert!(matches!(l.memory_growing(0, 1 << 19, None), Ok(true)));
        assert!(!l.memory_hit(), "a grow within the limit is not a hit");
        assert!(l.memory_growing(1 << 19, 2 << 20, None).is_err());
        assert!(l.memory_hit());
    }
}
