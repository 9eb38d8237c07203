//! The wasm runtime: one [`wasmtime::Engine`], plugins loaded once into an `InstancePre`, and a
//! fresh `Store` per call with a deadline (epoch interruption), a memory limit and an output cap.

mod cache;
pub mod imports;
pub mod manifest;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
    UpdateDeadline,
};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

pub use cache::CacheStats;
pub use manifest::Manifest;

use crate::caps::{CallCtx, PluginHostPre, StoreState};
use crate::error_kind::ErrorKind;
use crate::flags::Flags;
use crate::limiter::Limiter;
use crate::tool::{Annotations, ToolSpec};

/// Plugin instances alive at once (calls in flight, across plugins): one beyond fails with an
/// error rather than waiting, so this is set far above any client's concurrency.
const POOL_INSTANCES: u32 = 1000;
/// How long past the call's deadline wasm may still run, to report what a host call that hit
/// the deadline told it. The outer bound in [`Runtime::call`] is twice as long.
const GUEST_GRACE: Duration = Duration::from_millis(200);

/// How often the epoch advances; deadlines are whole ticks.
const TICK: Duration = Duration::from_millis(5);

/// Bytes of stdout/stderr a plugin may write per call (captured, shown in errors).
const STDIO_CAP: usize = 64 * 1024;

/// The engine, the linker and the compile cache, shared by all plugins.
pub struct Runtime {
    engine: Engine,
    linker: Linker<StoreState>,
    cache: cache::Cache,
}

/// A loaded plugin: its identity, what it imports, its tools, and a ready-to-instantiate form.
pub struct Plugin {
    /// Manifest of the plugin.
    pub manifest: Manifest,
    /// Hex sha256 of the wasm.
    pub sha256: String,
    /// Where it came from: `embedded` or a file path.
    pub source: String,
    /// Every import of the component, as read from the binary.
    pub imports: Vec<String>,
    /// The tools it exports.
    pub tools: Vec<ToolSpec>,
    /// Whether the compiled code came from the cache.
    pub cache_hit: bool,
    pre: PluginHostPre<StoreState>,
}

/// The plugin that provides tool `name` but is off under `flags`, with why.
pub fn gated_tool<'a>(
    plugins: &'a [Plugin],
    name: &str,
    flags: Flags,
) -> Option<(&'a Plugin, String)> {
    plugins.iter().find_map(|p| {
        let why = p.manifest.gated(flags)?;
        p.tools.iter().any(|t| t.name == name).then_some((p, why))
    })
}

/// Limits of one call.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Wall-clock deadline.
    pub timeout: Duration,
    /// Linear memory the instance may grow to.
    pub memory_bytes: usize,
    /// Largest result the plugin may return.
    pub output_bytes: usize,
}

/// Why a plugin call did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin returned an error for the agent.
    #[error("{message}")]
    Tool {
        /// Why it failed, as the plugin says.
        kind: ErrorKind,
        /// The plugin's message.
        message: String,
        /// The field at fault.
        field: Option<String>,
        /// Extra detail.
        detail: Option<serde_json::Value>,
    },
    /// The deadline passed and the instance was stopped.
    #[error(
        "the call ran past its {0} ms deadline and was stopped; raise timeout_ms if the work is expected to take longer"
    )]
    Timeout(u128),
    /// The instance tried to grow past its memory limit.
    #[error(
        "the plugin exceeded its memory limit of {0} MiB and was stopped; raise memory_mib for it in the policy if that is expected"
    )]
    Memory(usize),
    /// The result was larger than the output cap.
    #[error(
        "the plugin returned {0} bytes, more than the {1}-byte output cap; ask for less (filters, max_bytes) or raise limits.output_bytes"
    )]
    OutputTooLarge(usize, usize),
    /// The plugin trapped (a bug in the plugin).
    #[error("the plugin crashed: {0}")]
    Trap(String),
}

impl CallError {
    /// The kind the agent sees: the plugin's own, `timeout` for the deadline, else `failed`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Tool { kind, .. } => *kind,
            Self::Timeout(_) => ErrorKind::Timeout,
            Self::Memory(_) | Self::OutputTooLarge(..) | Self::Trap(_) => ErrorKind::Failed,
        }
    }
}

impl Runtime {
    /// Builds the engine (and starts its epoch clock) with the compile cache in `cache_dir`.
    pub fn new(cache_dir: std::path::PathBuf) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        // Every call gets a fresh instance. From a pool of preallocated slots that costs a few
        // microseconds; mapping and unmapping 4 GiB of address space per call cost ~150 µs and
        // cross-core TLB shootdowns (BENCHMARKS.md). The per-plugin `memory_mib` cap is still
        // enforced by the store's limiter.
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(POOL_INSTANCES)
            .total_core_instances(POOL_INSTANCES * 4)
            .total_memories(POOL_INSTANCES)
            .total_tables(POOL_INSTANCES * 4)
            .total_stacks(POOL_INSTANCES)
            .max_tables_per_module(4)
            .max_memories_per_module(2);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("creating the wasm engine")?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("infra-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })
            .context("starting the epoch thread")?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        crate::caps::add_to_linker(&mut linker)?;
        let cache = cache::Cache::new(cache_dir, &engine);
        Ok(Self {
            engine,
            linker,
            cache,
        })
    }

