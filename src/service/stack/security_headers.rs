//! Security headers on every response, errors included.
//!
//! Always: `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`,
//! `Referrer-Policy: strict-origin-when-cross-origin`. Under the API prefix:
//! `Cache-Control: no-store` and the strict `Content-Security-Policy` (the Swagger
//! UI at `/docs` needs scripts, so it does not get it). With `hsts`:
//! `Strict-Transport-Security`. A header the handler set itself is kept.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{header, HeaderValue, Request, Response};
use tower::{Layer, Service};

use crate::response_hook::{HookFuture, ResponseHook};
use crate::service::SecurityHeadersSettings;

#[derive(Debug)]
struct Values {
    api_prefix: String,
    csp: HeaderValue,
    hsts: Option<HeaderValue>,
}

/// Adds [`SecurityHeaders`].
#[derive(Debug, Clone)]
pub struct SecurityHeadersLayer {
    values: Arc<Values>,
}

impl SecurityHeadersLayer {
    /// Headers per `settings`; `api_prefix` marks the API responses.
    pub fn new(settings: &SecurityHeadersSettings, api_prefix: &str) -> Self {
        let csp = HeaderValue::from_str(&settings.content_security_policy)
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
        let hsts = settings
            .hsts
            .then(|| HeaderValue::from_str(&format!("max-age={}; includeSubDomains", settings.hsts_max_age_secs)).ok())
            .flatten();
        let api_prefix = if api_prefix.is_empty() { "/api".to_owned() } else { api_prefix.to_owned() };
        Self { values: Arc::new(Values { api_prefix, csp, hsts }) }
    }
}

impl<S> Layer<S> for SecurityHeadersLayer {
    type Service = SecurityHeaders<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecurityHeaders { inner, values: self.values.clone() }
    }
}

/// See [`SecurityHeadersLayer`].
#[derive(Debug, Clone)]
pub struct SecurityHeaders<S> {
    inner: S,
    values: Arc<Values>,
}

impl<S, B, RB> Service<Request<B>> for SecurityHeaders<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = HookFuture<S::Future, Apply>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let path = req.uri().path();
        let is_api = path.starts_with(&self.values.api_prefix) || path == "/api";
        let apply = Apply { is_api, values: self.values.clone() };
        HookFuture::new(self.inner.call(req), apply)
    }
}

/// The headers to add to one response.
#[derive(Debug)]
pub struct Apply {
    is_api: bool,
    values: Arc<Values>,
}

impl<B> ResponseHook<B> for Apply {
    fn on_response(self, response: &mut Response<B>) {
        let h = response.headers_mut();
        // Room for these and the request id set further out, so the map grows at
        // most once (a handler's response holds one or two headers at this point).
        h.reserve(4 + 2 * usize::from(self.is_api) + usize::from(self.values.hsts.is_some()));
        h.entry(header::X_CONTENT_TYPE_OPTIONS).or_insert(HeaderValue::from_static("nosniff"));
        h.entry(header::X_FRAME_OPTIONS).or_insert(HeaderValue::from_static("DENY"));
        h.entry(header::REFERRER_POLICY).or_insert(HeaderValue::from_static("strict-origin-when-cross-origin"));
        if self.is_api {
            h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
            h.entry(header::CONTENT_SECURITY_POLICY).or_insert(self.values.csp.clone());
        }
        if let Some(hsts) = &self.values.hsts {
            h.entry(header::STRICT_TRANSPORT_SECURITY).or_insert(hsts.clone());
        }
    }
}
