//! Readiness reports every configured dependency and turns 503 for the drain. The
//! Redis test runs a `redis-server` of its own (ignored without one on `PATH`).

mod common;

use std::time::{Duration, Instant};

use app_kernel::Service;
use common::own_server::OwnRedis;
use common::trials::{self, test, Program};
use common::{get as get_path, test_settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn readyz_reports_redis_with_its_latency_and_503_when_it_is_down() {
    let redis = OwnRedis::launch();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.redis.url = Some(redis.url().into());
    settings.features.ready_check_timeout = Duration::from_millis(500);
    let svc = Service::builder("readiness").settings(settings).build().await.unwrap();
    let router = svc.router();

    let r = get_path(&router, "/readyz").await;
    let body = r.json();
    assert_eq!((r.status.as_u16(), &body["checks"]["redis"]["healthy"]), (200, &serde_json::json!(true)), "{body}");
    assert!(body["checks"]["redis"]["latency_ms"].is_u64(), "{body}");

    drop(redis);
    let started = Instant::now();
    let r = get_path(&router, "/readyz").await;
    let body = r.json();
    assert_eq!((r.status.as_u16(), &body["checks"]["redis"]["healthy"]), (503, &serde_json::json!(false)), "{body}");
    assert_eq!(body["checks"]["database"]["healthy"], true, "only Redis is down: {body}");
    assert!(started.elapsed() < Duration::from_secs(3), "answered within the check timeout: {:?}", started.elapsed());
}

/// Sends `GET /readyz` on a new connection; the status, or `None` if refused (an
/// answer that does not come within 5 s fails the test).
async fn readyz_status(addr: std::net::SocketAddr) -> Option<u16> {
    let ask = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.ok()?;
        let mut head = vec![0u8; 12];
        s.read_exact(&mut head).await.ok()?;
        String::from_utf8_lossy(&head[9..12]).parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(5), ask).await.expect("/readyz answered or refused within 5 s")
}

async fn after_sigterm_readyz_is_503_while_the_server_still_accepts_for_the_drain_delay() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.server.drain_delay = Duration::from_millis(800);
    let svc = Service::builder("drain").settings(settings).build().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(svc.serve_with_shutdown(listener, async move {
        let _ = stopped.await;
    }));
    assert_eq!(readyz_status(addr).await, Some(200));
    stop.send(()).unwrap();
    // Unready well within the drain delay (800 ms), on a new connection: still accepted.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(400);
    loop {
        match readyz_status(addr).await {
            Some(503) => break,
            status => assert_eq!(status, Some(200), "refused during the drain delay"),
        }
        assert!(tokio::time::Instant::now() < deadline, "/readyz still 200 400 ms after the shutdown began");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ended = tokio::time::timeout(Duration::from_secs(10), server).await.expect("the server stops after the drain");
    ended.unwrap().unwrap();
    assert_eq!(readyz_status(addr).await, None, "refused once the drain delay is over");
}

fn main() {
    trials::run(vec![
        test("readyz_reports_redis_with_its_latency_and_503_when_it_is_down")
            .needs_program(Program::RedisServer)
            .run(|_| readyz_reports_redis_with_its_latency_and_503_when_it_is_down()),
        test("after_sigterm_readyz_is_503_while_the_server_still_accepts_for_the_drain_delay")
            .run(|_| after_sigterm_readyz_is_503_while_the_server_still_accepts_for_the_drain_delay()),
    ]);
}
