//! Spans of requests and jobs, exported over OTLP/HTTP (cargo feature `otel`).
//!
//! Export is off unless the feature is compiled in and `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; without it, [`RequestSpan`] and
//! [`JobSpan`] are never created and cost nothing. Placeholder until the exporter lands.

use http::Request;

use super::trace_context::TraceContext;

/// The span of one request, ended with its status (see `request_id`).
#[derive(Debug)]
pub(crate) struct RequestSpan(());

impl RequestSpan {
    /// `Some` when spans are exported.
    pub(crate) fn start<B>(_req: &Request<B>) -> Option<Self> {
        None
    }

    /// Records the span, with the response's status.
    pub(crate) fn end(self, _trace: &TraceContext, _status: u16) {}
}

/// The span of one attempt of a job, ended with its outcome (see `jobs::Worker`).
#[derive(Debug)]
pub(crate) struct JobSpan(());

impl JobSpan {
    /// `Some` when spans are exported.
    pub(crate) fn start(_task: &str, _job_id: &str, _attempt: u32) -> Option<Self> {
        None
    }

    /// Records the span, with the attempt's outcome.
    pub(crate) fn end(self, _trace: &TraceContext, _outcome: &str) {}
}