    /// Cache hits and misses so far.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Checks, compiles (or loads from cache) and describes a plugin. `describe_ctx` is the
    /// context its `describe` export runs with (no grants are needed to describe).
    pub async fn load(
        &self,
        wasm: &[u8],
        manifest: Manifest,
        source: String,
        describe_ctx: CallCtx,
    ) -> anyhow::Result<Plugin> {
        let sha256 = hex::encode(Sha256::digest(wasm));
        let imports = imports::component_imports(wasm).with_context(|| {
            format!(
                "reading the imports of plugin '{}' ({source})",
                manifest.name
            )
        })?;
        imports::check(&manifest, &imports)?;
        let (component, cache_hit) = self.cache.component(&self.engine, wasm, &sha256)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("linking plugin '{}'", manifest.name))?;
        let pre = PluginHostPre::new(pre)?;
        let limits = CallLimits {
            timeout: Duration::from_secs(10),
            memory_bytes: 256 << 20,
            output_bytes: 8 << 20,
        };
        let mut store = self.store(describe_ctx, limits);
        let specs = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.infra_plugin_tool().call_describe(&mut store).await
        }
        .await
        .map_err(|e| classify(e, &store, &limits))
        .with_context(|| format!("plugin '{}' failed to describe its tools", manifest.name))?;
        let mut tools = Vec::new();
        for s in specs {
            let parse = |what: &str, text: &str| -> anyhow::Result<serde_json::Value> {
                serde_json::from_str(text).with_context(|| {
                    format!(
                        "plugin '{}' tool '{}': {what} is not JSON",
                        manifest.name, s.name
                    )
                })
            };
            tools.push(ToolSpec {
                input_schema: parse("input schema", &s.input_schema)?,
                output_schema: parse("output schema", &s.output_schema)?,
                annotations: Annotations {
                    read_only: s.annotations.read_only,
                    destructive: s.annotations.destructive,
                    idempotent: s.annotations.idempotent,
                    open_world: s.annotations.open_world,
                },
                plugin: Some(manifest.name.clone()),
                name: s.name,
                title: s.title,
                description: s.description,
            });
        }
        Ok(Plugin {
            manifest,
            sha256,
            source,
            imports,
            tools,
            cache_hit,
            pre,
        })
    }

    fn store(&self, call: CallCtx, limits: CallLimits) -> Store<StoreState> {
        // No env, no args, no preopens, no network: WASI gives clocks, random and captured stdio.
        let wasi = WasiCtxBuilder::new()
            .stdout(MemoryOutputPipe::new(STDIO_CAP))
            .stderr(MemoryOutputPipe::new(STDIO_CAP))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let state = StoreState {
            wasi,
            table: ResourceTable::new(),
            limits: Limiter::new(limits.memory_bytes),
            call,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        // Every tick, running wasm yields to the executor, so a spinning guest holds a tokio
        // worker for one tick at a time rather than until its deadline; past the deadline it traps.
        // Host calls stop at the call's deadline and hand the guest an error it still has to turn
        // into a result (a `timeout` saying what stalled); it gets a short grace to do so.
        let deadline = Instant::now() + limits.timeout + GUEST_GRACE;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
            })
        });
        store
    }

    /// Runs one tool of a plugin in a fresh Store.
    pub async fn call(
        &self,
        plugin: &Plugin,
        tool: &str,
        args_json: &str,
        call: CallCtx,
        limits: CallLimits,
    ) -> Result<String, CallError> {
        let started = Instant::now();
        let mut store = self.store(call, limits);
        let run = async {
            let instance = plugin.pre.instantiate_async(&mut store).await?;
            instance
                .infra_plugin_tool()
                .call_call(&mut store, tool, args_json)
                .await
        };
        // The epoch deadline stops wasm code; this outer bound also stops a plugin parked in a
        // host call that ignores its own timeout.
        let outcome = tokio::time::timeout(limits.timeout + 2 * GUEST_GRACE, run).await;
        let result = match outcome {
            Err(_) => return Err(CallError::Timeout(limits.timeout.as_millis())),
            Ok(Err(e)) => {
                if started.elapsed() >= limits.timeout {
                    return Err(CallError::Timeout(limits.timeout.as_millis()));
                }
                return Err(classify(e, &store, &limits));
            }
            Ok(Ok(r)) => r,
        };
        match result {
            Ok(out) if out.len() > limits.output_bytes => {
                Err(CallError::OutputTooLarge(out.len(), limits.output_bytes))
            }
            Ok(out) => Ok(out),
            Err(e) => Err(CallError::Tool {
                kind: e.kind.into(),
                message: e.message,
                field: e.field,
                detail: serde_json::from_str(&e.detail_json).ok(),
            }),
        }
    }
}

/// Turns a wasmtime error from `store` into what happened, in words a user can act on.
fn classify(e: wasmtime::Error, store: &Store<StoreState>, limits: &CallLimits) -> CallError {
    if let Some(trap) = e.downcast_ref::<Trap>()
        && *trap == Trap::Interrupt
    {
        return CallError::Timeout(limits.timeout.as_millis());
    }
    if store.data().limits.memory_hit() {
        return CallError::Memory(limits.memory_bytes >> 20);
    }
    CallError::Trap(format!("{e:#}"))
}

/// A plugin that could not be loaded, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Refused {
    /// Plugin name or file.
    pub plugin: String,
    /// Where it came from.
    pub source: String,
    /// Why it was refused.
    pub reason: String,
}

/// Shared handle to the runtime.
pub type SharedRuntime = Arc<Runtime>;

/// A plugin's `tool-error.kind` (the WIT enum) is the same kind on the host.
impl From<crate::caps::exports::infra::plugin::tool::ErrorKind> for ErrorKind {
    fn from(kind: crate::caps::exports::infra::plugin::tool::ErrorKind) -> Self {
        use crate::caps::exports::infra::plugin::tool::ErrorKind as Wit;
        match kind {
            Wit::Invalid => ErrorKind::Invalid,
            Wit::Denied => ErrorKind::Denied,
            Wit::NotFound => ErrorKind::NotFound,
            Wit::Timeout => ErrorKind::Timeout,
            Wit::Failed => ErrorKind::Failed,
        }
    }
}
