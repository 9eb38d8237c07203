//! Plugin admission at start: each candidate is checked (a duplicate name, a sha256 pin that
//! does not match), compiled and described, and its tools checked against those already
//! listed; what fails is refused with the reason, never loaded half.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::Digest;

use super::envelope::event_value;
use super::ids::new_trace_id;
use crate::audit::{AuditEntry, AuditLog, Outcome};
use crate::bootstrap::{Candidate, describing};
use crate::caps::{CallCtx, CapEvent, Shared};
use crate::host_tools;
use crate::runtime::{Manifest, Plugin, Refused, Runtime};

/// The plugins admitted, in load order, and the ones refused with the reason.
pub struct Admitted {
    /// Loaded and ready to call.
    pub plugins: Vec<Plugin>,
    /// Refused, with the reason.
    pub refused: Vec<Refused>,
}

/// Admits `candidates` in order: the first plugin to claim a name or a tool keeps it.
pub async fn admit_all(
    runtime: &Runtime,
    shared: &Shared,
    audit: &AuditLog,
    candidates: Vec<Candidate>,
) -> Admitted {
    let mut a = Admitting {
        runtime,
        shared,
        audit,
        done: Admitted {
            plugins: Vec::new(),
            refused: Vec::new(),
        },
    };
    for c in candidates {
        a.admit_one(c).await;
    }
    a.done
}

/// What admission reads and what it has decided so far.
struct Admitting<'a> {
    runtime: &'a Runtime,
    shared: &'a Shared,
    audit: &'a AuditLog,
    done: Admitted,
}

impl Admitting<'_> {
    async fn admit_one(&mut self, c: Candidate) {
        let Candidate {
            manifest,
            wasm,
            source,
        } = c;
        let manifest = match manifest {
            Ok(m) => m,
            Err(reason) => return self.refuse(source.clone(), source, reason),
        };
        let name = manifest.name.clone();
        if let Err(reason) = self.admit(&manifest, &wasm) {
            return self.refuse(name, source, reason);
        }
        let ctx = self.describe_ctx(&name);
        let events = ctx.events.clone();
        let loaded = self
            .runtime
            .load(&wasm, manifest, source.clone(), ctx)
            .await;
        self.audit_describe(&name, &wasm, &source, &events).await;
        match loaded {
            Ok(p) => match self.tool_clash(&p) {
                Some(reason) => self.refuse(name, source, reason),
                None => self.done.plugins.push(p),
            },
            Err(e) => self.refuse(name, source, format!("{e:#}")),
        }
    }

    /// The context a plugin's `describe` runs in: no grants (see [`describing`]).
    fn describe_ctx(&self, plugin: &str) -> CallCtx {
        CallCtx::new(
            plugin,
            "describe",
            format!("describe-{}", new_trace_id()),
            Instant::now() + Duration::from_secs(10),
            Arc::new(describing(self.shared)),
        )
    }

    /// Records what a plugin's `describe` tried (every attempt was denied): one record per
    /// start, only for plugins that tried something, so a plugin cannot probe unseen.
    async fn audit_describe(
        &self,
        plugin: &str,
        wasm: &[u8],
        source: &str,
        events: &Mutex<Vec<CapEvent>>,
    ) {
        let events = std::mem::take(&mut *events.lock().unwrap_or_else(|p| p.into_inner()));
        if events.is_empty() {
            return;
        }
        let mut entry = AuditEntry::new(&new_trace_id(), "plugins", Outcome::Denied);
        entry.action = Some("describe".into());
        entry.plugin = Some(plugin.into());
        entry.plugin_sha256 = Some(hex::encode(sha2::Sha256::digest(wasm)));
        entry.args = json!({ "source": source });
        entry.events = events.iter().map(event_value).collect();
        entry.error = Some(format!(
            "plugin '{plugin}' tried to use capabilities while describing its tools; describe \
             runs with no grants, so each attempt was denied — review the plugin"
        ));
        if let Err(e) = self.audit.append_async(entry).await {
            // Nothing happened (every attempt was denied), so the start goes on.
            tracing::error!(plugin, "could not audit what describe tried: {e}");
        }
    }

    /// Refuses what must not load before compiling anything: duplicates and pin mismatches.
    fn admit(&self, manifest: &Manifest, wasm: &[u8]) -> Result<(), String> {
        if self
            .done
            .plugins
            .iter()
            .any(|p| p.manifest.name == manifest.name)
        {
            return Err(format!(
                "a plugin named '{}' is already loaded; rename one of them",
                manifest.name
            ));
        }
        if let Some(pin) = self.shared.policy.sha256_pin(&manifest.name) {
            let actual = hex::encode(sha2::Sha256::digest(wasm));
            if !actual.eq_ignore_ascii_case(pin) {
                return Err(format!(
                    "sha256 {actual} does not match the pin {pin} in [plugin.{}] of {}; the binary changed — review it and update the pin",
                    manifest.name,
                    self.shared.policy.origin()
                ));
            }
        }
        Ok(())
    }

    /// A tool name the plugin shares with a host tool or an already loaded plugin: the first
    /// one loaded keeps it, so the newcomer is refused rather than silently shadowed.
    fn tool_clash(&self, plugin: &Plugin) -> Option<String> {
        let host = host_tools::specs(self.shared.flags);
        plugin.tools.iter().find_map(|t| {
            let owner = if host.iter().any(|h| h.name == t.name) {
                Some("the host".to_string())
            } else {
                self.done
                    .plugins
                    .iter()
                    .find(|p| p.tools.iter().any(|o| o.name == t.name))
                    .map(|p| format!("plugin '{}'", p.manifest.name))
            };
            owner.map(|o| {
                format!(
                    "its tool '{}' is already provided by {o}; rename the tool",
                    t.name
                )
            })
        })
    }

    fn refuse(&mut self, plugin: String, source: String, reason: String) {
        tracing::warn!(plugin, source, "plugin refused: {reason}");
        self.done.refused.push(Refused {
            plugin,
            source,
            reason,
        });
    }
}
