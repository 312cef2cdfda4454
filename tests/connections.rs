//! Connection hygiene on a real socket: a client that sends a partial request head,
//! trickles one, sends nothing or stalls mid-body is disconnected within the
//! configured timeout; past `max_connections`, further clients wait until one closes.

mod common;

use std::time::{Duration, Instant};

use app_kernel::settings::KernelSettings;
use axum::routing::post;
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Serves a service edited by `edit` on a free port; stops when the sender drops.
async fn serving(edit: impl FnOnce(&mut KernelSettings)) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let echo = Router::new().route("/echo", post(|body: String| async move { body }));
    let svc = common::service(vec![echo], edit).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (service, dir) = svc.into_parts();
    tokio::spawn(async move {
        let _dir = dir;
        service
            .serve_with_shutdown(listener, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (addr, stop)
}

fn short(header: Duration, idle: Duration) -> impl FnOnce(&mut KernelSettings) {
    move |s| {
        s.server.header_read_timeout = Some(header);
        s.server.idle_timeout = Some(idle);
    }
}

/// Reads until the server closes the connection; how long that took, or `None`
/// if it was still open after `patience`.
async fn closed_within(stream: &mut TcpStream, patience: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((start + patience).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn a_partial_request_head_is_cut_off_at_the_header_read_timeout() {
    let (addr, _stop) = serving(short(Duration::from_millis(500), Duration::from_secs(60))).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    let took = closed_within(&mut client, Duration::from_secs(5)).await.expect("disconnected");
    assert!(took >= Duration::from_millis(400), "closed after {took:?}, before the timeout");
}

#[tokio::test]
async fn a_trickled_request_head_is_cut_off_at_the_header_read_timeout() {
    let (addr, _stop) = serving(short(Duration::from_millis(600), Duration::from_secs(60))).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    for byte in head {
        // A byte every 100 ms: the whole head would take ~7 s.
        if client.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if start.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let took = closed_within(&mut client, Duration::from_secs(3)).await.map(|_| start.elapsed());
    let took = took.expect("disconnected");
    assert!(took < Duration::from_secs(4), "cut off after {took:?}, not at ~600 ms");
}

#[tokio::test]
async fn a_connection_that_sends_nothing_and_an_idle_keep_alive_are_closed() {
    let (addr, _stop) = serving(short(Duration::from_millis(500), Duration::from_secs(60))).await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let took = closed_within(&mut silent, Duration::from_secs(5)).await.expect("silent connection closed");
    assert!(took >= Duration::from_millis(400), "{took:?}");

    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut kept, Duration::from_secs(5)).await.is_some(), "idle keep-alive closed");
}

#[tokio::test]
async fn a_stalled_body_is_cut_off_at_the_idle_timeout() {
    let (addr, _stop) = serving(|s| {
        short(Duration::from_secs(10), Duration::from_millis(500))(s);
        s.server.request_timeout = Duration::from_secs(60);
    })
    .await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    let head = "POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nhello";
    client.write_all(head.as_bytes()).await.unwrap();
    let took = closed_within(&mut client, Duration::from_secs(5)).await.expect("stalled upload disconnected");
    assert!(took >= Duration::from_millis(400), "{took:?}");
}

#[tokio::test]
async fn past_max_connections_a_client_waits_until_one_closes() {
    let (addr, _stop) = serving(|s| s.server.max_connections = 2).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(request).await.unwrap();
        let mut buf = [0u8; 1024];
        let n = c.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(c);
    }
    let mut third = TcpStream::connect(addr).await.unwrap(); // the backlog takes it
    third.write_all(request).await.unwrap();
    let mut buf = [0u8; 1024];
    let waited = tokio::time::timeout(Duration::from_millis(700), third.read(&mut buf)).await;
    assert!(waited.is_err(), "a third connection was served while two were open");
    drop(held.pop());
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf)).await.expect("served").unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

/// With no limit configured, a service still cuts slow clients off within seconds:
/// a partial request head is closed at the default header read timeout (10 s, as the
/// README's table says), and the defaults bound the silent connection (60 s) and the
/// connections served at once (1024).
#[tokio::test]
async fn with_the_default_settings_a_partial_request_head_is_cut_off_within_seconds() {
    let (addr, _stop) = serving(|_| {}).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    let took = closed_within(&mut client, Duration::from_secs(20)).await;
    let took = took.expect("a partial head is still open after 20 s with the default settings");
    assert!(took >= Duration::from_secs(9), "closed after {took:?}, before the 10 s default");
    let defaults = app_kernel::settings::KernelSettings::default().server;
    let (header, idle) = (Duration::from_secs(10), Duration::from_secs(60));
    assert_eq!((defaults.header_read_timeout, defaults.idle_timeout), (Some(header), Some(idle)));
    assert_eq!(defaults.max_connections, 1024);
}
