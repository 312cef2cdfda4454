//! What an operator scrapes: the metrics table in the README is the code's, a job of
//! each outcome moves its counters and histograms, and `promtool check metrics` passes
//! on the API's `/metrics` and on a real `worker` process's own port.
//!
//! promtool is Debian's `prometheus` package (`.ci/run` installs it); these tests fail
//! without it rather than skip.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use app_kernel::jobs::{EnqueueOptions, JobContext, TaskError};
use app_kernel::observability::names::{self, MetricKind, METRICS};
use app_kernel::settings::MetricsProtection;
use app_kernel::Service;
use serde_json::{json, Value};

/// Runs `promtool check metrics` on `body`; panics with its complaints.
fn promtool_check(what: &str, body: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("promtool is needed (apt-get install -y prometheus): {e}"));
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool check metrics failed on the {what}'s /metrics:\n{said}\n---\n{body}");
}

/// The samples of a Prometheus text body: `name{labels}` -> value.
fn samples(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

/// The family a sample line belongs to (histogram suffixes stripped).
fn family(series: &str) -> &str {
    let name = series.split('{').next().unwrap_or(series);
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s).filter(|base| METRICS.iter().any(|m| m.name == *base)))
        .unwrap_or(name)
}

#[test]
fn the_readme_table_is_the_code_table_and_names_carry_their_units() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = names::metrics_table();
    assert!(readme.contains(&table), "README's `## Metrics` table differs from names::metrics_table():\n{table}");
    for m in METRICS {
        match m.kind {
            MetricKind::Counter => assert!(m.name.ends_with("_total"), "counter {} must end in _total", m.name),
            MetricKind::Histogram => assert!(m.name.ends_with("_seconds"), "histogram {} must carry its unit", m.name),
            MetricKind::Gauge => assert!(!m.name.ends_with("_total"), "gauge {} must not end in _total", m.name),
        }
        for label in m.labels {
            assert!(!label.contains("id"), "{}: label {label} looks unbounded", m.name);
        }
    }
}

async fn ok_task(_: Value, _: JobContext) -> Result<Value, TaskError> {
    tokio::time::sleep(Duration::from_millis(30)).await;
    Ok(json!("ok"))
}

async fn flaky_task(_: Value, ctx: JobContext) -> Result<Value, TaskError> {
    if ctx.attempt == 1 {
        return Err(TaskError::new("first attempt fails"));
    }
    Ok(json!("second time lucky"))
}

async fn doomed_task(_: Value, _: JobContext) -> Result<Value, TaskError> {
    Err(TaskError::new("always fails"))
}

