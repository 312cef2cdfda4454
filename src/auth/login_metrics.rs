//! Logins counted by outcome in `kernel_auth_logins_total`: `success`,
//! `bad_credentials`, `throttled`, `busy`, `invalid` (a malformed request) or `error`.
//! The error's stable code decides, never its text, so the label set is bounded.

use axum::Json;

use super::issued::TokenPair;
use crate::error::ApiError;
use crate::observability::names;

/// Counts one login attempt by how it ended.
pub(super) fn count(result: &Result<Json<TokenPair>, ApiError>) {
    let outcome = match result {
        Ok(_) => "success",
        Err(e) => match e.code() {
            "invalid_credentials" => "bad_credentials",
            "login_throttled" => "throttled",
            "server_busy" => "busy",
            _ if e.status().is_client_error() => "invalid",
            _ => "error",
        },
    };
    metrics::counter!(names::AUTH_LOGINS_TOTAL, names::LABEL_OUTCOME => outcome).increment(1);
}
