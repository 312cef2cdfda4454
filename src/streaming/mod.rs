//! Safe streaming: per-user stream leases that free themselves when an instance dies.
//!
//! This module owns the streaming settings; the lease limiter builds on them.

mod settings;

pub use settings::StreamingSettings;
