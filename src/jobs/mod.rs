//! Background jobs: named tasks, a durable queue, separate worker processes.
//!
//! This module owns the job settings; the queue and worker build on them.

mod settings;

pub use settings::JobSettings;
