//! `infra:host/log`: a plugin's log lines go to stderr (scrubbed), progress to the MCP client.

use super::StoreState;
use super::infra::host::log::{Host, Level};

/// Longest log line kept, so a chatty plugin cannot flood stderr.
const MAX_LINE: usize = 4096;

impl Host for StoreState {
    async fn write(&mut self, level: Level, message: String) {
        let call = &self.call;
        if call.require("log", "write").is_err() {
            return;
        }
        let mut text = call.shared.redactor.scrub_str(&message).into_owned();
        if text.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
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
}
