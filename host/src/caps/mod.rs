//! The host side of the `infra:host` contract: one module per WIT interface, named like its file
//! (`http.rs` ↔ `wit/host/http.wit`). Every host function checks the policy grant of the calling
//! plugin and the two flags, does the work with a timeout, scrubs secrets and records a
//! capability event for the audit log.
//!
//! A plugin importing an interface outside [`Cap`]'s list is refused at load (see
//! [`crate::runtime::imports::check`]) before anything is linked. Each interface is linked by its
//! own `add_to_linker`, from [`Cap`]'s list (see [`add_to_linker`]).

pub mod artifacts;
mod call;
pub mod exec;
pub mod fs;
pub mod git;
pub mod guard;
pub mod http;
pub mod log;
pub mod output;
pub mod postgres;
pub mod roots;
pub mod secrets;
pub mod ssh;
pub mod types;

pub use call::{CallCtx, CapEvent, CapUse, Verdict};

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub use crate::cap::Cap;

use crate::artifacts::ArtifactStore;
use crate::flags::Flags;
use crate::policy::Policy;
use crate::profiles::Profiles;
use crate::redact::Redactor;

/// Host-side bindings generated from `wit/` for every interface of the contract.
#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: ["../wit/host", "../wit/plugin"],
        inline: "
            package infra:runtime;

            /// What the host links: every capability of the contract, and the tool export.
            world plugin-host {
                import infra:host/types@0.1.0;
                import infra:host/http@0.1.0;
                import infra:host/ssh@0.1.0;
                import infra:host/postgres@0.1.0;
                import infra:host/fs@0.1.0;
                import infra:host/exec@0.1.0;
                import infra:host/git@0.1.0;
                import infra:host/secrets@0.1.0;
                import infra:host/artifacts@0.1.0;
                import infra:host/log@0.1.0;
                import infra:host/guard@0.1.0;
                export infra:plugin/tool@0.1.0;
            }
        ",
        imports: { default: async },
        exports: { default: async },
    });
}

pub use bindings::*;

/// What the host shares with every call: policy, flags, clients, stores.
pub struct Shared {
    /// The policy in force.
    pub policy: Arc<Policy>,
    /// The two safety flags.
    pub flags: Flags,
    /// HTTP and Postgres profiles.
    pub profiles: Arc<Profiles>,
    /// Known secret values, scrubbed from everything that leaves.
    pub redactor: Redactor,
    /// Where large outputs go.
    pub artifacts: Arc<ArtifactStore>,
    /// Pooled HTTP clients, one per plugin (their resolver enforces that plugin's grants).
    pub http: http::Clients,
    /// SSH connections, pooled per target.
    pub ssh: ssh::Pool,
    /// Postgres connection pools, one per profile.
    pub postgres: postgres::Pools,
    /// Background commands started with `exec-detached`.
    pub jobs: Arc<crate::jobs::Jobs>,
    /// The directory infra was started in: what a root with `path = "."` stands for.
    pub start_dir: std::path::PathBuf,
    /// The guard's target locks (`<state>/locks/`), shared with every infra process there.
    pub locks: guard::lock::Locks,
    /// Repositories' config key names, remembered between git runs while their config holds.
    pub git_keys: Arc<crate::confine::git_keys::KeyCache>,
    /// Kubernetes discovery documents per profile, kept for a few minutes.
    pub kube_discovery: Arc<http::discovery::Cache>,
    /// The `state` tool's values (session and persistent), also read by runbook templates.
    pub values: Arc<crate::kv::Values>,
    /// The built-in runbooks and the user's `runbooks.json`.
    pub runbooks: Arc<crate::runbooks::Store>,
    /// The intent map: built-in defaults and the user's `capabilities.json`.
    pub intents: Arc<crate::intents::Intents>,
    /// Runbook runs in progress and recently ended, for `jobs`.
    pub runs: Arc<crate::runbooks::runs::Runs>,
}

/// The data of one Store: WASI (with no ambient authority), resource limits, the call context.
pub struct StoreState {
    /// WASI context: clocks, random, captured stdout/stderr; nothing else.
    pub wasi: WasiCtx,
    /// WASI resources.
    pub table: ResourceTable,
    /// Memory and instance limits.
    pub limits: crate::limiter::Limiter,
    /// What capabilities need.
    pub call: CallCtx,
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Adds every capability to a linker, each interface by its own `add_to_linker`.
pub fn add_to_linker(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    infra::host::types::add_to_linker::<StoreState, HasSelf<StoreState>>(linker, |s| s)?;
    for cap in Cap::ALL {
        link(*cap, linker)?;
    }
    Ok(())
}

/// Links one capability's interface. A capability the host does not implement has no host side
/// to link: a plugin importing it never gets this far (the import check refuses it at load).
fn link(cap: Cap, linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    type Me = HasSelf<StoreState>;
    match cap {
        Cap::Http => infra::host::http::add_to_linker::<StoreState, Me>(linker, |s| s),
        Cap::Ssh => infra::host::ssh::add_to_linker::<StoreState, Me>(linker, |s| s),
        Cap::Postgres => infra::host::postgres::add_to_linker::<StoreState, Me>(linker, |s| s),
        Cap::Secrets => infra::host::secrets::add_to_linker::<StoreState, Me>(linker, |s| s),
        Cap::Artifacts => infra::host::artifacts::add_to_linker::<StoreState, Me>(linker, |s| s),
        Cap::Log => infra::host::log::add_to_linker::<StoreState, Me>(linker, |s| s),
        Cap::Fs => infra::host::fs::add_to_linker::<StoreState, Me>(linker, |s| s),
        Cap::Exec => infra::host::exec::add_to_linker::<StoreState, Me>(linker, |s| s),
        Cap::Git => infra::host::git::add_to_linker::<StoreState, Me>(linker, |s| s),
        Cap::Guard => infra::host::guard::add_to_linker::<StoreState, Me>(linker, |s| s),
    }
}
