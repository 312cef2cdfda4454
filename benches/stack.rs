//! What each part of the middleware stack costs per request: GET /healthz through
//! the router with no part, with each part alone, and with the full stack.
//!
//! Run: cargo bench --bench stack
//! Logs go to a sink through the JSON formatter, so formatting is counted and
//! writing is not.

#![allow(missing_docs)]

use app_kernel::settings::{KernelSettings, MetricsProtection, StackSettings};
use app_kernel::Service;
use axum::body::Body;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use http::Request;
use tower::ServiceExt;

fn none() -> StackSettings {
    let mut s = StackSettings::default();
    s.request_id = false;
    s.access_log = false;
    s.http_metrics = false;
    s.security_headers = false;
    s.cors = false;
    s.body_limit = false;
    s.timeout = false;
    s.catch_panic = false;
    s
}

fn configs() -> Vec<(&'static str, StackSettings)> {
    let one = |f: fn(&mut StackSettings)| {
        let mut s = none();
        f(&mut s);
        s
    };
    vec![
        ("none", none()),
        ("request_id", one(|s| s.request_id = true)),
        ("access_log", one(|s| s.access_log = true)),
        ("http_metrics", one(|s| s.http_metrics = true)),
        ("security_headers", one(|s| s.security_headers = true)),
        ("cors", one(|s| s.cors = true)),
        ("body_limit", one(|s| s.body_limit = true)),
        ("timeout", one(|s| s.timeout = true)),
        ("catch_panic", one(|s| s.catch_panic = true)),
        (
            "request_id+access_log",
            one(|s| {
                s.request_id = true;
                s.access_log = true;
            }),
        ),
        ("full", StackSettings::default()),
    ]
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _ = tracing_subscriber::fmt().json().with_current_span(true).with_writer(std::io::sink).try_init();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("stack GET /healthz");
    for (name, stack) in configs() {
        let mut settings = KernelSettings::default();
        settings.stack = stack;
        settings.auth.token_secret = Some("bench-secret-bench-secret-bench-secret".to_owned().into());
        settings.database.name = Some(dir.path().join(format!("{name}.db")).display().to_string());
        settings.features.protect_metrics = MetricsProtection::None;
        let router: Router =
            rt.block_on(async { Service::builder("bench").settings(settings).build().await.unwrap().router() });
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                let router = router.clone();
                async move {
                    let req =
                        Request::get("/healthz").header("origin", "http://a.example").body(Body::empty()).unwrap();
                    let resp = router.oneshot(req).await.unwrap();
                    assert_eq!(resp.status(), 200);
                    resp
                }
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
