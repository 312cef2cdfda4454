//! `Idempotency-Key` on POST, PUT and PATCH under `api_prefix` (docs/CONTRACT.md):
//! the first response is kept for the caller; a repeat with the same method, path
//! and body gets it again with `Idempotent-Replayed: true` and the handler does not
//! run; a repeat while the first is still running gets 409
//! `idempotency_in_progress`; the same key with another request gets 422
//! `idempotency_key_reused`. A key is the caller's own (user id, else address): two
//! callers never see each other's answers. 5xx answers and streamed bodies are not
//! kept (a repeat runs again; if the store cannot forget the key at that moment, it is
//! forgotten in the background once the store answers again). If the store cannot be asked, the request runs as if
//! it had no key, and the failure is logged; but when the store is the service's SQL
//! database and that cannot be reached, the request gets 503 `database_unavailable`
//! at once (running it would wait for the same database a second time).
//!
//! Bounded: the body is read no further than `max_body_bytes` (413 past it, even
//! with the stack's body limit off); a response whose headers and body exceed
//! `max_record_bytes` is answered whole but kept as its status only, and a repeat
//! gets 409 `idempotency_response_not_kept` (the first request's effect happened; it
//! is not run twice); the store keeps a bounded number of keys per caller. Routes
//! under an excluded prefix (the auth routes: tokens and API keys are never kept,
//! and a replayed refresh is refused as reused) are passed through.
//!
//! The layer is the innermost of the stack: the response it keeps holds the
//! handler's headers only (the outer layers add the request id, security and CORS
//! headers afresh).

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
use crate::observability::names;

/// The request header that names a key.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// The response header of a replay.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

#[derive(Debug)]
struct Shared {
    store: Arc<dyn IdempotencyStore>,
    prefix: String,
    /// Paths under these prefixes are never idempotent.
    excluded: Vec<String>,
    ttl: Duration,
    running_ttl: Duration,
    max_body_bytes: usize,
    max_record_bytes: usize,
    callers: super::Callers,
    failures: AtomicU64,
}

/// How long an answer whose key is forgotten (a 5xx, a streamed body) waits for the
/// store before it goes; the forget goes on in the background (see `Shared::forget`).
const FORGET_WAIT: Duration = Duration::from_millis(100);

/// The largest response kept unless told otherwise (headers and body).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 64 * 1024;

/// Adds [`Idempotency`].
#[derive(Debug, Clone)]
pub struct IdempotencyLayer {
    shared: Arc<Shared>,
}

impl IdempotencyLayer {
    /// Keys under `prefix` kept in `store` for `ttl`; a running first request holds
    /// its key for `running_ttl` at most. Bodies are read up to 1 MiB and responses
    /// up to [`DEFAULT_MAX_RECORD_BYTES`] kept, unless set with the `with_*` methods.
    pub fn new(store: Arc<dyn IdempotencyStore>, prefix: &str, ttl: Duration, running_ttl: Duration) -> Self {
        let shared = Shared {
            store,
            prefix: prefix.to_owned(),
            excluded: Vec::new(),
            ttl,
            running_ttl,
            max_body_bytes: 1024 * 1024,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            callers: super::Callers::default(),
            failures: AtomicU64::new(0),
        };
        Self { shared: Arc::new(shared) }
    }

    fn edit(self, f: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Arc::try_unwrap(self.shared).unwrap_or_else(|shared| shared.copy());
        f(&mut shared);
        Self { shared: Arc::new(shared) }
    }

    /// A request body with a key is read up to `n` bytes; past it, 413.
    #[must_use]
    pub fn with_max_body_bytes(self, n: usize) -> Self {
        self.edit(|s| s.max_body_bytes = n)
    }

    /// A response larger than `n` bytes (headers and body) is answered but not kept.
    #[must_use]
    pub fn with_max_record_bytes(self, n: usize) -> Self {
        self.edit(|s| s.max_record_bytes = n)
    }

    /// Keeps records per caller as `callers` tells them apart (by default by
    /// peer address).
    #[must_use]
    pub fn with_callers(self, callers: super::Callers) -> Self {
        self.edit(|s| s.callers = callers)
    }

    /// Requests to `path_prefix` or below it are passed through, key or not.
    #[must_use]
    pub fn with_excluded(self, path_prefix: &str) -> Self {
        self.edit(|s| s.excluded.push(path_prefix.trim_end_matches('/').to_owned()))
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
            && req.uri().path().starts_with(&self.shared.prefix)
            && !self.shared.is_excluded(req.uri().path());
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
    let body = match axum::body::to_bytes(body, shared.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(e) if too_large(&e) => {
            return Ok(ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE, None).into_response())
        }
        Err(e) => return Ok(ApiError::bad_request(format!("could not read the body: {e}")).into_response()),
    };
    let caller = match shared.callers.caller_or_unavailable(&mut parts).await {
        Ok(caller) => caller,
        Err(unavailable) => return Ok(unavailable.into_response()),
    };
    let fingerprint = fingerprint(&parts, &body);
    let request = Request::from_parts(parts, Body::from(body));
    match shared.store.begin(&caller, &key, &fingerprint, shared.running_ttl).await {
        // The SQL store lives in the service's database: running the request without
        // its key would wait for that database a second time (a full acquire timeout).
        Err(e @ super::ReliabilityError::DatabaseUnavailable(_)) => Ok(ApiError::from(e).into_response()),
        Err(e) => {
            shared.store_failed(&e);
            inner.call(request).await
        }
        Ok(Begin::Running) => Ok(conflict(
            "in_progress",
            ApiError::conflict(
                "idempotency_in_progress",
                "A request with this Idempotency-Key is still being processed; retry later",
            ),
        )),
        Ok(Begin::OtherRequest) => Ok(conflict(
            "key_reused",
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request (method, path or body)",
            ),
        )),
        Ok(Begin::Done(stored)) => {
            metrics::counter!(names::IDEMPOTENCY_REPLAYS_TOTAL).increment(1);
            Ok(replay(stored))
        }
        Ok(Begin::TooLarge(status)) => Ok(conflict(
            "response_not_kept",
            ApiError::conflict(
                "idempotency_response_not_kept",
                format!(
                    "The first request with this Idempotency-Key was answered with status {status}, but its response \
                 was too large to keep; it is not run again: read the result instead"
                ),
            ),
        )),
        Ok(Begin::Started) => {
            let response = inner.call(request).await?;
            Ok(Shared::keep(&shared, &caller, &key, fingerprint, response).await)
        }
    }
}

