//! Observability: request ids, structured logs, metrics, readiness checks.
//!
//! Metric and log-field names are API: they are constants in [`names`].

pub mod health;
pub mod request_id;
mod settings;

pub use settings::{LogFormat, ObservabilitySettings};
