//! Builds the host from its state directory: the policy, profiles and targets, the redactor
//! that knows their secrets, the artifact store, the audit log, the jobs registry, the
//! capabilities' state, the wasm runtime and the plugins that ask to be loaded. Nothing here
//! runs a call; the router takes what this builds.

use std::sync::Arc;

use anyhow::Context;

use crate::admission::Admission;
use crate::artifacts::{ArtifactStore, Quota};
use crate::audit::AuditLog;
use crate::caps::Shared;
use crate::flags::Flags;
use crate::jobs::Jobs;
use crate::policy::Policy;
use crate::profiles::Profiles;
use crate::redact::Redactor;
use crate::runtime::{Manifest, Runtime};
use crate::state::StateDir;
use crate::targets::Targets;

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));
}

/// Everything a router needs, built and not yet serving.
pub struct Host {
    /// The state directory it was built from.
    pub state: StateDir,
    /// Host-wide state the capabilities and host tools share.
    pub shared: Arc<Shared>,
    /// The audit log.
    pub audit: Arc<AuditLog>,
    /// The wasm engine and compile cache.
    pub runtime: Runtime,
    /// The caps on plugin calls running at once.
    pub admission: Admission,
    /// The plugins to admit, embedded ones first, in load order.
    pub candidates: Vec<Candidate>,
}

/// A plugin asking to be loaded: its manifest (or why it has none that parses), its binary
/// and where it came from (`embedded` or a file path).
pub struct Candidate {
    /// The parsed manifest, or why it could not be read.
    pub manifest: Result<Manifest, String>,
    /// The component.
    pub wasm: Vec<u8>,
    /// `embedded` or the `.wasm` file's path.
    pub source: String,
}

/// Opens everything in `state` and collects the plugins to load.
pub fn build(state: StateDir, flags: Flags) -> anyhow::Result<Host> {
    let policy = Arc::new(load_policy(&state)?);
    let profiles = Arc::new(Profiles::load(&state.profiles())?);
    let redactor = Redactor::process();
    for r in profiles.secret_refs() {
        // A secret that cannot be read now is reported when a call uses it.
        if let Ok(v) = r.resolve() {
            redactor.add(&v);
        }
    }
    crate::caps::http::register_profile_secrets(&profiles, &redactor);
    let targets = Arc::new(Targets::load(&state.targets())?);
    targets.register_secrets(&redactor);
    let limits = *policy.limits();
    let artifacts = Arc::new(
        ArtifactStore::open(state.artifacts())
            .context("opening the artifact store")?
            .with_redactor(redactor.clone())
            .with_quota(Quota {
                artifact_bytes: limits.artifact_bytes,
                total_bytes: limits.artifacts_quota_bytes,
                count: limits.artifacts_quota_count,
            }),
    );
    let audit =
        Arc::new(AuditLog::open(state.audit(), redactor.clone()).context("opening the audit log")?);
    let jobs = Arc::new(Jobs::open(&state.jobs())?);
    // The capabilities' own state: connection pools and clients.
    let shared = Arc::new(Shared {
        policy,
        flags,
        profiles,
        redactor,
        artifacts,
        http: Default::default(),
        ssh: crate::caps::ssh::Pool::new(targets, state.known_hosts()),
        postgres: Default::default(),
        jobs,
        start_dir: std::env::current_dir().context(
            "reading the directory infra was started in (a root with path \".\" stands for it)",
        )?,
        locks: crate::caps::guard::lock::Locks::new(state.locks()),
        git_keys: Default::default(),
        kube_discovery: Default::default(),
        values: Arc::new(crate::kv::Values::new(state.values())),
        runbooks: Arc::new(crate::runbooks::Store::new(state.runbooks())),
        intents: Arc::new(crate::intents::Intents::new(state.capabilities())),
        runs: Default::default(),
    });
    let runtime = Runtime::new(state.cache())?;
    let admission = Admission::new(
        limits.calls_in_flight as usize,
        limits.plugin_calls_in_flight as usize,
    );
    let candidates = candidates(&state);
    Ok(Host {
        state,
        shared,
        audit,
        runtime,
        admission,
        candidates,
    })
}

/// The host state a plugin's `describe` runs with: no grants and both flags off, whatever the
/// policy gives the plugin for its calls — listing tools needs no capability, and a plugin
/// must not be able to act at every start. Stores are shared; capability state is fresh.
pub fn describing(shared: &Shared) -> Shared {
    let nothing = Policy::load(
        "",
        "(describe): a plugin's describe export runs with no grants — use capabilities in \
         tool calls only",
    )
    .expect("an empty policy is valid");
    Shared {
        policy: Arc::new(nothing),
        flags: Flags::SAFE,
        profiles: shared.profiles.clone(),
        redactor: shared.redactor.clone(),
        artifacts: shared.artifacts.clone(),
        http: Default::default(),
        ssh: Default::default(),
        postgres: Default::default(),
        jobs: shared.jobs.clone(),
        start_dir: shared.start_dir.clone(),
        locks: shared.locks.clone(),
        git_keys: Default::default(),
        kube_discovery: Default::default(),
        values: shared.values.clone(),
        runbooks: shared.runbooks.clone(),
        intents: shared.intents.clone(),
        runs: shared.runs.clone(),
    }
}

/// `INFRA_POLICY` when set, else `policy.toml` in the state directory, else the embedded
/// default.
fn load_policy(state: &StateDir) -> anyhow::Result<Policy> {
    if let Ok(path) = std::env::var("INFRA_POLICY") {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read INFRA_POLICY={path}"))?;
        return Ok(Policy::load(&text, &path)?);
    }
    let user = state.policy();
    if user.is_file() {
        let origin = user.display().to_string();
        let text =
            std::fs::read_to_string(&user).with_context(|| format!("cannot read {origin}"))?;
        return Ok(Policy::load(&text, &origin)?);
    }
    Ok(Policy::embedded_default()?)
}

/// The embedded plugins, then the third-party ones of the state directory.
fn candidates(state: &StateDir) -> Vec<Candidate> {
    let mut all: Vec<Candidate> = builtin::BUILTIN
        .iter()
        .map(|(toml, wasm)| Candidate {
            manifest: Manifest::parse(toml, "embedded plugin.toml").map_err(|e| format!("{e:#}")),
            wasm: wasm.to_vec(),
            source: "embedded".to_string(),
        })
        .collect();
    all.extend(third_party(&state.plugins()));
    all
}

/// Third-party plugins: `<dir>/*.wasm`, each with a `.toml` manifest of the same stem.
fn third_party(dir: &std::path::Path) -> Vec<Candidate> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|wasm_path| {
            let source = wasm_path.display().to_string();
            let toml_path = wasm_path.with_extension("toml");
            let manifest = std::fs::read_to_string(&toml_path)
                .map_err(|e| format!("no manifest {} beside the plugin ({e}); every plugin needs its plugin.toml", toml_path.display()))
                .and_then(|t| Manifest::parse(&t, &toml_path.display().to_string()).map_err(|e| format!("{e:#}")));
            let wasm = std::fs::read(&wasm_path).unwrap_or_default();
            Candidate {
                manifest,
                wasm,
                source,
            }
        })
        .collect()
}
