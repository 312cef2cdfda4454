//! The two limits of the stack: a request past `request_timeout` gets 503
//! `request_timeout`; a body past `max_body_bytes` gets 413 `payload_too_large`.
//!
//! Both are the kernel's own (not tower-http's) for cost: a request that finishes on
//! its first poll, as most cheap routes do, never arms a timer, and neither layer
//! changes the body types, so the stack is composed and boxed once.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use futures::future::{Either, Ready};
use http::{header, Request, StatusCode};
use tokio::time::Sleep;
use tower::{Layer, Service};

use crate::error::ApiError;

/// Adds [`Timeout`]; `None` turns it off.
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    after: Option<Duration>,
}

impl TimeoutLayer {
    /// Answers 503 when a request takes longer than `after`.
    pub fn new(after: Option<Duration>) -> Self {
        Self { after }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout { inner, after: self.after }
    }
}

/// See [`TimeoutLayer`].
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    after: Option<Duration>,
}

impl<S, B, E> Service<Request<B>> for Timeout<S>
where
    S: Service<Request<B>, Response = Response, Error = E>,
{
    type Response = Response;
    type Error = E;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        TimeoutFuture { inner: self.inner.call(req), after: self.after, sleep: None }
    }
}

pin_project_lite::pin_project! {
    /// Response future of [`Timeout`]: arms its timer only if the inner future
    /// is still pending after its first poll (the request's time counts from that
    /// poll, which follows the call at once).
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: F,
        after: Option<Duration>,
        // Boxed: a timer is large, and most requests never need one, so the
        // future every request moves around stays small.
        sleep: Option<Pin<Box<Sleep>>>,
    }
}

impl<F> std::fmt::Debug for TimeoutFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeoutFuture").field("after", &self.after).finish_non_exhaustive()
    }
}

impl<F, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(result) = this.inner.poll(cx) {
            return Poll::Ready(result);
        }
        let Some(after) = *this.after else { return Poll::Pending };
        let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
        std::task::ready!(sleep.as_mut().poll(cx));
        let error = ApiError::from_status(StatusCode::SERVICE_UNAVAILABLE, Some("The request took too long.".into()));
        Poll::Ready(Ok(error.into_response()))
    }
}

/// Adds [`BodyLimit`]; `None` turns it off.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimitLayer {
    max: Option<usize>,
}

impl BodyLimitLayer {
    /// Refuses bodies longer than `max` bytes.
    pub fn new(max: Option<usize>) -> Self {
        Self { max }
    }
}

impl<S> Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BodyLimit { inner, max: self.max }
    }
}

/// See [`BodyLimitLayer`]. A declared `Content-Length` past the limit is refused
/// before the handler runs; a chunked body is cut at the limit, and the
/// extractor reading it answers 413.
#[derive(Debug, Clone)]
pub struct BodyLimit<S> {
    inner: S,
    max: Option<usize>,
}

impl<S, E> Service<Request<Body>> for BodyLimit<S>
where
    S: Service<Request<Body>, Response = Response, Error = E>,
{
    type Response = Response;
    type Error = E;
    type Future = Either<Ready<Result<Response, E>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let Some(max) = self.max else { return Either::Right(self.inner.call(req)) };
        let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|len| len > max as u64) {
            let error = ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE, None);
            return Either::Left(futures::future::ready(Ok(error.into_response())));
        }
        if axum::body::HttpBody::size_hint(req.body()).exact() == Some(0) {
            return Either::Right(self.inner.call(req)); // nothing to limit (a GET, say)
        }
        let limit = declared.map_or(max, |len| len as usize);
        Either::Right(self.inner.call(req.map(|body| Body::new(http_body_util::Limited::new(body, limit)))))
    }
}
