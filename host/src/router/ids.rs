//! The ids a call carries: its trace id (the agent's, or a new one) and the id pairing its
//! begin and end records.

/// A new random trace id.
pub fn new_trace_id() -> String {
    format!("t-{:016x}", rand::random::<u64>())
}

/// A new id pairing a call's begin and end records (the agent may reuse trace ids).
pub fn new_call_id() -> String {
    format!("c-{:032x}", rand::random::<u128>())
}
