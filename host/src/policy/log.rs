//! `[plugin.<name>.log]`: a section whose presence is the whole grant; it has no keys.

/// `[plugin.<name>.log]` is present.
pub type Grant = super::plugin::Presence;
