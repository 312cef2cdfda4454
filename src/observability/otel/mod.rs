//! Spans of requests and jobs, exported over OTLP/HTTP (cargo feature `otel`).
//!
//! Export is on only when the feature is compiled in and `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set at start-up; the rest of the
//! standard `OTEL_*` environment (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_EXPORTER_OTLP_PROTOCOL`, `_HEADERS`, `_TIMEOUT`, `OTEL_TRACES_SAMPLER`,
//! `OTEL_BSP_*`) is read by the OpenTelemetry SDK. Otherwise no span is created and the
//! request path pays one atomic load.
//!
//! The exported spans carry the ids of [`trace_context`](super::trace_context): the
//! request's span id is the one its response's `traceparent` names, so a job's span
//! (a child of the request's) and the `trace_id` of every log line match what the
//! collector received. A task's own `tracing` spans are exported too, as children of
//! its job's span.
//!
//! The service installs all of this at start-up. An app that installs its own
//! `tracing` subscriber calls [`install`] first and adds [`layer`] to it, so that its
//! own spans are exported too.

use http::Request;

use super::trace_context::TraceContext;

#[cfg(feature = "otel")]
mod export;
#[cfg(feature = "otel")]
mod http_client;

#[cfg(feature = "otel")]
pub(crate) use export::start;
#[cfg(feature = "otel")]
pub use export::{flush, install, layer};

/// Starts exporting when an OTLP endpoint is configured (here: never, the `otel`
/// feature is off); whether spans are exported.
#[cfg(not(feature = "otel"))]
pub fn install(_service_name: &str) -> bool {
    false
}

/// Without the `otel` feature: never exporting.
#[cfg(not(feature = "otel"))]
pub(crate) fn start(_service_name: &str) -> Result<bool, String> {
    Ok(false)
}

/// Exports the spans still batched (here: none, the `otel` feature is off).
#[cfg(not(feature = "otel"))]
pub fn flush() {}

/// The `tracing` layer that exports the app's spans (here: none, the `otel` feature is off).
#[cfg(not(feature = "otel"))]
pub fn layer() -> Option<tracing_subscriber::layer::Identity> {
    None
}

/// The span of one request, ended with its status (see `request_id`).
#[derive(Debug)]
pub(crate) struct RequestSpan {
    #[cfg(feature = "otel")]
    inner: export::Started,
}

impl RequestSpan {
    /// `Some` when spans are exported: notes the start, the method and the route template.
    pub(crate) fn start<B>(req: &Request<B>) -> Option<Self> {
        #[cfg(feature = "otel")]
        {
            export::Started::request(req).map(|inner| Self { inner })
        }
        #[cfg(not(feature = "otel"))]
        {
            let _ = req;
            None
        }
    }

    /// Records the span, with the response's status.
    pub(crate) fn end(self, trace: &TraceContext, status: u16) {
        #[cfg(feature = "otel")]
        self.inner.end_request(trace, status);
        #[cfg(not(feature = "otel"))]
        let _ = (trace, status);
    }
}

/// The span of one attempt of a job, ended with its outcome (see `jobs::Worker`).
#[derive(Debug)]
pub(crate) struct JobSpan {
    #[cfg(feature = "otel")]
    inner: export::Started,
}

impl JobSpan {
    /// `Some` when spans are exported.
    pub(crate) fn start(task: &str, job_id: &str, attempt: u32) -> Option<Self> {
        #[cfg(feature = "otel")]
        {
            export::Started::job(task, job_id, attempt).map(|inner| Self { inner })
        }
        #[cfg(not(feature = "otel"))]
        {
            let _ = (task, job_id, attempt);
            None
        }
    }

    /// Runs `fut` (the task) with this span as OpenTelemetry's current context, so the
    /// task's own `tracing` spans become its children.
    #[cfg(feature = "otel")]
    pub(crate) fn wrap<F: std::future::Future>(
        trace: &TraceContext,
        fut: F,
    ) -> impl std::future::Future<Output = F::Output> {
        export::with_context(trace, fut)
    }

    /// Without the `otel` feature: `fut` itself.
    #[cfg(not(feature = "otel"))]
    pub(crate) fn wrap<F: std::future::Future>(_trace: &TraceContext, fut: F) -> F {
        fut
    }

    /// Records the span, with the attempt's outcome.
    pub(crate) fn end(self, trace: &TraceContext, outcome: &str) {
        #[cfg(feature = "otel")]
        self.inner.end_job(trace, outcome);
        #[cfg(not(feature = "otel"))]
        let _ = (trace, outcome);
    }
}
