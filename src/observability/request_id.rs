//! Request ids: accept the caller's `X-Request-ID` when it is safe, else assign a
//! UUID v7; echo it on the response; make it visible to every log line and error
//! body of that request.
//!
//! The id (and the user id, once an extractor identified the caller) lives in a
//! task-local [`RequestContext`] for the life of the request: the log formatter
//! and [`ApiError`](crate::ApiError) read it from there, so no span has to be
//! created per request. Work a handler spawns onto other tasks does not inherit it.
//!
//! An incoming id is kept only if it is 1..=128 characters of `[A-Za-z0-9._:-]`,
//! so a client cannot inject log lines or headers through it.
//!
//! The same layer honours W3C `traceparent` (see [`trace_context`](super::trace_context)):
//! the request runs as a span of the caller's trace (or of a new one when the header
//! is absent or malformed), every log line carries its `trace_id`, and the response
//! carries the request span's `traceparent`.

use std::sync::OnceLock;
use std::task::{Context, Poll};

use http::{HeaderName, HeaderValue, Request, Response};
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};

use super::trace_context::{self, TraceContext, TraceParent, TRACEPARENT_HEADER};
use crate::response_hook::{HookFuture, ResponseHook};

/// `x-request-id`.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// What the kernel knows about the request this task serves.
#[derive(Debug)]
pub struct RequestContext {
    id: RequestId,
    user_id: OnceLock<Box<str>>,
}

/// Runs `f` with the current request's id and user id, if this task serves one.
pub fn with_current<R>(f: impl FnOnce(&str, Option<&str>) -> R) -> Option<R> {
    CURRENT.try_with(|c| f(c.id.as_str(), c.user_id.get().map(|u| &**u))).ok()
}

/// Records who the caller is, for the log lines of the rest of the request.
pub fn set_user_id(user_id: &str) {
    let _ = CURRENT.try_with(|c| c.user_id.set(user_id.into()));
}

/// The id of the request being served: an extractor in a handler; [`current`] reads
/// it anywhere in the request's task. It lives in the task-local request context, not
/// in the request's extensions (one insert fewer per request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestId {
    /// A bare 500: the stack's problem+json part gives it the one error shape.
    type Rejection = http::StatusCode;

    async fn from_request_parts(_: &mut http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        CURRENT.try_with(|c| c.id.clone()).map_err(|_| {
            tracing::error!("RequestId extractor used with the request_id stack part off");
            http::StatusCode::INTERNAL_SERVER_ERROR
        })
    }
}

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }

    fn generate() -> Self {
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        // Without the shared context: request ids need time order to the
        // millisecond, not a counter every request thread must synchronise on.
        let now = uuid::Timestamp::now(uuid::NoContext);
        let id = uuid::Uuid::new_v7(now).hyphenated().encode_lower(&mut text);
        Self(HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static("invalid")))
    }
}

/// The id of the request this task is serving, if any.
pub fn current() -> Option<String> {
    with_current(|id, _| id.to_owned())
}

/// Whether a caller-supplied id is kept.
pub fn is_valid(id: &[u8]) -> bool {
    (1..=128).contains(&id.len())
        && id.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Adds [`RequestIdService`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner }
    }
}

/// Assigns the request id, scopes the request context, echoes the header.
#[derive(Debug, Clone)]
pub struct RequestIdService<S> {
    inner: S,
}

impl<S, B, RB> Service<Request<B>> for RequestIdService<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = HookFuture<TaskLocalFuture<RequestContext, TaskLocalFuture<TraceContext, S::Future>>, EchoHeader>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let id = match req.headers().get(&REQUEST_ID_HEADER) {
            Some(v) if is_valid(v.as_bytes()) => RequestId(v.clone()),
            _ => RequestId::generate(),
        };
        let parent = req.headers().get(&TRACEPARENT_HEADER).and_then(|v| TraceParent::parse(v.as_bytes()));
        let trace = TraceContext::child_of(parent.as_ref());
        let echo = EchoHeader { id: id.0.clone(), trace, span: super::otel::RequestSpan::start(&req) };
        let context = RequestContext { id, user_id: OnceLock::new() };
        HookFuture::new(CURRENT.scope(context, trace_context::scope(trace, self.inner.call(req))), echo)
    }
}

/// Echoes the request id and the request span's `traceparent` on the response.
#[derive(Debug)]
pub struct EchoHeader {
    id: HeaderValue,
    trace: TraceContext,
    span: Option<super::otel::RequestSpan>,
}

impl<B> ResponseHook<B> for EchoHeader {
    fn on_response(self, response: &mut Response<B>) {
        if let Some(span) = self.span {
            span.end(&self.trace, response.status().as_u16());
        }
        let headers = response.headers_mut();
        headers.insert(REQUEST_ID_HEADER, self.id);
        if let Ok(traceparent) = HeaderValue::from_bytes(&self.trace.traceparent_bytes()) {
            headers.insert(TRACEPARENT_HEADER, traceparent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid;

    #[test]
    fn accepts_safe_ids_and_refuses_the_rest() {
        assert!(is_valid(b"abc-123_x.y:z"));
        assert!(is_valid(&[b'a'; 128]));
        assert!(!is_valid(&[b'a'; 129]));
        assert!(!is_valid(b""));
        assert!(!is_valid(b"has space"));
        assert!(!is_valid(b"new\nline"));
        assert!(!is_valid("é".as_bytes()));
    }
}
