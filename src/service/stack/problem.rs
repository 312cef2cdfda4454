//! Turns the bare error responses of lower layers into the one problem+json shape.
//!
//! axum's extractor rejections (400 malformed JSON, 415, 422), its 405 and
//! a 413 of a body cut short are plain text or empty. This layer rewrites any
//! error response whose body is empty or `text/plain` into an [`ApiError`],
//! keeping its status, its headers (`Allow` on 405) and its text as `detail`.
//! Responses already in problem+json, or JSON an app chose to send, pass through.
//! Success responses cost one status check.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use tower::{Layer, Service};

use crate::error::{ApiError, FieldError};

/// Longest rejection text kept as `detail`.
const MAX_DETAIL_BYTES: usize = 2048;

/// Adds [`Problem`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ProblemLayer;

impl<S> Layer<S> for ProblemLayer {
    type Service = Problem<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Problem { inner }
    }
}

/// See [`ProblemLayer`].
#[derive(Debug, Clone)]
pub struct Problem<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for Problem<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ProblemFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ProblemFuture::Inner { fut: self.inner.call(req) }
    }
}

pin_project_lite::pin_project! {
    /// Response future of [`Problem`].
    #[project = ProblemProj]
    pub enum ProblemFuture<F> {
        /// Waiting for the inner service.
        Inner { #[pin] fut: F },
        /// Reading a bare error body to rewrite it.
        Rewrite { fut: BoxFuture<'static, Response> },
    }
}

impl<F> std::fmt::Debug for ProblemFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProblemFuture").finish_non_exhaustive()
    }
}

impl<F, E> Future for ProblemFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                ProblemProj::Inner { fut } => {
                    let response = std::task::ready!(fut.poll(cx))?;
                    if !needs_rewrite(&response) {
                        return Poll::Ready(Ok(response));
                    }
                    self.set(ProblemFuture::Rewrite { fut: Box::pin(rewrite(response)) });
                }
                ProblemProj::Rewrite { fut } => return fut.as_mut().poll(cx).map(Ok),
            }
        }
    }
}

fn needs_rewrite(response: &Response) -> bool {
    if !(response.status().is_client_error() || response.status().is_server_error()) {
        return false;
    }
    match response.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(ct) => ct.as_bytes().starts_with(b"text/plain"),
    }
}

async fn rewrite(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let text = match http_body_util::Limited::new(body, MAX_DETAIL_BYTES).collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).trim().to_owned(),
        Err(_) => String::new(),
    };
    let mut problem = classify(parts.status, text).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().entry(name).or_insert(value.clone());
        }
    }
    problem
}

/// The [`ApiError`] a bare error stands for; axum's JSON rejections are told apart
/// by their text, and a deserialization failure names the field it happened at.
fn classify(status: StatusCode, text: String) -> ApiError {
    const DATA_ERROR: &str = "Failed to deserialize the JSON body into the target type: ";
    match status {
        StatusCode::BAD_REQUEST if text.contains("as JSON") => ApiError::invalid_json(text),
        StatusCode::UNPROCESSABLE_ENTITY if text.starts_with(DATA_ERROR) => {
            let msg = &text[DATA_ERROR.len()..];
            ApiError::validation(vec![field_error(msg)])
        }
        _ => ApiError::from_status(status, (!text.is_empty()).then_some(text)),
    }
}

/// `name: invalid type ...` (a path from serde_path_to_error) or
/// `missing field `name` ...` into a located field error.
fn field_error(msg: &str) -> FieldError {
    let mut loc = vec!["body".to_owned()];
    let mut kind = "value_error";
    if let Some(rest) = msg.strip_prefix("missing field `") {
        if let Some(field) = rest.split('`').next() {
            loc.push(field.to_owned());
            kind = "missing";
        }
    } else if let Some((path, _)) = msg.split_once(": ") {
        let is_path = !path.is_empty() && path.chars().all(|c| c.is_ascii_alphanumeric() || "._[]".contains(c));
        if is_path && path != "." {
            loc.extend(path.split('.').map(str::to_owned));
        }
    }
    FieldError { loc, msg: msg.to_owned(), kind: kind.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_the_field_of_a_deserialization_error() {
        let e = field_error("missing field `name` at line 1 column 2");
        assert_eq!(e.loc, ["body", "name"]);
        assert_eq!(e.kind, "missing");
        let e = field_error("owner.id: invalid type: integer `1`, expected a string at line 1 column 9");
        assert_eq!(e.loc, ["body", "owner", "id"]);
        let e = field_error("invalid type: integer `1`, expected a map at line 1 column 1");
        assert_eq!(e.loc, ["body"]);
    }
}
