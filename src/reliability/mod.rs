//! Reliability: rate limiting and idempotency.
//!
//! This module owns the reliability settings; the layers build on them.

mod settings;

pub use settings::ReliabilitySettings;
