//! The middleware stack every service gets: one ordered list, each part
//! switchable in [`StackSettings`](crate::settings::StackSettings), logged at
//! start-up.
//!
//! Outermost first (a request passes them top-down, its response bottom-up):
//!
//! | # | Part | What it guarantees |
//! |---|---|---|
//! | 1 | `request_id` | every response has `X-Request-ID`; every log line of the request has it |
//! | 2 | `access_log` + `http_metrics` | one log line and the metrics per request, labelled by route template |
//! | 3 | `security_headers` | nosniff, DENY, referrer policy; no-store and CSP on API responses; HSTS when on |
//! | 4 | `cors` | wildcard never with credentials; an explicit list with credentials |
//! | 5 | kernel state | the [`Kernel`] in request extensions, for the extractors |
//! | 6 | problem+json | bare error responses of lower layers become the one error shape |
//! | 7 | `catch_panic` | a panic becomes a 500 problem+json that reveals nothing |
//! | 8 | `timeout` | a request past `request_timeout` gets 503 `request_timeout` |
//! | 9 | `body_limit` | a body past `max_body_bytes` gets 413 |
//!
//! Errors produced at any level below 3 carry the security and CORS headers.

mod cors;
mod problem;
pub(crate) mod response_hook;
mod security_headers;

use std::any::Any;

use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use http::StatusCode;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use problem::ProblemLayer;
pub use security_headers::SecurityHeadersLayer;

use crate::error::ApiError;
use crate::observability::http::ObserveLayer;
use crate::observability::request_id::RequestIdLayer;
use crate::service::Kernel;

/// The names of the parts that run, outermost first.
pub fn parts(kernel: &Kernel) -> Vec<&'static str> {
    let s = &kernel.settings().stack;
    let all = [
        (s.request_id, "request_id"),
        (s.access_log, "access_log"),
        (s.http_metrics, "http_metrics"),
        (s.security_headers, "security_headers"),
        (s.cors, "cors"),
        (true, "kernel_state"),
        (true, "problem_json"),
        (s.catch_panic, "catch_panic"),
        (s.timeout, "timeout"),
        (s.body_limit, "body_limit"),
    ];
    all.into_iter().filter_map(|(on, name)| on.then_some(name)).collect()
}

/// Wraps every route of `router` (and its fallback) in the stack.
pub(crate) fn apply(mut router: Router, kernel: &Kernel) -> Router {
    let settings = kernel.settings();
    let s = &settings.stack;
    // `Router::layer` wraps what is already there, so the innermost part goes first.
    if s.body_limit {
        router = router.layer(RequestBodyLimitLayer::new(settings.server.max_body_bytes));
    }
    if s.timeout {
        router = router
            .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, settings.server.request_timeout));
    }
    if s.catch_panic {
        router = router.layer(CatchPanicLayer::custom(panic_response));
    }
    router = router.layer(ProblemLayer).layer(Extension(kernel.clone()));
    if s.cors {
        router = router.layer(cors::layer(&settings.cors));
    }
    if s.security_headers {
        router = router.layer(SecurityHeadersLayer::new(&settings.security_headers, &settings.server.api_prefix));
    }
    if s.access_log || s.http_metrics {
        router = router.layer(ObserveLayer::new(s.access_log, s.http_metrics));
    }
    if s.request_id {
        router = router.layer(RequestIdLayer);
    }
    router
}

fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    ApiError::internal(format_args!("handler panicked: {message}")).into_response()
}
