//! Admission: how many plugin calls run at once, per server and per plugin.
//!
//! Each call holds a wasm instance slot, host memory for its captures and often a pooled
//! connection. An agent that fires calls faster than they finish would otherwise queue without
//! bound; past the caps (`[limits] calls_in_flight`, `plugin_calls_in_flight`) a call is refused
//! at once as `busy`, with advice, instead of waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The caps and the calls holding them.
#[derive(Debug)]
pub struct Admission {
    total: Arc<Semaphore>,
    total_cap: usize,
    per_plugin_cap: usize,
    per_plugin: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// A running call's place; dropping it frees the place.
#[derive(Debug)]
pub struct Ticket {
    _total: OwnedSemaphorePermit,
    _plugin: OwnedSemaphorePermit,
}

/// Why a call was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Busy {
    /// The server-wide cap is reached.
    #[error(
        "busy: {0} tool calls are already running in this server ([limits] calls_in_flight); wait for some to finish and retry"
    )]
    Server(usize),
    /// The plugin's cap is reached.
    #[error(
        "busy: {1} calls of plugin '{0}' are already running ([limits] plugin_calls_in_flight); wait for some to finish and retry"
    )]
    Plugin(String, usize),
}

impl Admission {
    /// At most `total` calls at once, and at most `per_plugin` of any one plugin.
    pub fn new(total: usize, per_plugin: usize) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total)),
            total_cap: total,
            per_plugin_cap: per_plugin,
            per_plugin: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one call of `plugin`, or why there is none now.
    pub fn admit(&self, plugin: &str) -> Result<Ticket, Busy> {
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy::Server(self.total_cap))?;
        let sem = self
            .per_plugin
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(plugin.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_plugin_cap)))
            .clone();
        let plugin_permit = sem
            .try_acquire_owned()
            .map_err(|_| Busy::Plugin(plugin.to_string(), self.per_plugin_cap))?;
        Ok(Ticket {
            _total: total,
            _plugin: plugin_permit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_and_free_on_drop() {
        let a = Admission::new(3, 2);
        let t1 = a.admit("x").expect("first x");
        let _t2 = a.admit("x").expect("second x");
        assert_eq!(a.admit("x").unwrap_err(), Busy::Plugin("x".into(), 2));
        let _t3 = a.admit("y").expect("y has its own cap");
        assert_eq!(a.admit("z").unwrap_err(), Busy::Server(3));
        drop(t1);
        let _t4 = a.admit("x").expect("a freed place is reused");
        assert!(a.admit("y").is_err(), "the server is full again");
    }

    #[test]
    fn a_refusal_by_the_plugin_cap_returns_the_server_place() {
        let a = Admission::new(2, 1);
        let _x = a.admit("x").expect("x");
        assert!(a.admit("x").is_err());
        // The refused call above must not have kept a server-wide place.
        let _y = a.admit("y").expect("one server place is still free");
    }
}
