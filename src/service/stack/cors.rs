//! CORS from [`CorsSettings`]: `*` allows any origin and never credentials; an
//! explicit list allows those origins only, with credentials. Error responses get
//! the headers too. A request without `Origin` is not a CORS request and gets none
//! (as Starlette's middleware does; a browser sends `Origin` on every cross-origin
//! request), apart from `Vary: origin` in list mode. A preflight (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`) is answered here with 200.
//!
//! The kernel's own rather than tower-http's `CorsLayer`, which is cloned with its
//! header lists on every request: here every header value is built once at
//! start-up and shared.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{Either, Ready};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use tower::{Layer, Service};

use crate::response_hook::{HookFuture, ResponseHook};
use crate::service::CorsSettings;

/// Headers a browser script may read from our responses.
const EXPOSED: &str = "x-request-id, ratelimit-limit, ratelimit-remaining, ratelimit-reset, idempotent-replayed";
/// Methods and headers a listed origin may use.
const LISTED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
const LISTED_HEADERS: &str = "authorization, content-type, accept, x-request-id, x-api-key, idempotency-key";

#[derive(Debug)]
struct Policy {
    /// `None`: any origin (`*`), never with credentials.
    origins: Option<Vec<HeaderValue>>,
    max_age: HeaderValue,
}

/// Adds [`Cors`].
#[derive(Debug, Clone)]
pub struct CorsLayer {
    policy: Arc<Policy>,
}

impl CorsLayer {
    /// The policy of `settings`.
    pub fn new(settings: &CorsSettings) -> Self {
        let origins = (!settings.is_wildcard())
            .then(|| settings.origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect());
        let max_age = HeaderValue::from(settings.max_age_secs);
        Self { policy: Arc::new(Policy { origins, max_age }) }
    }
}

impl<S> Layer<S> for CorsLayer {
    type Service = Cors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Cors { inner, policy: self.policy.clone() }
    }
}

/// See [`CorsLayer`].
#[derive(Debug, Clone)]
pub struct Cors<S> {
    inner: S,
    policy: Arc<Policy>,
}

impl<S, B, RB> Service<Request<B>> for Cors<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    RB: Default,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response<RB>, S::Error>>, HookFuture<S::Future, Allow>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let origin = req.headers().get(header::ORIGIN);
        let allow = Allow { origin: self.policy.allowed(origin), listed: self.policy.origins.is_some() };
        let preflight = req.method() == Method::OPTIONS
            && origin.is_some()
            && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if preflight {
            let mut response = Response::new(RB::default());
            *response.status_mut() = StatusCode::OK;
            self.policy.preflight(req.headers(), response.headers_mut());
            allow.on_response(&mut response);
            return Either::Left(futures::future::ready(Ok(response)));
        }
        Either::Right(HookFuture::new(self.inner.call(req), allow))
    }
}

impl Policy {
    /// The `Access-Control-Allow-Origin` value for a request from `origin`.
    fn allowed(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        match &self.origins {
            None => origin.map(|_| HeaderValue::from_static("*")),
            Some(list) => origin.filter(|o| list.contains(o)).cloned(),
        }
    }

    fn preflight(&self, request: &http::HeaderMap, h: &mut http::HeaderMap) {
        let (methods, headers) = match self.origins {
            None => {
                let asked = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS);
                (HeaderValue::from_static("*"), asked.cloned().unwrap_or(HeaderValue::from_static("*")))
            }
            Some(_) => (HeaderValue::from_static(LISTED_METHODS), HeaderValue::from_static(LISTED_HEADERS)),
        };
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, headers);
        h.insert(header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
    }
}

/// The CORS headers of one response.
#[derive(Debug)]
pub struct Allow {
    origin: Option<HeaderValue>,
    listed: bool,
}

impl<B> ResponseHook<B> for Allow {
    fn on_response(self, response: &mut Response<B>) {
        let h = response.headers_mut();
        if self.listed {
            h.append(header::VARY, HeaderValue::from_static("origin"));
        }
        let Some(origin) = self.origin else { return };
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED));
        if self.listed {
            h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
    }
}
