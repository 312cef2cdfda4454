//! The Prometheus recorder: installed once per process, shared by every service
//! in it, rendered by the `/metrics` route (the API's, and the worker's own port).
//!
//! Every family is described (`# HELP`, `# TYPE`) from [`names::METRICS`] when the
//! recorder is installed, and every histogram gets buckets (the exporter would render
//! one without buckets as a summary).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::names;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets in seconds, from 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Job pickup and run time buckets in seconds, from 5 ms to an hour.
const JOB_BUCKETS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

/// The process's Prometheus handle, installing the global recorder on first use.
///
/// If another recorder was installed first (by the app), the kernel still renders
/// its own registry, which then holds only what was recorded through it.
pub fn prometheus() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let buckets = [
                (names::HTTP_REQUEST_DURATION_SECONDS, LATENCY_BUCKETS),
                (names::DB_POOL_ACQUIRE_WAIT_SECONDS, LATENCY_BUCKETS),
                (names::JOBS_PICKUP_LATENCY_SECONDS, JOB_BUCKETS),
                (names::JOBS_RUN_DURATION_SECONDS, JOB_BUCKETS),
            ];
            let builder = buckets.into_iter().fold(PrometheusBuilder::new(), |b, (name, buckets)| {
                b.set_buckets_for_metric(Matcher::Full(name.into()), buckets)
                    .unwrap_or_else(|_| PrometheusBuilder::new())
            });
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    for m in names::METRICS {
        let help = m.help;
        match m.kind {
            names::MetricKind::Counter => metrics::describe_counter!(m.name, help),
            names::MetricKind::Gauge => metrics::describe_gauge!(m.name, help),
            names::MetricKind::Histogram => metrics::describe_histogram!(m.name, help),
        }
    }
}

/// Drains the histograms' sample buffers into their buckets every few seconds, as
/// the exporter needs when it is not installed with its own HTTP listener: without
/// it, samples pile up between scrapes. Runs until the runtime stops.
pub fn spawn_upkeep() {
    let handle = prometheus();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    });
}

/// The request metrics' handles, resolved once per (method, route, status): the
/// hot path then costs an uncontended lock and a short scan instead of building
/// label strings and looking the series up in the registry on every request.
#[derive(Clone, Default)]
pub(crate) struct RequestSeries {
    cache: std::sync::Arc<std::sync::Mutex<Vec<Series>>>,
}

struct Series {
    method: http::Method,
    route: Box<str>,
    status: u16,
    count: metrics::Counter,
    latency: metrics::Histogram,
}

/// Past this many series the cache stops growing (the registry still records).
const MAX_CACHED_SERIES: usize = 1024;

impl std::fmt::Debug for RequestSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSeries").finish_non_exhaustive()
    }
}

impl RequestSeries {
    pub(crate) fn record(&self, method: &http::Method, route: &str, status: u16, seconds: f64) {
        let Ok(mut cache) = self.cache.lock() else { return };
        if let Some(s) = cache.iter().find(|s| s.status == status && s.method == *method && &*s.route == route) {
            s.count.increment(1);
            s.latency.record(seconds);
            return;
        }
        let labels = [
            (names::LABEL_METHOD, method.as_str().to_owned()),
            (names::LABEL_ROUTE, route.to_owned()),
            (names::LABEL_STATUS, status.to_string()),
        ];
        let count = metrics::counter!(names::HTTP_REQUESTS_TOTAL, &labels);
        let latency = metrics::histogram!(names::HTTP_REQUEST_DURATION_SECONDS, &labels);
        count.increment(1);
        latency.record(seconds);
        if cache.len() < MAX_CACHED_SERIES {
            cache.push(Series { method: method.clone(), route: route.into(), status, count, latency });
        }
    }
}
