//! The rate limit as a layer of the stack: on every route under `api_prefix`, the
//! caller is counted (by user id when its credentials are good, else by address)
//! and the response says where it stands: `RateLimit-Limit`, `RateLimit-Remaining`,
//! `RateLimit-Reset` (seconds). Past the limit: 429 `rate_limited` with
//! `Retry-After`, and the handler does not run.
//!
//! The caller is identified once: the identity extractors of the handler reuse it.
//! If the store cannot be asked (Redis down), the request goes on unlimited and the
//! 1st, 2nd, 4th... failure is logged: an outage of the limiter is not an outage of
//! the API.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use futures::future::{BoxFuture, Either};
use http::{HeaderName, HeaderValue, Request};
use tower::{Layer, Service};

use super::rate_limit::{RateDecision, RateLimiter};
use crate::error::ApiError;
use crate::observability::names;

/// `RateLimit-Limit`: requests allowed per window.
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`: requests left in the window.
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: seconds until the window starts over.
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

#[derive(Debug)]
struct Shared {
    limiter: RateLimiter,
    /// Requests under this prefix are limited.
    prefix: String,
    /// Paths never limited (health, readiness, metrics), when the prefix is empty.
    exempt: Vec<String>,
    /// Paths counted by address even for an authenticated caller (login, register).
    by_address: Vec<String>,
    window_secs: u64,
    callers: super::Callers,
    failures: AtomicU64,
    /// The header values of 0, 1, 2, ... up to the limit or the window (at most
    /// [`CACHED_VALUES`]), made once: a response clones them instead of formatting.
    numbers: Vec<HeaderValue>,
}

const CACHED_VALUES: u64 = 4096;

/// Adds [`RateLimit`].
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    shared: Arc<Shared>,
}

impl RateLimitLayer {
    /// Limits the routes under `prefix` with `limiter` (`window_secs` is named in
    /// the 429's message). With an empty prefix every route is limited but `exempt`.
    pub fn new(limiter: RateLimiter, prefix: &str, exempt: Vec<String>, window_secs: u64) -> Self {
        let most = u64::from(limiter.limit()).max(window_secs).min(CACHED_VALUES);
        let numbers = (0..=most).map(HeaderValue::from).collect();
        let failures = AtomicU64::new(0);
        let by_address = Vec::new();
        let callers = super::Callers::default();
        let prefix = prefix.to_owned();
        let shared = Shared { limiter, prefix, exempt, by_address, window_secs, callers, failures, numbers };
        Self { shared: Arc::new(shared) }
    }

    /// Counts requests to these paths by the caller's address even when it sends
    /// good credentials (the login route: tokens of throwaway accounts must not
    /// give one address more attempts).
    #[must_use]
    pub fn with_address_only(mut self, paths: Vec<String>) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.by_address = paths;
        }
        self
    }
}

impl RateLimitLayer {
    /// Tells callers apart with `callers` (by default every caller counts by its
    /// peer address).
    #[must_use]
    pub fn with_callers(mut self, callers: super::Callers) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.callers = callers;
        }
        self
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit { inner, shared: self.shared.clone() }
    }
}

/// See [`RateLimitLayer`].
#[derive(Debug, Clone)]
pub struct RateLimit<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl Shared {
    fn limits(&self, path: &str) -> bool {
        if self.prefix.is_empty() {
            !self.exempt.iter().any(|p| p == path)
        } else {
            path.strip_prefix(&self.prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        }
    }
}

impl<S> Service<Request<Body>> for RateLimit<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        if !self.shared.limits(req.uri().path()) {
            return Either::Left(self.inner.call(req));
        }
        // The clone is ready only once polled: the ready one goes into the future.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let shared = self.shared.clone();
        Either::Right(Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let caller = if shared.by_address.iter().any(|p| p == parts.uri.path()) {
                shared.callers.address(&parts)
            } else {
                shared.callers.caller(&mut parts).await
            };
            let decision = match shared.limiter.check(&caller).await {
                Ok(decision) => decision,
                Err(e) => {
                    metrics::counter!(names::RATE_LIMIT_STORE_FAILURES_TOTAL).increment(1);
                    let failures = shared.failures.fetch_add(1, Ordering::Relaxed) + 1;
                    if failures.is_power_of_two() {
                        tracing::warn!(error = %e, failures, "rate limit store unavailable; requests go on unlimited");
                    }
                    return inner.call(Request::from_parts(parts, body)).await;
                }
            };
            let mut response = if decision.allowed {
                inner.call(Request::from_parts(parts, body)).await?
            } else {
                metrics::counter!(names::RATE_LIMIT_REFUSALS_TOTAL).increment(1);
                let detail = format!(
                    "Rate limit exceeded: {} requests per {} seconds; retry in {} seconds",
                    decision.limit, shared.window_secs, decision.reset_secs
                );
                ApiError::too_many_requests(detail, decision.reset_secs).into_response()
            };
            shared.add_headers(&mut response, decision);
            Ok(response)
        }))
    }
}

impl Shared {
    fn number(&self, n: u64) -> HeaderValue {
        usize::try_from(n).ok().and_then(|i| self.numbers.get(i)).cloned().unwrap_or_else(|| HeaderValue::from(n))
    }

    fn add_headers(&self, response: &mut Response, d: RateDecision) {
        let h = response.headers_mut();
        // Room for these three and the ones the outer layers add (security headers,
        // request id), so that the map grows once.
        h.reserve(10);
        h.insert(RATELIMIT_LIMIT, self.number(d.limit.into()));
        h.insert(RATELIMIT_REMAINING, self.number(d.remaining.into()));
        h.insert(RATELIMIT_RESET, self.number(d.reset_secs));
    }
}
