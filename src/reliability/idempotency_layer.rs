//! `Idempotency-Key` on POST, PUT and PATCH under `api_prefix` (CONTRACT.md):
//! the first response is kept for the caller; a repeat with the same method, path
//! and body gets it again with `Idempotent-Replayed: true` and the handler does not
//! run; a repeat while the first is still running gets 409
//! `idempotency_in_progress`; the same key with another request gets 422
//! `idempotency_key_reused`. A key is the caller's own (user id, else address): two
//! callers never see each other's answers. 5xx answers and streamed bodies are not
//! kept (a repeat runs again). If the store cannot be asked, the request runs as if
//! it had no key, and the failure is logged.
//!
//! The layer is the innermost of the stack: the body it reads is already limited
//! to `max_body_bytes`, and the response it keeps holds the handler's headers only
//! (the outer layers add the request id, security and CORS headers afresh).

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::response::{IntoResponse, Response};
use futures::future::{BoxFuture, Either};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use sha2::{Digest, Sha256};
use tower::{Layer, Service};

use super::idempotency::{Begin, IdempotencyStore, Record, StoredResponse};
use crate::error::ApiError;

/// The request header that names a key.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// The response header of a replay.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

#[derive(Debug)]
struct Shared {
    store: Arc<dyn IdempotencyStore>,
    prefix: String,
    ttl: Duration,
    running_ttl: Duration,
    failures: AtomicU64,
}

/// Adds [`Idempotency`].
#[derive(Debug, Clone)]
pub struct IdempotencyLayer {
    shared: Arc<Shared>,
}

impl IdempotencyLayer {
    /// Keys under `prefix` kept in `store` for `ttl`; a running first request holds
    /// its key for `running_ttl` at most.
    pub fn new(store: Arc<dyn IdempotencyStore>, prefix: &str, ttl: Duration, running_ttl: Duration) -> Self {
        let failures = AtomicU64::new(0);
        Self { shared: Arc::new(Shared { store, prefix: prefix.to_owned(), ttl, running_ttl, failures }) }
    }
}

impl<S> Layer<S> for IdempotencyLayer {
    type Service = Idempotency<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Idempotency { inner, shared: self.shared.clone() }
    }
}

/// See [`IdempotencyLayer`].
#[derive(Debug, Clone)]
pub struct Idempotency<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Service<Request<Body>> for Idempotency<S>
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
        let applies = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH)
            && req.headers().contains_key(IDEMPOTENCY_KEY)
            && req.uri().path().starts_with(&self.shared.prefix);
        if !applies {
            return Either::Left(self.inner.call(req));
        }
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);
        Either::Right(Box::pin(serve(self.shared.clone(), inner, req)))
    }
}

async fn serve<S>(shared: Arc<Shared>, mut inner: S, req: Request<Body>) -> Result<Response, Infallible>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    let key = match valid_key(req.headers().get(IDEMPOTENCY_KEY)) {
        Ok(key) => key,
        Err(error) => return Ok(error.into_response()),
    };
    let (mut parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) if too_large(&e) => {
            return Ok(ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE, None).into_response())
        }
        Err(e) => return Ok(ApiError::bad_request(format!("could not read the body: {e}")).into_response()),
    };
    let record_key = [super::caller::caller(&mut parts).await.as_str(), ":", &key].concat();
    let fingerprint = fingerprint(&parts, &body);
    let request = Request::from_parts(parts, Body::from(body));
    match shared.store.begin(&record_key, &fingerprint, shared.running_ttl).await {
        Err(e) => {
            shared.store_failed(&e);
            inner.call(request).await
        }
        Ok(Begin::Running) => Ok(ApiError::conflict(
            "idempotency_in_progress",
            "A request with this Idempotency-Key is still being processed; retry later",
        )
        .into_response()),
        Ok(Begin::OtherRequest) => Ok(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request (method, path or body)",
        )
        .into_response()),
        Ok(Begin::Done(stored)) => Ok(replay(stored)),
        Ok(Begin::Started) => {
            let response = inner.call(request).await?;
            Ok(shared.keep(&record_key, fingerprint, response).await)
        }
    }
}

impl Shared {
    /// Keeps `response` as the key's record unless it is a 5xx or streamed (then
    /// forgets the key); answers it either way.
    async fn keep(&self, key: &str, fingerprint: String, response: Response) -> Response {
        let streamed = response.body().size_hint().exact().is_none();
        if response.status().is_server_error() || streamed {
            if let Err(e) = self.store.forget(key).await {
                self.store_failed(&e);
            }
            return response;
        }
        let (parts, body) = response.into_parts();
        let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
            let _ = self.store.forget(key).await;
            return ApiError::internal("the response body could not be read").into_response();
        };
        let headers = parts.headers.iter().filter_map(|(n, v)| Some((n.to_string(), v.to_str().ok()?.to_owned())));
        let stored = StoredResponse { status: parts.status.as_u16(), headers: headers.collect(), body: body.to_vec() };
        if let Err(e) = self.store.finish(key, Record { fingerprint, response: Some(stored) }, self.ttl).await {
            self.store_failed(&e);
        }
        Response::from_parts(parts, Body::from(body))
    }

    fn store_failed(&self, e: &super::ReliabilityError) {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures.is_power_of_two() {
            tracing::warn!(error = %e, failures, "idempotency store unavailable; requests run without their key");
        }
    }
}

/// 1 to 255 visible ASCII characters.
fn valid_key(value: Option<&HeaderValue>) -> Result<String, ApiError> {
    let key = value.and_then(|v| v.to_str().ok()).unwrap_or_default();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(key.to_owned())
}

/// SHA-256 of method, path with query, and body, in hex.
fn fingerprint(parts: &http::request::Parts, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(parts.method.as_str());
    hash.update(b" ");
    hash.update(parts.uri.path_and_query().map_or("", |p| p.as_str()));
    hash.update(b"\n");
    hash.update(body);
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn too_large(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

fn replay(stored: StoredResponse) -> Response {
    let mut response = Response::new(Body::from(stored.body));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    for (name, value) in stored.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.append(name, value);
        }
    }
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}
