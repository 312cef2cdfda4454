//! The connection loop of [`Service::serve`](super::Service::serve): hyper's
//! HTTP/1 and HTTP/2 (prior knowledge) server with the limits a public port needs.
//!
//! - `header_read_timeout` and `idle_timeout`: enforced per connection by the
//!   [`watchdog`](super::watchdog) (a request head that does not arrive whole in
//!   time, a silent connection, an idle keep-alive).
//! - `max_connections`: at most this many connections are served at once; further
//!   clients wait in the listen backlog until one closes (they are not refused).
//!
//! While the service drains (after SIGTERM, before the listener closes), every HTTP/1
//! response says `Connection: close`, so a kept-alive client opens its next request on
//! a new connection, which is still accepted, rather than sending it on one that the
//! shutdown closes under it. On shutdown the listener closes, every connection
//! finishes its in-flight requests and closes, and the loop returns once all have.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::{Extension, Router};
use futures::future::Either;
use futures::task::AtomicWaker;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower::{Layer, ServiceExt};

use super::watchdog::Watchdog;
use super::{Kernel, ServerSettings};

/// The connection limits of [`ServerSettings`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(super) header_read_timeout: Option<Duration>,
    pub(super) idle_timeout: Option<Duration>,
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
/// connection finish its requests and returns once all are closed. While
/// `draining` (the API's kernel) is draining, HTTP/1 responses close their connection.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    draining: Option<Kernel>,
    signal: impl std::future::Future<Output = ()>,
) {
    // As axum::serve does: every handler becomes a route once, not on each request.
    let router: Router = router.with_state(());
    let mut builder = Builder::new(TokioExecutor::new());
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
        let draining = draining.clone();
        let service = tower::service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let http1 = req.version() <= http::Version::HTTP_11;
            let (call, draining) = (service.clone().oneshot(req), draining.clone());
            async move {
                let mut response = call.await?;
                if http1 && draining.as_ref().is_some_and(Kernel::is_draining) {
                    response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
                }
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let (mut builder, mut stop, closed) = (builder.clone(), stop_rx.clone(), closed_rx.clone());
        tokio::spawn(async move {
            let (mut watchdog, io, clock) = Watchdog::new(limits, stream);
            if limits.header_read_timeout.is_some() {
                builder.http1().timer(clock).header_read_timeout(limits.header_read_timeout);
            }
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
            let mut conn = pin!(conn);
            // The stop signal and the watchdog, polled only when they wake (not on
            // every wake of the connection, as a `select!` would).
            let mut control: Pin<Box<dyn Future<Output = Event> + Send>> = Box::pin(async move {
                tokio::select! {
                    _ = stop.changed() => Event::Stop(watchdog),
                    () = watchdog.silent() => Event::Silent,
                }
            });
            let flag = Arc::new(SideWake { woken: AtomicBool::new(true), task: AtomicWaker::new() });
            loop {
                match (FirstOf { main: conn.as_mut(), side: control.as_mut(), flag: &flag }).await {
                    Either::Left(result) => {
                        if let Err(e) = result {
                            tracing::trace!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    Either::Right(Event::Stop(mut watchdog)) => {
                        conn.as_mut().graceful_shutdown();
                        control = Box::pin(async move {
                            watchdog.silent().await;
                            Event::Silent
                        });
                        flag.woken.store(true, Ordering::Relaxed);
                    }
                    Either::Right(Event::Silent) => {
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

/// What the connection's control side reports.
enum Event {
    /// The server is shutting down; the watchdog keeps watching the drain.
    Stop(Watchdog),
    Silent,
}

/// The control side's waker: marks that it was woken, then wakes the task.
struct SideWake {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for SideWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// Completes with whichever of `main` and `side` completes first, polling `side`
/// only when its own waker fired (and on the first poll).
struct FirstOf<'a, M, S: ?Sized> {
    main: Pin<&'a mut M>,
    side: Pin<&'a mut S>,
    flag: &'a Arc<SideWake>,
}

impl<M: Future, S: Future + ?Sized> Future for FirstOf<'_, M, S> {
    type Output = Either<M::Output, S::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(out) = self.main.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(out));
        }
        if self.flag.woken.swap(false, Ordering::Acquire) {
            self.flag.task.register(cx.waker());
            let waker = Waker::from(self.flag.clone());
            if let Poll::Ready(out) = self.side.as_mut().poll(&mut Context::from_waker(&waker)) {
                return Poll::Ready(Either::Right(out));
            }
        }
        Poll::Pending
    }
}
