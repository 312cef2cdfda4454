//! CORS from [`CorsSettings`]: `*` allows any origin and never credentials; an
//! explicit list allows those origins only, with credentials.

use std::time::Duration;

use http::{header, HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowHeaders, AllowOrigin, Any, CorsLayer};

use crate::service::CorsSettings;

/// Headers a browser script may read from our responses.
const EXPOSED: [HeaderName; 5] = [
    HeaderName::from_static("x-request-id"),
    HeaderName::from_static("ratelimit-limit"),
    HeaderName::from_static("ratelimit-remaining"),
    HeaderName::from_static("ratelimit-reset"),
    HeaderName::from_static("idempotent-replayed"),
];

pub(super) fn layer(settings: &CorsSettings) -> CorsLayer {
    let base = CorsLayer::new().expose_headers(EXPOSED).max_age(Duration::from_secs(settings.max_age_secs));
    if settings.is_wildcard() {
        return base.allow_origin(Any).allow_methods(Any).allow_headers(Any);
    }
    let origins: Vec<HeaderValue> = settings.origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    base.allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers(AllowHeaders::list([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("idempotency-key"),
        ]))
}
