//! The connection loop of [`Service::serve`](super::Service::serve): hyper's
//! HTTP/1 and HTTP/2 (prior knowledge) server with the limits a public port needs.
//!
//! - `header_read_timeout` (hyper's own timer): a request head must arrive whole
//!   within it, counted from when the server starts waiting for it, so a client
//!   that sends part of a head, or trickles it, is cut off. Hyper counts the wait
//!   for the next request of a keep-alive connection the same way: an idle HTTP/1
//!   connection is closed after it too. A connection that sends no byte at all
//!   within it is closed as well.
//! - `idle_timeout`: a connection on which no byte moves either way for this long
//!   (a stalled body upload, a client that stops reading its response, an idle
//!   HTTP/2 or upgraded connection) is closed. Checked four times per period by a
//!   timer per connection; the request path only counts bytes.
//! - `max_connections`: at most this many connections are served at once; further
//!   clients wait in the listen backlog until one closes (they are not refused).
//!
//! On shutdown the listener closes, every connection finishes its in-flight
//! requests and closes, and the loop returns once all have.

use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower::{Layer, ServiceExt};

use super::ServerSettings;

/// The connection limits of [`ServerSettings`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    header_read_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    max_connections: usize,
}

impl Limits {
    pub(crate) fn new(s: &ServerSettings) -> Self {
        Self {
            header_read_timeout: s.header_read_timeout,
            idle_timeout: s.idle_timeout,
            max_connections: s.max_connections.max(1),
        }
    }
}

/// Serves `router` on `listener` until `signal` completes, then lets each
/// connection finish its requests and returns once all are closed.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    signal: impl std::future::Future<Output = ()>,
) {
    // As axum::serve does: every handler becomes a route once, not on each request.
    let router: Router = router.with_state(());
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    builder.http2().enable_connect_protocol();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(());
    let (closed_tx, closed_rx) = watch::channel(());
    let mut signal = pin!(signal);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut signal => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = accept(&listener) => accepted,
            () = &mut signal => break,
        };
        let service = Extension(ConnectInfo(peer))
            .layer(router.clone())
            .map_request(|req: http::Request<hyper::body::Incoming>| req.map(axum::body::Body::new));
        let (builder, mut stop, closed) = (builder.clone(), stop_rx.clone(), closed_rx.clone());
        tokio::spawn(async move {
            let activity = Arc::new(AtomicU64::new(0));
            let io = TokioIo::new(Counted { io: stream, activity: activity.clone() });
            let conn = builder.serve_connection_with_upgrades(io, TowerToHyperService::new(service));
            let mut conn = pin!(conn);
            let mut watchdog = Watchdog::new(limits, activity);
            let mut stopping = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::trace!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = stop.changed(), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    silent = watchdog.tick() => if silent {
                        tracing::debug!(%peer, "closing a silent connection");
                        break;
                    }
                }
            }
            drop((permit, closed));
        });
    }
    drop(listener);
    drop(closed_rx);
    let _ = stop_tx.send(());
    closed_tx.closed().await;
}

/// The next connection; errors of one connection are skipped, others (out of
/// file descriptors) logged and retried after a pause, as axum does.
async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                tracing::error!(error = %e, "accept failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

/// Decides when a connection has been silent too long: `header_read_timeout`
/// before its first byte, `idle_timeout` after.
struct Watchdog {
    limits: Limits,
    activity: Arc<AtomicU64>,
    seen: u64,
    silent_for: Duration,
}

impl Watchdog {
    fn new(limits: Limits, activity: Arc<AtomicU64>) -> Self {
        Self { limits, activity, seen: 0, silent_for: Duration::ZERO }
    }

    fn limit(&self) -> Option<Duration> {
        if self.seen == 0 {
            self.limits.header_read_timeout.or(self.limits.idle_timeout)
        } else {
            self.limits.idle_timeout
        }
    }

    /// Waits a quarter of the current limit; true once nothing moved for the limit.
    async fn tick(&mut self) -> bool {
        let Some(limit) = self.limit() else { return std::future::pending().await };
        let step = (limit / 4).max(Duration::from_millis(10));
        tokio::time::sleep(step).await;
        let now = self.activity.load(Ordering::Relaxed);
        if now == self.seen {
            self.silent_for += step;
        } else {
            (self.seen, self.silent_for) = (now, Duration::ZERO);
        }
        self.silent_for >= limit
    }
}

pin_project_lite::pin_project! {
    /// A stream that counts the reads and writes that moved bytes.
    struct Counted {
        #[pin]
        io: TcpStream,
        activity: Arc<AtomicU64>,
    }
}

impl AsyncRead for Counted {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = self.project();
        let result = this.io.poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

impl AsyncWrite for Counted {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.project();
        let result = this.io.poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.project();
        let result = this.io.poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}
