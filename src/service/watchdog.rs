//! When a connection has taken too long: the per-connection watchdog of
//! [`server`](super::server).
//!
//! Guarantees, with the timeouts of [`ServerSettings`](super::ServerSettings):
//! - a request head (HTTP/1) that has not arrived whole `header_read_timeout`
//!   after the server began waiting for it ends the connection, however the bytes
//!   trickle in; hyper starts that wait after every response, so an idle
//!   keep-alive connection ends after the same time;
//! - a connection that sends no byte at all ends after `header_read_timeout`;
//! - a connection on which no byte moves either way for `idle_timeout` ends.
//!
//! Checked by one timer per connection, every quarter of the shortest limit (so a
//! limit is enforced within 125 % of itself). The request path pays no timer:
//! [`HeadClock`] is the timer hyper is given for its header-read deadline, and
//! it only writes the deadline into an atomic (hyper's own Tokio timer put one
//! entry per request into the runtime's timer wheel and took it out again, 6 % of
//! the instructions of a `/healthz` request).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::server::Limits;

/// The shared state of one connection: bytes moved, and the pending head's deadline.
#[derive(Debug)]
struct Marks {
    /// Start of the connection; deadlines are milliseconds after it.
    base: Instant,
    /// Reads and writes that moved bytes.
    activity: AtomicU64,
    /// 0 when no request head is awaited, else its deadline in ms after `base` (+1).
    head_deadline: AtomicU64,
}

impl Marks {
    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX - 1) + 1
    }
}

/// The timer hyper uses for the header-read deadline of one connection.
#[derive(Debug, Clone)]
pub(crate) struct HeadClock(Arc<Marks>);

impl Timer for HeadClock {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        self.0.head_deadline.store(self.0.millis(deadline), Ordering::Relaxed);
        Box::pin(HeadDeadline(self.0.clone()))
    }

    fn reset(&self, _sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        self.0.head_deadline.store(self.0.millis(new_deadline), Ordering::Relaxed);
    }
}

/// Hyper holds this while it waits for a request head and drops it when the head
/// is complete. It never completes by itself: the watchdog ends the connection.
struct HeadDeadline(Arc<Marks>);

impl Future for HeadDeadline {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Sleep for HeadDeadline {}

impl Drop for HeadDeadline {
    fn drop(&mut self) {
        self.0.head_deadline.store(0, Ordering::Relaxed);
    }
}

/// Decides when a connection has taken too long; see the module docs.
#[derive(Debug)]
pub(crate) struct Watchdog {
    limits: Limits,
    marks: Arc<Marks>,
    seen: u64,
    silent_for: Duration,
}

impl Watchdog {
    /// A watchdog for a new connection on `io`: the stream to serve (which counts
    /// its traffic) and the timer to give hyper.
    pub(crate) fn new(limits: Limits, io: TcpStream) -> (Self, Counted, HeadClock) {
        let marks =
            Arc::new(Marks { base: Instant::now(), activity: AtomicU64::new(0), head_deadline: AtomicU64::new(0) });
        let counted = Counted { io, marks: marks.clone() };
        let clock = HeadClock(marks.clone());
        (Self { limits, marks, seen: 0, silent_for: Duration::ZERO }, counted, clock)
    }

    /// How long the connection may stay silent now: `header_read_timeout` before
    /// its first byte, `idle_timeout` after.
    fn silence_limit(&self) -> Option<Duration> {
        if self.seen == 0 {
            self.limits.header_read_timeout.or(self.limits.idle_timeout)
        } else {
            self.limits.idle_timeout
        }
    }

    /// Completes once the connection should end.
    pub(crate) async fn silent(&mut self) {
        while !self.tick().await {}
    }

    /// Waits a quarter of the shortest limit; true once the connection should end.
    async fn tick(&mut self) -> bool {
        let shortest = match (self.limits.header_read_timeout, self.limits.idle_timeout) {
            (Some(h), Some(i)) => h.min(i),
            (Some(d), None) | (None, Some(d)) => d,
            (None, None) => return std::future::pending().await,
        };
        let step = (shortest / 4).max(Duration::from_millis(10));
        tokio::time::sleep(step).await;
        let deadline = self.marks.head_deadline.load(Ordering::Relaxed);
        if deadline != 0 && self.marks.millis(Instant::now()) >= deadline {
            return true;
        }
        let now = self.marks.activity.load(Ordering::Relaxed);
        if now == self.seen {
            self.silent_for += step;
        } else {
            (self.seen, self.silent_for) = (now, Duration::ZERO);
        }
        self.silence_limit().is_some_and(|limit| self.silent_for >= limit)
    }
}

pin_project_lite::pin_project! {
    /// A stream that counts the reads and writes that moved bytes.
    #[derive(Debug)]
    pub(crate) struct Counted {
        #[pin]
        io: TcpStream,
        marks: Arc<Marks>,
    }
}

impl AsyncRead for Counted {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = self.project();
        let result = this.io.poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.marks.activity.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

impl AsyncWrite for Counted {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.project();
        let result = this.io.poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.marks.activity.fetch_add(1, Ordering::Relaxed);
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
            this.marks.activity.fetch_add(1, Ordering::Relaxed);
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
