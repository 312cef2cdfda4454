//! `/docs`'s own response layer: its CSP and cache lifetime, and gzip for clients that
//! accept it (the Swagger UI assets are 1.84 MB per visit uncompressed).
//!
//! The kernel's own rather than tower-http's `CompressionLayer` and
//! `SetResponseHeaderLayer`: the docs are the only compressed responses, their bodies
//! never change while the process runs, so each is compressed once (on a blocking
//! thread) and kept; and tower-http would be the kernel's only dependency with a second
//! major in the build (reqwest, a dev-dependency, pulls tower-http 0.6).

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE, VARY,
};
use http::{HeaderMap, HeaderValue, StatusCode};

/// What the `/docs` page may load: its own assets and document only (Swagger UI
/// styles elements inline and draws its icons from `data:` URLs).
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// How long a browser keeps the Swagger UI assets: they change only with the
/// kernel's version (a day, then a cheap revalidation).
const DOCS_MAX_AGE: &str = "public, max-age=86400";

/// How many compressed bodies are kept: the Swagger UI's assets and the document are
/// about ten; paths past this are compressed on each request and not kept.
const KEPT: usize = 32;

/// Bodies shorter than this are sent as they are (gzip's header would outweigh the gain).
const MIN_SIZE: usize = 1024;

/// The largest body read to compress (the largest asset is about 1.4 MB).
const MAX_SIZE: usize = 16 << 20;

/// The compressed bodies of earlier responses, by path.
#[derive(Debug, Clone, Default)]
pub(crate) struct DocsResponses {
    gzipped: Arc<Mutex<HashMap<String, Bytes>>>,
}

/// Sets the docs' CSP (replacing the stack's) and cache lifetime, says the answer varies
/// with `Accept-Encoding`, and gzips a successful, compressible answer when accepted.
pub(crate) async fn layer(State(kept): State<DocsResponses>, request: Request, next: Next) -> Response {
    let gzip = accepts_gzip(request.headers());
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(DOCS_CSP));
    headers.entry(CACHE_CONTROL).or_insert(HeaderValue::from_static(DOCS_MAX_AGE));
    headers.append(VARY, HeaderValue::from_static("accept-encoding"));
    if !gzip || response.status() != StatusCode::OK || !compressible(response.headers()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let cached = kept.gzipped.lock().unwrap_or_else(|e| e.into_inner()).get(&path).cloned();
    let gzipped = match cached {
        Some(gzipped) => gzipped,
        None => {
            let Ok(plain) = axum::body::to_bytes(body, MAX_SIZE).await else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            if plain.len() < MIN_SIZE {
                return Response::from_parts(parts, Body::from(plain));
            }
            let Ok(gzipped) = tokio::task::spawn_blocking(move || compress(&plain)).await else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            let mut map = kept.gzipped.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() < KEPT {
                map.insert(path, gzipped.clone());
            }
            gzipped
        }
    };
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    Response::from_parts(parts, Body::from(gzipped))
}

fn compress(plain: &[u8]) -> Bytes {
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::with_capacity(plain.len() / 3), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(plain);
    Bytes::from(encoder.finish().unwrap_or_default())
}

/// Text, scripts, styles, JSON and SVG; not already encoded answers or other images.
fn compressible(headers: &HeaderMap) -> bool {
    if headers.contains_key(CONTENT_ENCODING) {
        return false;
    }
    let kind = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    !kind.starts_with("image/") || kind.starts_with("image/svg")
}

/// Whether `Accept-Encoding` allows gzip: named with a weight above zero, or not named
/// and `*` allowed (RFC 9110 §12.5.3).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let (mut gzip, mut any) = (None, None);
    let items = headers.get_all(ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
    for item in items {
        let mut params = item.split(';');
        let coding = params.next().unwrap_or_default().trim();
        let weight = params
            .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
            .map(|q| q.trim().parse::<f32>().unwrap_or(0.0))
            .next()
            .unwrap_or(1.0);
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(weight > 0.0);
        } else if coding == "*" {
            any = Some(weight > 0.0);
        }
    }
    gzip.or(any).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(value: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        accepts_gzip(&headers)
    }

    #[test]
    fn gzip_is_used_only_where_the_client_allows_it() {
        assert!(accepts("gzip"));
        assert!(accepts("br, GZIP;q=0.5"));
        assert!(accepts("*"));
        assert!(accepts("deflate, *;q=0.1"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("gzip;q=0.0, *"));
        assert!(!accepts("br, deflate"));
        assert!(!accepts("identity"));
        assert!(!accepts("gzip;q=nonsense"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn a_compressed_body_decompresses_to_the_original() {
        let plain = "swagger ".repeat(1000);
        let gzipped = compress(plain.as_bytes());
        assert!(gzipped.len() < plain.len() / 10);
        let mut back = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gzipped[..]), &mut back).unwrap();
        assert_eq!(back, plain);
    }
}
