//! The OTLP pipeline (feature `otel`): an SDK tracer provider with a batch span
//! processor, an OTLP/HTTP exporter on the kernel's own HTTP client, and ids taken
//! from the kernel's trace context instead of drawn by the SDK.

use std::cell::Cell;
use std::future::Future;
use std::sync::OnceLock;
use std::time::SystemTime;

use axum::extract::MatchedPath;
use http::Request;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithHttpConfig as _;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_subscriber::registry::LookupSpan;

use super::super::names;
use super::super::trace_context::TraceContext;
use super::http_client::HyperClient;

/// Set once, at start-up, before the first request or job (see [`install`]); never
/// replaced. The SDK's own design is a process-wide provider.
static PIPELINE: OnceLock<Pipeline> = OnceLock::new();

#[derive(Debug)]
struct Pipeline {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

/// The variables that switch export on.
const ENDPOINT_VARS: [&str; 2] = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"];

/// Starts exporting when an OTLP endpoint is configured; whether spans are exported.
/// Needs a Tokio runtime (the exporter's requests run on it). `service_name` is the
/// resource's `service.name` unless `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES`
/// names one. Why a configured export could not start is written to standard error.
pub fn install(service_name: &str) -> bool {
    start(service_name).unwrap_or_else(|why| {
        eprintln!("app-kernel: OTLP export off: {why}");
        false
    })
}

/// [`install`], saying why a configured export could not start (the service logs it).
pub(crate) fn start(service_name: &str) -> Result<bool, String> {
    if PIPELINE.get().is_some() {
        return Ok(true);
    }
    let Some(endpoint) = ENDPOINT_VARS.iter().find_map(|v| std::env::var(v).ok().filter(|e| !e.is_empty())) else {
        return Ok(false);
    };
    if !endpoint.starts_with("http://") {
        return Err(format!(
            "the endpoint {endpoint} is not plain http:// (the kernel's exporter speaks no TLS: send to a collector or agent beside the service)"
        ));
    }
    let runtime =
        tokio::runtime::Handle::try_current().map_err(|_| "no Tokio runtime to send spans from".to_owned())?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(HyperClient::new(runtime))
        .build()
        .map_err(|e| e.to_string())?;
    let named = std::env::var_os("OTEL_SERVICE_NAME").is_some()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| a.contains("service.name="));
    let mut resource = Resource::builder();
    if !named {
        resource = resource.with_service_name(service_name.to_owned());
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_id_generator(PresetIds(RandomIdGenerator::default()))
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("app-kernel");
    PIPELINE.get_or_init(|| Pipeline { provider, tracer });
    Ok(true)
}

/// Exports the spans still batched (the service does at shutdown); waits for the
/// export to finish.
pub fn flush() {
    if let Some(p) = PIPELINE.get() {
        if let Err(e) = p.provider.force_flush() {
            tracing::warn!(error = %e, "exporting the last spans failed");
        }
    }
}

/// The `tracing` layer that exports the app's own spans, when export is on (after
/// [`install`]); `None` otherwise.
pub fn layer<S>() -> Option<tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    PIPELINE.get().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer.clone()))
}

/// Runs `fut` with `trace`'s span as OpenTelemetry's current context.
pub(super) fn with_context<F: Future>(trace: &TraceContext, fut: F) -> impl Future<Output = F::Output> {
    let span = SpanContext::new(
        TraceId::from_bytes(trace.trace_id()),
        SpanId::from_bytes(trace.span_id()),
        TraceFlags::new(trace.flags()),
        true,
        TraceState::default(),
    );
    fut.with_context(Context::new().with_remote_span_context(span))
}

thread_local! {
    /// The ids the next span built on this thread gets (see [`PresetIds`]).
    static PRESET: Cell<Option<([u8; 16], [u8; 8])>> = const { Cell::new(None) };
}

/// Gives the span being built the kernel's ids (set in [`PRESET`] around one
/// synchronous `build`), and random ones to every other span (the app's own).
#[derive(Debug)]
struct PresetIds(RandomIdGenerator);

impl IdGenerator for PresetIds {
    fn new_trace_id(&self) -> TraceId {
        PRESET.get().map_or_else(|| self.0.new_trace_id(), |(trace, _)| TraceId::from_bytes(trace))
    }

    fn new_span_id(&self) -> SpanId {
        PRESET.get().map_or_else(|| self.0.new_span_id(), |(_, span)| SpanId::from_bytes(span))
    }
}

/// A kernel span under way: what is known at its start.
#[derive(Debug)]
pub(super) struct Started {
    start: SystemTime,
    kind: SpanKind,
    name: String,
    attributes: Vec<KeyValue>,
}

impl Started {
    /// A request's span, named `METHOD /route/{template}`.
    pub(super) fn request<B>(req: &Request<B>) -> Option<Self> {
        PIPELINE.get()?;
        let method = req.method().as_str().to_owned();
        let route = req.extensions().get::<MatchedPath>().map_or(names::UNMATCHED_ROUTE, MatchedPath::as_str);
        Some(Self {
            start: SystemTime::now(),
            kind: SpanKind::Server,
            name: format!("{method} {route}"),
            attributes: vec![
                KeyValue::new("http.request.method", method),
                KeyValue::new("http.route", route.to_owned()),
            ],
        })
    }

    /// A job attempt's span, named `job TASK`.
    pub(super) fn job(task: &str, job_id: &str, attempt: u32) -> Option<Self> {
        PIPELINE.get()?;
        Some(Self {
            start: SystemTime::now(),
            kind: SpanKind::Consumer,
            name: format!("job {task}"),
            attributes: vec![
                KeyValue::new("job.task", task.to_owned()),
                KeyValue::new("job.id", job_id.to_owned()),
                KeyValue::new("job.attempt", i64::from(attempt)),
            ],
        })
    }

    pub(super) fn end_request(mut self, trace: &TraceContext, status: u16) {
        self.attributes.push(KeyValue::new("http.response.status_code", i64::from(status)));
        self.record(trace, status >= 500);
    }

    pub(super) fn end_job(mut self, trace: &TraceContext, outcome: &str) {
        self.attributes.push(KeyValue::new("job.outcome", outcome.to_owned()));
        self.record(trace, outcome != "completed");
    }

    /// Builds the span with `trace`'s ids and parent, and ends it now.
    fn record(self, trace: &TraceContext, failed: bool) {
        let Some(p) = PIPELINE.get() else { return };
        let parent = match trace.parent_id() {
            Some(parent) => Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from_bytes(trace.trace_id()),
                SpanId::from_bytes(parent),
                TraceFlags::new(trace.flags()),
                true,
                TraceState::default(),
            )),
            None => Context::new(),
        };
        let builder = p
            .tracer
            .span_builder(self.name)
            .with_kind(self.kind)
            .with_start_time(self.start)
            .with_attributes(self.attributes);
        PRESET.set(Some((trace.trace_id(), trace.span_id())));
        let mut span = builder.start_with_context(&p.tracer, &parent);
        PRESET.set(None);
        if failed {
            span.set_status(Status::error(""));
        }
        span.end();
    }
}
