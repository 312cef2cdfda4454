//! The middleware stack every service gets: one ordered list, each part
//! switchable in [`StackSettings`](crate::settings::StackSettings), logged at
//! start-up.
//!
//! Outermost first (a request passes them top-down, its response bottom-up):
//!
//! | # | Part | What it guarantees |
//! |---|---|---|
//! | 1 | `request_id` | every response has `X-Request-ID` and `traceparent`; every log line of the request has both ids |
//! | 2 | `access_log` + `http_metrics` | one log line and the metrics per request, labelled by route template |
//! | 3 | `security_headers` | nosniff, DENY, referrer policy; no-store and CSP on API responses; HSTS when on |
//! | 4 | `cors` | wildcard never with credentials; an explicit list with credentials |
//! | 5 | `problem_json` | bare error responses of lower layers become the one error shape |
//! | 6 | `rate_limit` | `api_prefix` routes count each caller; `RateLimit-*` headers; 429 past the limit ([`crate::reliability`]) |
//! | 7 | `catch_panic` | a panic becomes a 500 problem+json that reveals nothing |
//! | 8 | `timeout` | a request past `request_timeout` gets 503 `request_timeout` |
//! | 9 | `body_limit` | a body past `max_body_bytes` gets 413 |
//! | 10 | `idempotency` | POST/PUT/PATCH with `Idempotency-Key` under `api_prefix` (not the auth routes): the first answer kept and replayed, bounded per record and per caller ([`crate::reliability`]) |
//!
//! Errors produced at any level below 3 carry the security and CORS headers.

mod catch_panic;
mod cors;
mod limits;
mod problem;
mod security_headers;

use axum::Router;
use tower::layer::util::Identity;
use tower::util::option_layer;
use tower::ServiceBuilder;

pub use catch_panic::{CatchPanic, CatchPanicLayer};
pub use cors::{Cors, CorsLayer};
pub use limits::{BodyLimit, BodyLimitLayer, Timeout, TimeoutLayer};
pub use problem::{Problem, ProblemLayer};
pub use security_headers::{SecurityHeaders, SecurityHeadersLayer};

use crate::observability::http::ObserveLayer;
use crate::observability::request_id::RequestIdLayer;
use crate::reliability::{Callers, IdempotencyLayer, RateLimitLayer};
use crate::service::Kernel;

/// Layers the parts in the order they are written (outermost first), each as
/// `"name" => on, layer;`, and gives the names of those that are on: the order is
/// written once, here, for the stack, its start-up log line and its docs.
macro_rules! ordered {
    ($($name:literal => $on:expr, $layer:expr;)*) => {{
        let mut names: Vec<&'static str> = Vec::new();
        let builder = ServiceBuilder::new()$(.layer({
            if $on {
                names.push($name);
            }
            $layer
        }))*;
        (builder, names)
    }};
}

/// Wraps every route of `router` (and its fallback) in the stack; the names of
/// the parts that run, outermost first.
///
/// The parts are composed into one service and layered once: `Router::layer`
/// boxes what it wraps, and that box is cloned on every request. Each part keeps
/// the response type, so a part switched off costs one branch.
pub(crate) fn apply(
    router: Router,
    kernel: &Kernel,
    reliability: crate::reliability::Parts,
) -> (Router, Vec<&'static str>) {
    let settings = kernel.settings();
    let s = &settings.stack;
    let f = &settings.features;
    let exempt = vec![f.health_path.clone(), f.ready_path.clone(), f.metrics_path.clone()];
    let window = settings.reliability.rate_limit_window_seconds;
    let prefix = &settings.server.api_prefix;
    // The anonymous auth routes count by address even for a caller with a token, so
    // that tokens of throwaway accounts do not lift the limit of one address.
    let auth = format!("{prefix}{}", f.auth_prefix);
    let by_address = ["/login", "/register", "/refresh"].map(|route| format!("{auth}{route}")).to_vec();
    let callers = Callers::new(Some(kernel.auth().clone()), &settings.server.trusted_proxies);
    let rate_limit = reliability.limiter.map(|l| {
        RateLimitLayer::new(l, prefix, exempt, window).with_address_only(by_address).with_callers(callers.clone())
    });
    // A running first request holds its key at most this long (then a repeat runs).
    let running = (settings.server.request_timeout * 2).max(std::time::Duration::from_secs(60));
    let ttl = std::time::Duration::from_secs(settings.reliability.idempotency_ttl_seconds);
    let idempotency = reliability.idempotency.map(|store| {
        IdempotencyLayer::new(store, prefix, ttl, running)
            .with_max_body_bytes(settings.server.max_body_bytes)
            .with_max_record_bytes(settings.reliability.idempotency_max_record_bytes)
            .with_excluded(&format!("{prefix}{}", f.auth_prefix))
            .with_callers(callers)
    });
    let r = &settings.reliability;
    let (stack, names) = ordered! {
        "request_id" => s.request_id, option_layer(s.request_id.then_some(RequestIdLayer));
        "access_log" => s.access_log, Identity::new();
        "http_metrics" => s.http_metrics,
            option_layer((s.access_log || s.http_metrics).then(|| ObserveLayer::new(s.access_log, s.http_metrics)));
        "security_headers" => s.security_headers, option_layer(
            s.security_headers.then(|| SecurityHeadersLayer::new(&settings.security_headers, prefix)));
        "cors" => s.cors, option_layer(s.cors.then(|| CorsLayer::new(&settings.cors)));
        "problem_json" => true, ProblemLayer;
        "rate_limit" => r.rate_limit_enabled, option_layer(rate_limit);
        "catch_panic" => s.catch_panic, option_layer(s.catch_panic.then_some(CatchPanicLayer));
        "timeout" => s.timeout, TimeoutLayer::new(s.timeout.then_some(settings.server.request_timeout));
        "body_limit" => s.body_limit, BodyLimitLayer::new(s.body_limit.then_some(settings.server.max_body_bytes));
        "idempotency" => r.idempotency_enabled, option_layer(idempotency);
    };
    (router.layer(stack.into_inner()), names)
}
