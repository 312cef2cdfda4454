//! The Prometheus recorder: installed once per process, shared by every service
//! in it, rendered by the `/metrics` route.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::names;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets in seconds, from 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The process's Prometheus handle, installing the global recorder on first use.
///
/// If another recorder was installed first (by the app), the kernel still renders
/// its own registry, which then holds only what was recorded through it.
pub fn prometheus() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(names::HTTP_REQUEST_DURATION_SECONDS.into()), LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(names::HTTP_REQUESTS_TOTAL, "Finished HTTP requests");
    metrics::describe_histogram!(names::HTTP_REQUEST_DURATION_SECONDS, metrics::Unit::Seconds, "HTTP request latency");
    metrics::describe_gauge!(names::HTTP_REQUESTS_IN_FLIGHT, "HTTP requests being served");
    metrics::describe_counter!(names::READINESS_CHECK_FAILURES_TOTAL, "Readiness checks that failed");
}
