//! `[plugin.<name>.artifacts]`: a section whose presence is the whole grant; it has no keys.

/// `[plugin.<name>.artifacts]` is present.
pub type Grant = super::plugin::Presence;
