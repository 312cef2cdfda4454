//! Identity and authentication: who is calling, and may they.
//!
//! This module owns the auth settings and the identity extractors. A request's
//! identity comes from exactly one place (the configured [`AuthMode`]); tokens are
//! verified with one pinned algorithm.

mod settings;

pub use settings::{AuthMode, AuthSettings, JwtAlgorithm};

use http::request::Parts;

use crate::error::ApiError;
use crate::service::Kernel;

/// Admits an admin caller. Until admin identities can be verified, every caller is
/// refused: 401 without credentials, 403 with them (never open by default).
pub(crate) async fn require_admin(_kernel: &Kernel, parts: &Parts) -> Result<(), ApiError> {
    let has_credentials =
        parts.headers.contains_key(http::header::AUTHORIZATION) || parts.headers.contains_key("x-api-key");
    if has_credentials {
        Err(ApiError::forbidden("not_admin", "Admin role required"))
    } else {
        Err(ApiError::unauthorized("not_authenticated", "Not authenticated"))
    }
}
