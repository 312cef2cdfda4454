//! The OTLP exporter's HTTP client: the kernel's own hyper, so the `otel` feature
//! adds no second HTTP stack (opentelemetry-otlp's reqwest clients are off).
//!
//! The SDK's batch processor exports from its own thread, outside any Tokio runtime;
//! each request is therefore spawned onto the runtime the service started on, and its
//! result awaited from there. Plain `http://` endpoints only (a collector or agent
//! beside the service); the response body is read up to 4 MiB, the whole exchange
//! bounded by `OTEL_EXPORTER_OTLP_TIMEOUT` (the SDK's) and by [`TIMEOUT`] here.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_http::HttpError;

/// Longest one export may take, whatever the SDK allows.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body read (a collector answers with a few bytes).
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// See the module docs.
#[derive(Debug, Clone)]
pub(super) struct HyperClient {
    client: Client<HttpConnector, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
}

impl HyperClient {
    /// A client whose requests run on `runtime`.
    pub(super) fn new(runtime: tokio::runtime::Handle) -> Self {
        Self { client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()), runtime }
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for HyperClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let exchange = async move {
            let response = client.request(request.map(Full::new)).await?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES).collect().await?.to_bytes();
            Ok::<_, HttpError>(Response::from_parts(parts, body))
        };
        let task = self.runtime.spawn(async move {
            tokio::time::timeout(TIMEOUT, exchange).await.map_err(|_| HttpError::from("OTLP export timed out"))?
        });
        task.await?
    }
}
