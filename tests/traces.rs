//! One trace id follows a request into the job it enqueued: the request's log line,
//! the job's log lines (the worker's and the task's own) and the spans a local OTLP
//! receiver gets all carry the trace id of the caller's `traceparent`.
//!
//! The receiver is a small axum server on 127.0.0.1:0 that this test starts itself;
//! the kernel exports to it over OTLP/HTTP (JSON) because `OTEL_EXPORTER_OTLP_ENDPOINT`
//! names it. One test function: the exporter and the log subscriber are process-wide.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app_kernel::jobs::{EnqueueOptions, JobClient, JobContext, TaskError};
use app_kernel::observability::log_format::JsonLine;
use app_kernel::observability::trace_context::TraceParent;
use axum::body::Body;
use axum::routing::post;
use http::{Request, StatusCode};
use serde_json::{json, Value};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

const CALLER_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "b7ad6b7169203331";

async fn ship(payload: Value, ctx: JobContext) -> Result<Value, TaskError> {
    tracing::info!(order = %payload["order"], job = %ctx.job_id, "shipping the order");
    // The task's own span: exported as a child of the job's.
    tracing::info_span!("pack_parcel", job = %ctx.job_id).in_scope(|| tracing::info!("packed"));
    if payload["fail"] == true {
        return Err(TaskError::new("carrier refused"));
    }
    Ok(json!({"shipped": true}))
}

async fn create_order(
    jobs: JobClient,
    body: axum::Json<Value>,
) -> Result<(StatusCode, axum::Json<Value>), app_kernel::ApiError> {
    let job = jobs.enqueue("ship", body.0, EnqueueOptions::new().max_attempts(1)).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(json!({"job_id": job.job_id}))))
}

/// Log lines, as the kernel's JSON format writes them.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn parsed(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
    }
}

/// The OTLP receiver: every `POST /v1/traces` body (OTLP/JSON), in arrival order.
async fn start_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let store = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                let parsed: Value =
                    serde_json::from_slice(&body).unwrap_or_else(|e| json!({"unparsed": e.to_string()}));
                store.lock().unwrap().push(parsed);
                ([(http::header::CONTENT_TYPE, "application/json")], "{}")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), got)
}

/// Every span received so far.
fn spans(got: &Arc<Mutex<Vec<Value>>>) -> Vec<Value> {
    let mut out = Vec::new();
    for body in got.lock().unwrap().iter() {
        assert!(body.get("unparsed").is_none(), "the receiver got a body that is not OTLP/JSON: {body}");
        for rs in body["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                out.extend(ss["spans"].as_array().into_iter().flatten().cloned());
            }
        }
    }
    out
}

fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"].as_array()?.iter().find(|a| a["key"] == key).map(|a| &a["value"])
}

/// An integer attribute: OTLP/JSON writes 64-bit integers as strings.
fn int_attribute(span: &Value, key: &str) -> Option<i64> {
    match &attribute(span, key)?["intValue"] {
        Value::String(s) => s.parse().ok(),
        v => v.as_i64(),
    }
}

