//! Observability: request ids, trace context, structured logs, metrics (HTTP, jobs,
//! database, reliability, logins, `process_*`), readiness checks.
//!
//! Metric and log-field names are API: they are constants in [`names`].

pub mod health;
pub mod http;
pub mod log_format;
pub mod log_sink;
pub mod logging;
pub mod metrics;
pub mod names;
pub mod otel;
pub mod process;
pub mod request_id;
mod settings;
pub mod trace_context;

pub use settings::{LogFormat, ObservabilitySettings};
