//! Observing each HTTP request: one access log line and the request metrics.
//!
//! The layer runs after routing, so it labels by the matched route template
//! (`/api/v1/widgets/{id}`), never by the raw path: a scanner cannot blow up the
//! number of series. Requests that matched nothing are labelled `unmatched`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::MatchedPath;
use http::{Method, Request, Response};
use tower::{Layer, Service};

use super::metrics::RequestSeries;
use super::names;

/// Adds [`Observe`]: access log and/or request metrics.
#[derive(Debug, Clone)]
pub struct ObserveLayer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    log: bool,
    metrics: bool,
    series: RequestSeries,
    in_flight: Option<metrics::Gauge>,
}

impl ObserveLayer {
    /// Logs one line per request when `log`, records metrics when `metrics`.
    pub fn new(log: bool, metrics: bool) -> Self {
        let in_flight = metrics.then(|| metrics::gauge!(names::HTTP_REQUESTS_IN_FLIGHT));
        Self { shared: Arc::new(Shared { log, metrics, series: RequestSeries::default(), in_flight }) }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner, shared: self.shared.clone() }
    }
}

/// See [`ObserveLayer`].
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, B, RB> Service<Request<B>> for Observe<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let route = req.extensions().get::<MatchedPath>().cloned();
        let method = req.method().clone();
        if let Some(g) = &self.shared.in_flight {
            g.increment(1.0);
        }
        let start = Instant::now();
        ObserveFuture {
            inner: self.inner.call(req),
            state: Some(Pending { method, route, start, shared: self.shared.clone() }),
        }
    }
}

struct Pending {
    method: Method,
    route: Option<MatchedPath>,
    start: Instant,
    shared: Arc<Shared>,
}

pin_project_lite::pin_project! {
    /// Response future of [`Observe`].
    pub struct ObserveFuture<F> {
        #[pin]
        inner: F,
        state: Option<Pending>,
    }
    impl<F> PinnedDrop for ObserveFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            // A request dropped before it finished (client gone) still leaves the gauge.
            if let Some(p) = this.project().state.take() {
                if let Some(g) = &p.shared.in_flight {
                    g.decrement(1.0);
                }
            }
        }
    }
}

impl<F> std::fmt::Debug for ObserveFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObserveFuture").finish_non_exhaustive()
    }
}

impl<F, RB, E> Future for ObserveFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let (Some(p), Ok(response)) = (this.state.take(), &result) {
            p.finish(response.status().as_u16());
        }
        Poll::Ready(result)
    }
}

impl Pending {
    fn finish(self, status: u16) {
        let elapsed = self.start.elapsed();
        let route = self.route.as_ref().map_or(names::UNMATCHED_ROUTE, MatchedPath::as_str);
        let shared = &self.shared;
        if shared.metrics {
            shared.series.record(&self.method, route, status, elapsed.as_secs_f64());
        }
        if let Some(g) = &shared.in_flight {
            g.decrement(1.0);
        }
        let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        if shared.log && !super::log_format::write_access_line(self.method.as_str(), route, status, latency_us) {
            // Rounded to the microsecond, as the direct path writes it.
            #[allow(clippy::cast_precision_loss)]
            let latency_ms = latency_us as f64 / 1000.0;
            // `message` as a field is a `&str`, cheaper to record than format arguments.
            tracing::info!(
                target: names::ACCESS_LOG_TARGET,
                message = "request",
                method = self.method.as_str(),
                route,
                status,
                latency_ms,
            );
        }
    }
}
