//! The `process_*` families every Prometheus client exports (resident memory, CPU
//! seconds, open and maximum file descriptors, start time, threads), read from
//! `/proc/self` by the `metrics-process` collector when `/metrics` is scraped: nothing
//! is read between scrapes, and nothing on the request path.

use std::sync::OnceLock;

/// Records the process's figures into the recorder, now. Called by each `/metrics`
/// scrape before it renders; costs a few reads of `/proc/self`.
pub fn record() {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default).collect();
}