/// One job of each outcome (completed, retried then completed, dead) moves the
/// counters and histograms of its task by exactly what happened; the queue depth, the
/// pool and the process figures are there too, and promtool accepts the API's text.
#[tokio::test]
async fn a_job_of_each_outcome_moves_its_counters_and_histograms() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::test_settings(dir.path());
    settings.features.protect_metrics = MetricsProtection::None;
    settings.jobs.backoff_base = Duration::ZERO;
    let svc = Service::builder("metrics_jobs")
        .settings(settings)
        .task("m_ok", ok_task)
        .task("m_flaky", flaky_task)
        .task("m_doomed", doomed_task)
        .build()
        .await
        .unwrap();
    let (router, jobs) = (svc.router(), svc.kernel().jobs().clone());
    let scrape = || async {
        let r = common::get(&router, "/metrics").await;
        assert_eq!(r.status, 200);
        r.text()
    };
    let none = EnqueueOptions::new;
    jobs.enqueue("m_ok", json!({}), none()).await.unwrap();
    jobs.enqueue("m_flaky", json!({}), none().max_attempts(2)).await.unwrap();
    jobs.enqueue("m_doomed", json!({}), none().max_attempts(1)).await.unwrap();
    jobs.enqueue("m_ok", json!({}), none().delay(Duration::from_secs(3600))).await.unwrap();

    let before = samples(&scrape().await);
    // Sampled at this scrape: three due, one an hour ahead, none running.
    assert_eq!(value(&before, r#"kernel_jobs_queue_depth{state="due"}"#), 3.0);
    assert_eq!(value(&before, r#"kernel_jobs_queue_depth{state="scheduled"}"#), 1.0);
    assert_eq!(value(&before, r#"kernel_jobs_queue_depth{state="running"}"#), 0.0);
    assert_eq!(value(&before, r#"kernel_jobs_enqueued_total{task="m_ok"}"#), 2.0);

    let worker = svc.kernel().worker();
    let first = worker.run_once().await.unwrap();
    assert_eq!((first.completed.len(), first.retried.len(), first.dead.len()), (1, 1, 1), "{first:?}");
    let second = worker.run_once().await.unwrap();
    assert_eq!(second.completed.len(), 1, "the flaky job's retry succeeds: {second:?}");

    let text = scrape().await;
    promtool_check("API", &text);
    let after = samples(&text);
    let moved = |series: &str| value(&after, series) - value(&before, series);
    let expected = [
        (r#"kernel_jobs_started_total{task="m_ok"}"#, 1.0),
        (r#"kernel_jobs_completed_total{task="m_ok"}"#, 1.0),
        (r#"kernel_jobs_failed_total{task="m_ok"}"#, 0.0),
        (r#"kernel_jobs_started_total{task="m_flaky"}"#, 2.0),
        (r#"kernel_jobs_failed_total{task="m_flaky"}"#, 1.0),
        (r#"kernel_jobs_retried_total{task="m_flaky"}"#, 1.0),
        (r#"kernel_jobs_completed_total{task="m_flaky"}"#, 1.0),
        (r#"kernel_jobs_dead_total{task="m_flaky"}"#, 0.0),
        (r#"kernel_jobs_started_total{task="m_doomed"}"#, 1.0),
        (r#"kernel_jobs_failed_total{task="m_doomed"}"#, 1.0),
        (r#"kernel_jobs_dead_total{task="m_doomed"}"#, 1.0),
        (r#"kernel_jobs_retried_total{task="m_doomed"}"#, 0.0),
        (r#"kernel_jobs_completed_total{task="m_doomed"}"#, 0.0),
        (r#"kernel_jobs_run_duration_seconds_count{task="m_ok"}"#, 1.0),
        (r#"kernel_jobs_run_duration_seconds_count{task="m_flaky"}"#, 2.0),
        (r#"kernel_jobs_pickup_latency_seconds_count{task="m_ok"}"#, 1.0),
        (r#"kernel_jobs_pickup_latency_seconds_count{task="m_doomed"}"#, 1.0),
        (r#"kernel_jobs_run_duration_seconds_bucket{task="m_ok",le="+Inf"}"#, 1.0),
        (r#"kernel_jobs_run_duration_seconds_bucket{task="m_ok",le="0.01"}"#, 0.0),
    ];
    for (series, want) in expected {
        assert_eq!(moved(series), want, "{series} moved by {} (want {want})", moved(series));
    }
    let ran = moved(r#"kernel_jobs_run_duration_seconds_sum{task="m_ok"}"#);
    assert!((0.03..5.0).contains(&ran), "m_ok slept 30 ms; its run time sum moved by {ran}");
    let picked = moved(r#"kernel_jobs_pickup_latency_seconds_sum{task="m_ok"}"#);
    assert!((0.0..60.0).contains(&picked), "pickup latency sum moved by {picked}");

    assert!(value(&after, "process_resident_memory_bytes") > 1e6, "process_* figures are exported");
    assert!(value(&after, "process_start_time_seconds") > 1.6e9);
    assert!(value(&after, "process_open_fds") > 0.0);
    let pool = r#"kernel_db_pool_connections{engine="sqlite",state="idle"}"#;
    assert!(after.contains_key(pool), "the pool's connections are sampled:\n{text}");
    for series in after.keys() {
        let name = family(series);
        assert!(METRICS.iter().any(|m| m.name == name), "{name} is exported but not in names::METRICS");
    }
}

/// A failed login and a successful one are counted by outcome.
#[tokio::test]
async fn logins_are_counted_by_outcome() {
    let svc = common::service(vec![], |s| s.features.protect_metrics = MetricsProtection::None).await;
    let store = svc.service.kernel().auth().users().unwrap().clone();
    let new = app_kernel::auth::NewUser { username: "counted", email: None, password: "password-1", role: "user" };
    store.create_user(&new).await.unwrap();
    let router = svc.router();
    let count = |outcome: &'static str| {
        let router = router.clone();
        async move {
            let text = common::get(&router, "/metrics").await.text();
            value(&samples(&text), &format!(r#"kernel_auth_logins_total{{outcome="{outcome}"}}"#))
        }
    };
    let (bad, good) = (count("bad_credentials").await, count("success").await);
    for password in ["wrong-password", "password-1"] {
        let body = json!({"username": "counted", "password": password}).to_string();
        let req = http::Request::post("/api/v1/auth/login")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body))
            .unwrap();
        common::send(&router, req).await;
    }
    assert_eq!(count("bad_credentials").await - bad, 1.0);
    assert_eq!(count("success").await - good, 1.0);
}

/// A request over the rate limit, a replayed `Idempotency-Key` and a key reused with
/// another body are each counted once.
#[tokio::test]
async fn rate_limit_refusals_and_idempotency_replays_are_counted() {
    let widgets = axum::Router::new().route("/widgets", axum::routing::post(|| async { "made" }));
    let svc = common::service(vec![widgets], |s| {
        s.features.protect_metrics = MetricsProtection::None;
        s.reliability.rate_limit_requests = 3;
    })
    .await;
    let router = svc.router();
    let counts = || async {
        let all = samples(&common::get(&router, "/metrics").await.text());
        [
            value(&all, "kernel_rate_limit_refusals_total"),
            value(&all, "kernel_idempotency_replays_total"),
            value(&all, r#"kernel_idempotency_conflicts_total{reason="key_reused"}"#),
        ]
    };
    let post = |body: &'static str| {
        http::Request::post("/api/v1/widgets")
            .header("idempotency-key", "metrics-key-1")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body))
            .unwrap()
    };
    let before = counts().await;
    let statuses = [
        common::send(&router, post("{}")).await.status.as_u16(),
        common::send(&router, post("{}")).await.status.as_u16(),
        common::send(&router, post(r#"{"other":1}"#)).await.status.as_u16(),
        common::send(&router, post("{}")).await.status.as_u16(),
    ];
    assert_eq!(statuses, [200, 200, 422, 429], "made, replayed, key reused, over the limit of 3");
    let after = counts().await;
    let moved: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    assert_eq!(moved, [1.0, 1.0, 1.0], "refusals, replays, key reused");
}

struct Proc {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// `order_service` with `args`, in `dir`, once it logged `message` (its `address`).
    fn start(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)], message: &str) -> (Self, String) {
        let mut child = common::example_command("order_service")
            .args(args)
            .env("PORT", "0")
            .env("DATABASE_NAME", dir.join("orders.db"))
            .env("JWT_SECRET", "metrics-secret-metrics-secret-metrics!")
            .env("ADMIN_EMAIL", "admin@example.com")
            .env("ADMIN_PASSWORD", "admin-password-1")
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("order_service: {e} (examples are built by `cargo test`)"));
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let proc = Self { child, lines };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let Ok(line) = proc.lines.recv_timeout(Duration::from_millis(100)) else { continue };
            let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
            if v["message"] == message {
                let addr = v["address"].as_str().unwrap().to_owned();
                return (proc, addr);
            }
        }
        panic!("order_service {args:?} never logged `{message}`");
    }

    fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = common::wait_within(&mut self.child, Duration::from_secs(30), "order_service after SIGTERM");
        assert!(status.success(), "exit after SIGTERM: {status}");
    }
}

/// An API process and a `worker` process of the same service: the worker's own port
/// answers `/healthz`, refuses `/metrics` without an admin token (as the API does),
/// and with one shows the job it ran; promtool accepts both processes' text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_worker_processes_each_serve_metrics_that_promtool_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let (api, api_addr) = Proc::start(dir.path(), &[], &[], "listening");
    let (worker, worker_addr) =
        Proc::start(dir.path(), &["worker"], &[("WORKER_HTTP_ADDR", "127.0.0.1:0")], "worker listening");
    assert!(worker_addr.starts_with("127.0.0.1:"), "{worker_addr}");
    let http = common::http_client();
    let login = json!({"username": "admin", "password": "admin-password-1"});
    let token: Value = http
        .post(format!("http://{api_addr}/api/v1/auth/login"))
        .json(&login)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().expect("admin token"));

    let health = http.get(format!("http://{worker_addr}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    let refused = http.get(format!("http://{worker_addr}/metrics")).send().await.unwrap();
    assert_eq!(refused.status(), 401, "the worker's /metrics is protected like the API's");

    let order = http
        .post(format!("http://{api_addr}/api/v1/orders"))
        .header("authorization", &bearer)
        .json(&json!({"item": "book"}))
        .send()
        .await
        .unwrap();
    assert_eq!(order.status(), 200);

    let scrape = |addr: String| {
        let (http, bearer) = (http.clone(), bearer.clone());
        async move {
            let r = http.get(format!("http://{addr}/metrics")).header("authorization", bearer).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    let completed = r#"kernel_jobs_completed_total{task="process_order"}"#;
    let deadline = Instant::now() + Duration::from_secs(20);
    let worker_text = loop {
        let text = scrape(worker_addr.clone()).await;
        if value(&samples(&text), completed) >= 1.0 {
            break text;
        }
        assert!(Instant::now() < deadline, "the worker never showed the order's job completed:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let api_text = scrape(api_addr.clone()).await;
    promtool_check("worker", &worker_text);
    promtool_check("API", &api_text);

    let (w, a) = (samples(&worker_text), samples(&api_text));
    assert_eq!(value(&w, r#"kernel_jobs_started_total{task="process_order"}"#), 1.0);
    assert_eq!(value(&w, r#"kernel_jobs_run_duration_seconds_count{task="process_order"}"#), 1.0);
    assert_eq!(value(&a, r#"kernel_jobs_enqueued_total{task="process_order"}"#), 1.0);
    assert_eq!(value(&a, r#"kernel_auth_logins_total{outcome="success"}"#), 1.0);
    assert!(value(&w, "process_start_time_seconds") > 1.6e9 && value(&w, "process_threads") >= 1.0);
    assert!(!w.keys().any(|k| k.starts_with("http_requests_total")), "the worker serves no API routes");
    worker.stop();
    api.stop();
}
