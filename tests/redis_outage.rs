//! A Redis outage under load costs a request one fast failure, not a reconnect wait:
//! with `REDIS_URL` set, a few clients keep calling (idempotency keys, the rate
//! limit on every request) while the test's own `redis-server` is killed. During the
//! outage every request is still answered at once — the rate limit and idempotency
//! fail open, a stream lease is refused (503), as documented — and after Redis comes
//! back on the same port an idempotent replay works again, without a restart. Ignored
//! without `redis-server` on `PATH`.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use app_kernel::streaming::StreamLeases;
use app_kernel::{ApiError, Service};
use axum::routing;
use axum::{Json, Router};
use common::own_server::OwnRedis;
use common::trials::{self, test, Program};
use serde_json::{json, Value};

static ORDERS: AtomicU64 = AtomicU64::new(0);

/// A write that must happen once per Idempotency-Key.
async fn place_order() -> Json<Value> {
    Json(json!({ "order": ORDERS.fetch_add(1, Ordering::SeqCst) + 1 }))
}

async fn ping() -> Json<Value> {
    Json(json!({ "ok": true }))
}

/// Takes a stream lease and gives it back.
async fn stream(leases: StreamLeases) -> Result<Json<Value>, ApiError> {
    leases.acquire("load-client").await?.release().await?;
    Ok(Json(json!({ "streamed": true })))
}

/// POSTs an order with `key`; the status, the body and whether it was a replay.
async fn order(http: &reqwest::Client, base: &str, key: &str) -> (u16, Value, bool) {
    let r = http.post(format!("{base}/api/v1/orders")).header("idempotency-key", key).send().await.unwrap();
    let replayed = r.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    (r.status().as_u16(), r.json().await.unwrap(), replayed)
}

/// What the clients saw while Redis was down: latencies of the answered requests,
/// and the statuses that were not 200.
#[derive(Default)]
struct Outage {
    latencies: Vec<Duration>,
    failures: Vec<u16>,
}

async fn a_dead_redis_costs_one_fast_failure_and_sharing_returns_after_its_restart() {
    let mut redis = OwnRedis::launch();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::test_settings(dir.path());
    settings.redis.url = Some(redis.url().into());
    settings.redis.key_prefix = common::unique_name("outage") + ":";
    settings.reliability.rate_limit_requests = 1_000_000; // counted on every request, never reached
    settings.features.ready_check_timeout = Duration::from_millis(500);
    let api = Router::new()
        .route("/orders", routing::post(place_order))
        .route("/ping", routing::get(ping))
        .route("/stream", routing::get(stream));
    let svc = Service::builder("redis_outage").settings(settings).router(api).build().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(svc.serve_with_shutdown(listener, async move {
        let _ = stop_rx.await;
    }));
    let http = common::http_client();

    // Shared behaviour while Redis is up: a repeat of a key is a replay, not a second order.
    let (status, first, _) = order(&http, &base, "before-1").await;
    assert_eq!(status, 200);
    let (status, again, replayed) = order(&http, &base, "before-1").await;
    assert_eq!((status, &again, replayed), (200, &first, true));
    assert_eq!(http.get(format!("{base}/api/v1/stream")).send().await.unwrap().status(), 200);
    let (status, ready) = readyz(&http, &base).await;
    assert_eq!((status, &ready["checks"]["redis"]["healthy"]), (200, &json!(true)), "{ready}");
    assert!(ready["checks"]["redis"]["latency_ms"].is_u64(), "{ready}");

    // Four clients under load, each request with a fresh key; only the requests sent
    // while Redis is down are recorded.
    let down = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (http, base, down, stop) = (http.clone(), base.clone(), down.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seen = Outage::default();
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let during = down.load(Ordering::SeqCst);
                    let started = Instant::now();
                    let status = if i.is_multiple_of(2) {
                        order(&http, &base, &format!("load-{c}-{i}")).await.0
                    } else {
                        http.get(format!("{base}/api/v1/ping")).send().await.unwrap().status().as_u16()
                    };
                    if during && down.load(Ordering::SeqCst) {
                        seen.latencies.push(started.elapsed());
                        if status != 200 {
                            seen.failures.push(status);
                        }
                    }
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.kill();
    down.store(true, Ordering::SeqCst);
    // While Redis is down, leases fail closed: a stream is refused at once.
    let started = Instant::now();
    let r = http.get(format!("{base}/api/v1/stream")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "stream_leases_unavailable");
    assert!(started.elapsed() < Duration::from_millis(500), "lease refused in {:?}", started.elapsed());
    // Readiness names Redis as the dependency that is down.
    let (status, ready) = readyz(&http, &base).await;
    assert_eq!((status, &ready["checks"]["redis"]["healthy"]), (503, &json!(false)), "{ready}");
    assert_eq!(ready["checks"]["database"]["healthy"], true, "{ready}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    down.store(false, Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    let mut outage = Outage::default();
    for client in clients {
        let seen = client.await.unwrap();
        outage.latencies.extend(seen.latencies);
        outage.failures.extend(seen.failures);
    }

    // Fail open: every request answered 200, each in well under the old reconnect wait.
    assert!(outage.failures.is_empty(), "statuses other than 200 during the outage: {:?}", outage.failures);
    outage.latencies.sort();
    let n = outage.latencies.len();
    assert!(n >= 60, "only {n} requests answered in 3 s of outage: the clients stalled");
    let slowest = outage.latencies[n - 1];
    let p90 = outage.latencies[n * 9 / 10];
    assert!(slowest < Duration::from_millis(500), "slowest request during the outage took {slowest:?}");
    assert!(p90 < Duration::from_millis(100), "p90 during the outage was {p90:?} ({n} requests)");

    // Redis back on the same port: a key is shared again (its repeat is a replay)
    // within a few seconds, without restarting the service.
    redis.spawn().unwrap();
    let back = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let key = format!("after-{attempt}");
        let (s1, first, _) = order(&http, &base, &key).await;
        let (s2, again, replayed) = order(&http, &base, &key).await;
        assert_eq!((s1, s2), (200, 200));
        if replayed {
            assert_eq!(again, first, "a replay answers the first response");
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(5), "no replay {:?} after Redis came back", back.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while http.get(format!("{base}/api/v1/stream")).send().await.unwrap().status() != 200 {
        assert!(Instant::now() < deadline, "stream leases still refused after Redis came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while readyz(&http, &base).await.0 != 200 {
        assert!(Instant::now() < deadline, "/readyz still 503 after Redis came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_tx.send(());
    let _ = server.await;
}

/// `GET /readyz`: the status and the report.
async fn readyz(http: &reqwest::Client, base: &str) -> (u16, Value) {
    let r = http.get(format!("{base}/readyz")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn main() {
    trials::run(vec![test("a_dead_redis_costs_one_fast_failure_and_sharing_returns_after_its_restart")
        .threads(2)
        .needs_program(Program::RedisServer)
        .run(|_| a_dead_redis_costs_one_fast_failure_and_sharing_returns_after_its_restart())]);
}