fn post_order(traceparent: Option<&str>, body: Value) -> Request<Body> {
    let mut req = Request::post("/api/v1/orders").header("content-type", "application/json");
    if let Some(t) = traceparent {
        req = req.header("traceparent", t);
    }
    req.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_id_follows_a_request_into_its_job_logs_and_exported_spans() {
    let (endpoint, received) = start_receiver().await;
    // SAFETY of the environment: this binary's only test sets it before the service reads it.
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint);
    std::env::set_var("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json");
    std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "100");
    std::env::set_var("OTEL_SERVICE_NAME", "traces-test");
    // The app's own subscriber (lines captured here), with the kernel's OTLP layer:
    // the exporter is installed first, as an app with its own subscriber does.
    assert!(app_kernel::observability::otel::install("traces"), "export is on once the endpoint is set");
    let lines = Lines::default();
    let sink = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("info")
        .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
        .event_format(JsonLine)
        .with_writer(move || sink.clone())
        .finish()
        .with(app_kernel::observability::otel::layer());
    subscriber.try_init().expect("the test's log subscriber");

    let dir = tempfile::tempdir().unwrap();
    let service = app_kernel::Service::builder("traces")
        .settings(common::test_settings(dir.path()))
        .task("ship", ship)
        .router(axum::Router::new().route("/orders", post(create_order)))
        .build()
        .await
        .unwrap();
    let (kernel, router) = (service.kernel().clone(), service.router());

    // The request: the caller's trace is kept, the request is a new span of it.
    let caller = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let reply = common::send(&router, post_order(Some(&caller), json!({"order": "o-1"}))).await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    let request_id = reply.headers["x-request-id"].to_str().unwrap().to_owned();
    let echoed = reply.headers["traceparent"].to_str().unwrap().to_owned();
    let request_span = TraceParent::parse(echoed.as_bytes()).expect("a valid traceparent on the response");
    assert_eq!(request_span.trace_id_hex(), CALLER_TRACE);
    assert_ne!(request_span.parent_id_hex(), CALLER_SPAN, "the request is a span of its own");
    let job_id = reply.json()["job_id"].as_str().unwrap().to_owned();

    // Stored with the job, continued by the worker.
    let stored = kernel.jobs().status(&job_id).await.unwrap().unwrap();
    assert_eq!(stored.trace_parent.as_deref(), Some(echoed.as_str()));
    let report = kernel.worker().run_once().await.unwrap();
    assert_eq!(report.completed, vec![job_id.clone()]);

    // A malformed header is ignored: the request succeeds in a trace of its own.
    let upper = format!("00-{}-{CALLER_SPAN}-01", CALLER_TRACE.to_uppercase());
    for bad in [upper.as_str(), "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "garbage"] {
        let reply = common::send(&router, post_order(Some(bad), json!({"order": "o-2", "fail": true}))).await;
        assert_eq!(reply.status, 202, "{bad}: {}", reply.text());
        let own = TraceParent::parse(reply.headers["traceparent"].as_bytes()).expect("a new trace");
        assert_ne!(own.trace_id_hex(), CALLER_TRACE, "{bad}");
    }
    // A failing job: the worker's own line about it carries the job's trace id.
    let report = kernel.worker().run_once().await.unwrap();
    assert_eq!(report.dead.len(), 3, "{report:?}");

    // The log lines: the request's access line and the job's lines share the trace id.
    let logs = lines.parsed();
    let access = logs
        .iter()
        .find(|l| l["request_id"] == request_id.as_str() && l["message"] == "request")
        .unwrap_or_else(|| panic!("no access line for {request_id} in {logs:#?}"));
    assert_eq!(access["trace_id"], CALLER_TRACE, "{access}");
    let task_lines: Vec<&Value> = logs.iter().filter(|l| l["message"] == "shipping the order").collect();
    assert_eq!(task_lines.len(), 4, "{logs:#?}");
    let ours = task_lines.iter().find(|l| l["job"] == job_id.as_str()).expect("the first job's own line");
    assert_eq!(ours["trace_id"], CALLER_TRACE, "{ours}");
    let failed: Vec<&Value> = logs.iter().filter(|l| l["message"] == "job failed").collect();
    assert_eq!(failed.len(), 3, "{logs:#?}");
    for line in failed {
        let trace = line["trace_id"].as_str().expect("a trace id on the worker's line");
        assert_eq!(trace.len(), 32);
        assert_ne!(trace, CALLER_TRACE);
        let task_line = task_lines.iter().find(|l| l["job"] == line["job_id"]).expect("the task's line of that job");
        assert_eq!(task_line["trace_id"], trace, "the worker and the task log one trace per job");
    }

    // The spans: the request's (a child of the caller's span) and the job's (a child
    // of the request's), both in the caller's trace.
    let deadline = Instant::now() + Duration::from_secs(15);
    let (request, job, task) = loop {
        let all = spans(&received);
        let in_trace: Vec<&Value> = all.iter().filter(|s| s["traceId"] == CALLER_TRACE).collect();
        let find = |test: &dyn Fn(&Value) -> bool| in_trace.iter().find(|s| test(s)).map(|s| (*s).clone());
        let request = find(&|s| s["spanId"] == request_span.parent_id_hex().as_str());
        let job = find(&|s| attribute(s, "job.id").is_some());
        let task = find(&|s| s["name"] == "pack_parcel");
        if let (Some(r), Some(j), Some(t)) = (request, job, task) {
            break (r, j, t);
        }
        assert!(Instant::now() < deadline, "spans of trace {CALLER_TRACE} not received; got {all:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(request["parentSpanId"], CALLER_SPAN, "{request}");
    assert_eq!(request["name"], "POST /api/v1/orders", "{request}");
    assert_eq!(attribute(&request, "http.route").unwrap()["stringValue"], "/api/v1/orders");
    assert_eq!(int_attribute(&request, "http.response.status_code"), Some(202));
    assert_eq!(job["parentSpanId"], request_span.parent_id_hex().as_str(), "{job}");
    assert_eq!(job["name"], "job ship", "{job}");
    assert_eq!(attribute(&job, "job.id").unwrap()["stringValue"], job_id.as_str());
    assert_eq!(attribute(&job, "job.task").unwrap()["stringValue"], "ship");
    assert_eq!(int_attribute(&job, "job.attempt"), Some(1));
    assert_eq!(attribute(&job, "job.outcome").unwrap()["stringValue"], "completed");
    assert_eq!(task["parentSpanId"], job["spanId"], "the task's span is the job's child: {task}");
    let body = received.lock().unwrap()[0].clone();
    let resource = &body["resourceSpans"][0]["resource"]["attributes"];
    assert!(
        resource
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["key"] == "service.name" && a["value"]["stringValue"] == "traces-test"),
        "{resource}"
    );
}