impl Shared {
    /// The same settings and store, for a layer edited after it was cloned.
    fn copy(&self) -> Self {
        Self {
            store: self.store.clone(),
            prefix: self.prefix.clone(),
            excluded: self.excluded.clone(),
            ttl: self.ttl,
            running_ttl: self.running_ttl,
            max_body_bytes: self.max_body_bytes,
            max_record_bytes: self.max_record_bytes,
            callers: self.callers.clone(),
            failures: AtomicU64::new(0),
        }
    }

    /// Whether `path` is an excluded prefix or below one.
    fn is_excluded(&self, path: &str) -> bool {
        self.excluded
            .iter()
            .any(|p| path.strip_prefix(p.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
    }

    /// Keeps `response` as the key's record unless it is a 5xx or streamed (then
    /// forgets the key) or too large (then keeps its status only); answers it
    /// whole either way.
    async fn keep(self: &Arc<Self>, caller: &str, key: &str, fingerprint: String, response: Response) -> Response {
        let size = response.body().size_hint().exact();
        if response.status().is_server_error() || size.is_none() {
            self.forget(caller, key).await;
            return response;
        }
        let headers: Vec<(String, String)> =
            response.headers().iter().filter_map(|(n, v)| Some((n.to_string(), v.to_str().ok()?.to_owned()))).collect();
        let header_bytes: usize = headers.iter().map(|(n, v)| n.len() + v.len()).sum();
        let size = usize::try_from(size.unwrap_or(u64::MAX)).unwrap_or(usize::MAX).saturating_add(header_bytes);
        if size > self.max_record_bytes {
            let record = Record::too_large(fingerprint, response.status().as_u16());
            if let Err(e) = self.store.finish(caller, key, record, self.ttl).await {
                self.store_failed(&e);
            }
            return response;
        }
        let (parts, body) = response.into_parts();
        let Ok(body) = axum::body::to_bytes(body, self.max_record_bytes).await else {
            self.forget(caller, key).await;
            return ApiError::internal("the response body could not be read").into_response();
        };
        let stored = StoredResponse { status: parts.status.as_u16(), headers, body: body.to_vec() };
        if let Err(e) = self.store.finish(caller, key, Record::done(fingerprint, stored), self.ttl).await {
            self.store_failed(&e);
        }
        Response::from_parts(parts, Body::from(body))
    }

    /// Forgets the key, so that a repeat runs again. The answer waits for that at most
    /// [`FORGET_WAIT`]: when the store cannot be reached (its database restarting, say)
    /// the forget goes on in the background, tried again after growing pauses until it
    /// lands or the running record has expired anyway. Without that, the record would
    /// stay "running" and every retry get 409 `idempotency_in_progress` for
    /// `running_ttl` (a minute or more), the store long back.
    async fn forget(self: &Arc<Self>, caller: &str, key: &str) {
        let (shared, caller, key) = (self.clone(), caller.to_owned(), key.to_owned());
        let mut forgetting = tokio::spawn(async move {
            let mut first = true;
            let forget = || shared.store.forget(&caller, &key);
            let _ = crate::retry::until_within(shared.running_ttl, forget, |e, next| {
                if std::mem::take(&mut first) {
                    shared.store_failed(e);
                }
                if next.is_none() {
                    tracing::warn!(error = %e, "an idempotency key could not be forgotten; it expires with its running record");
                }
            })
            .await;
        });
        // Past the wait the task goes on alone (dropping a JoinHandle detaches it).
        let _ = tokio::time::timeout(FORGET_WAIT, &mut forgetting).await;
    }

    fn store_failed(&self, e: &super::ReliabilityError) {
        metrics::counter!(names::IDEMPOTENCY_STORE_FAILURES_TOTAL).increment(1);
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

/// A refusal for the request's key, counted in `kernel_idempotency_conflicts_total`.
fn conflict(reason: &'static str, error: ApiError) -> Response {
    metrics::counter!(names::IDEMPOTENCY_CONFLICTS_TOTAL, names::LABEL_REASON => reason).increment(1);
    error.into_response()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excluded_prefix_covers_its_path_and_below_only() {
        let store = Arc::new(super::super::MemoryIdempotencyStore::default());
        let layer = IdempotencyLayer::new(store, "/api/v1", Duration::from_secs(1), Duration::from_secs(1));
        let copy = layer.clone(); // edited after a clone: the edit still applies
        let layer = layer.with_excluded("/api/v1/auth/");
        drop(copy);
        let s = &layer.shared;
        assert!(s.is_excluded("/api/v1/auth") && s.is_excluded("/api/v1/auth/refresh"));
        assert!(!s.is_excluded("/api/v1/authors") && !s.is_excluded("/api/v1/orders"));
    }
}
