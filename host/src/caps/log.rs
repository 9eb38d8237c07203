//! `infra:host/log`: a plugin's log lines go to stderr (scrubbed), progress to the MCP client,
//! stages of a long call into its audit record.

use super::StoreState;
use super::call::{CapEvent, Verdict};
use super::infra::host::log::{Host, Level};

/// Longest log line kept, so a chatty plugin cannot flood stderr.
const MAX_LINE: usize = 4096;
/// Longest stage name and detail kept in the audit record.
const MAX_STAGE: usize = 512;
/// Stages one call may record: the audit record stays bounded whatever the plugin does.
const MAX_STAGES: usize = 64;

/// `text` cut to at most `max` bytes on a character boundary, with `…` when cut.
fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut at = max;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
        text.push('…');
    }
    text
}

impl Host for StoreState {
    async fn write(&mut self, level: Level, message: String) {
        let call = &self.call;
        if call.require("log", "write").is_err() {
            return;
        }
        let text = cut(
            call.shared.redactor.scrub_str(&message).into_owned(),
            MAX_LINE,
        );
        let plugin = &call.plugin;
        let trace = &call.trace_id;
        match level {
            Level::Debug => tracing::debug!(plugin, trace, "{text}"),
            Level::Info => tracing::info!(plugin, trace, "{text}"),
            Level::Warn => tracing::warn!(plugin, trace, "{text}"),
            Level::Error => tracing::error!(plugin, trace, "{text}"),
        }
    }

    async fn progress(&mut self, done: f64, total: Option<f64>, message: Option<String>) {
        let call = &self.call;
        if call.require("log", "progress").is_err() {
            return;
        }
        if let Some(p) = &call.progress {
            let message = message.map(|m| call.shared.redactor.scrub_str(&m).into_owned());
            p(done, total, message);
        }
    }

    async fn stage(&mut self, name: String, detail: String) {
        let call = &self.call;
        if call.require("log", "stage").is_err() {
            return;
        }
        let scrub = |t: &str| cut(call.shared.redactor.scrub_str(t).into_owned(), MAX_STAGE);
        let (name, detail) = (scrub(&name), scrub(&detail));
        let n = {
            let events = call.events.lock().unwrap_or_else(|p| p.into_inner());
            events.iter().filter(|e| e.cap == "log").count()
        };
        if n < MAX_STAGES {
            call.record(CapEvent {
                cap: "log".into(),
                target: format!("stage {name}"),
                decision: Verdict::Allow,
                reason: None,
                duration_ms: 0,
                detail: Some(detail.clone()),
            });
        }
        tracing::info!(
            plugin = call.plugin,
            trace = call.trace_id,
            "stage {name}: {detail}"
        );
        if let Some(p) = &call.progress {
            p((n + 1) as f64, None, Some(format!("{name}: {detail}")));
        }
    }
}
