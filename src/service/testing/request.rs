//! [`TestRequest`] and [`TestResponse`]: a request sent through the app's full router
//! in process (the middleware stack included), and its answer read whole.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tower::ServiceExt;

/// The peer address of a test request unless [`TestRequest::client_addr`] says
/// otherwise: what the rate limit and the login throttle count by.
const LOOPBACK: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 40000);

/// How long [`TestRequest::send`] waits for a response body to end: a stream that
/// never ends fails the test instead of hanging it.
const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

/// A request to a [`TestApp`](super::TestApp), sent by [`send`](Self::send).
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct TestRequest {
    router: Router,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Body,
    peer: SocketAddr,
}

impl TestRequest {
    pub(super) fn new(router: Router, method: Method, path: &str) -> Self {
        Self { router, method, path: path.to_owned(), headers: HeaderMap::new(), body: Body::empty(), peer: LOOPBACK }
    }

    /// `Authorization: Bearer TOKEN`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// A header (added to any of the same name).
    ///
    /// # Panics
    /// The name or value is not a valid header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::try_from(name).unwrap_or_else(|e| panic!("header name {name:?}: {e}"));
        let value = HeaderValue::try_from(value).unwrap_or_else(|e| panic!("header value {value:?}: {e}"));
        self.headers.append(name, value);
        self
    }

    /// A JSON body, with `Content-Type: application/json`.
    ///
    /// # Panics
    /// `body` does not serialize.
    pub fn json(mut self, body: &impl Serialize) -> Self {
        let bytes = serde_json::to_vec(body).unwrap_or_else(|e| panic!("request body does not serialize: {e}"));
        self.body = Body::from(bytes);
        self.header("content-type", "application/json")
    }

    /// A raw body; set its `Content-Type` with [`header`](Self::header).
    pub fn body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    /// The client's address as the server sees it (default 127.0.0.1).
    pub fn client_addr(mut self, addr: SocketAddr) -> Self {
        self.peer = addr;
        self
    }

    /// Sends the request and reads the whole response.
    ///
    /// # Panics
    /// The path is not a valid URI, or the response body fails or does not end within
    /// 20 seconds.
    pub async fn send(self) -> TestResponse {
        let mut request = Request::builder()
            .method(self.method)
            .uri(&self.path)
            .body(self.body)
            .unwrap_or_else(|e| panic!("request to {:?}: {e}", self.path));
        *request.headers_mut() = self.headers;
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let response = match self.router.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let (parts, body) = response.into_parts();
        let body = match tokio::time::timeout(BODY_DEADLINE, body.collect()).await {
            Ok(Ok(body)) => body.to_bytes(),
            Ok(Err(e)) => panic!("response body of {}: {e}", self.path),
            Err(_) => panic!("the body of {} did not end within {BODY_DEADLINE:?} (an endless stream?)", self.path),
        };
        TestResponse { status: parts.status, headers: parts.headers, body }
    }
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct TestResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
}

impl TestResponse {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Every header.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of header `name`, when it is there and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body parsed as JSON into `T` (`serde_json::Value` for any JSON).
    ///
    /// # Panics
    /// The body is not JSON of that shape; the message shows the status and body.
    #[track_caller]
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{} body is not the JSON expected ({e}): {}", self.status, self.text());
        })
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.body
    }

    /// Asserts the status, showing the body when it differs; returns the response.
    ///
    /// # Panics
    /// The status is not `expected`.
    #[track_caller]
    pub fn assert_status(&self, expected: u16) -> &Self {
        assert_eq!(self.status.as_u16(), expected, "status of a response whose body is: {}", self.text());
        self
    }
}
