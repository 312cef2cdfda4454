//! [`AuthError`]: why a caller was not authenticated or not allowed, and the one
//! place that decides each case's HTTP status and stable `code`.
//!
//! Credential problems are 401 (with `WWW-Authenticate: Bearer`, added by
//! [`ApiError`]), permission problems 403, a throttled login 429 with
//! `Retry-After`, a duplicate account 409. The details never say which half of a
//! username/password pair was wrong, nor why a token failed beyond
//! expired/not-yet-valid/invalid.

use std::borrow::Cow;

use http::{header, HeaderValue, StatusCode};

use crate::error::ApiError;

/// Why authentication or authorization failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The token's `exp` is in the past.
    #[error("Token expired")]
    TokenExpired,
    /// The token's `nbf` is in the future.
    #[error("Token not yet valid")]
    TokenNotYetValid,
    /// A refresh token where an access token is required, or the reverse.
    #[error("Wrong token type: expected a{} {expected} token", if *.expected == "access" { "n" } else { "" })]
    WrongTokenType {
        /// The type that was required (`access` or `refresh`).
        expected: &'static str,
    },
    /// The token was revoked (logout, password change) or a rotated refresh token was reused.
    #[error("Token revoked")]
    Revoked,
    /// Malformed token, bad signature, wrong algorithm, issuer or audience.
    #[error("Invalid token")]
    InvalidToken,
    /// The `X-API-Key` header does not name a live key.
    #[error("Invalid API key")]
    InvalidApiKey,
    /// No `Authorization: Bearer` (or `X-API-Key`) credentials were sent.
    #[error("Not authenticated")]
    MissingCredentials,
    /// The account exists but is deactivated.
    #[error("Inactive user")]
    InactiveUser,
    /// Unknown user or wrong password: deliberately the same answer.
    #[error("Incorrect username or password")]
    InvalidCredentials,
    /// Too many failed logins for this username or address.
    #[error("Too many failed login attempts; retry in {retry_after} s")]
    Throttled {
        /// Seconds until another attempt is accepted.
        retry_after: u64,
    },
    /// Every password hashing thread stayed busy; try again shortly (503).
    #[error("The server is busy checking passwords; retry in {retry_after} s")]
    Busy {
        /// Seconds to wait before trying again.
        retry_after: u64,
    },
    /// The old password given to change-password is wrong.
    #[error("Incorrect password")]
    WrongPassword,
    /// The caller is authenticated but the route needs the admin role.
    #[error("Admin role required")]
    NotAdmin,
    /// The caller is authenticated but may not do this.
    #[error("Forbidden")]
    Forbidden,
    /// Self-signup is switched off (`allow_self_signup = false`).
    #[error("Self-signup is disabled")]
    SignupDisabled,
    /// The username is not one a user may have (see the username rules).
    #[error("{}", super::username::USERNAME_RULE)]
    InvalidUsername,
    /// The username or email is already taken.
    #[error("{0}")]
    Conflict(String),
    /// Tokens cannot be issued with this configuration (external mode, a public key only).
    #[error("token signing is not available: {0}")]
    SigningUnavailable(&'static str),
    /// The auth settings cannot be used (bad PEM key, missing key).
    #[error("auth configuration: {0}")]
    Config(String),
    /// The user store's database cannot be reached; becomes a 503 `database_unavailable`.
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(String),
    /// Something the caller cannot fix (hashing failed, a store is down); becomes a 500.
    #[error("internal auth error: {0}")]
    Internal(String),
}

impl AuthError {
    /// The stable machine-readable code clients can switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TokenExpired => "token_expired",
            Self::TokenNotYetValid => "token_not_yet_valid",
            Self::WrongTokenType { .. } => "wrong_token_type",
            Self::Revoked => "token_revoked",
            Self::InvalidToken => "invalid_token",
            Self::InvalidApiKey => "invalid_api_key",
            Self::MissingCredentials => "not_authenticated",
            Self::InactiveUser => "inactive_user",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Throttled { .. } => "login_throttled",
            Self::Busy { .. } => "server_busy",
            Self::WrongPassword => "wrong_password",
            Self::NotAdmin => "not_admin",
            Self::Forbidden => "forbidden",
            Self::SignupDisabled => "signup_disabled",
            Self::Conflict(_) => "conflict",
            Self::InvalidUsername => "invalid_username",
            Self::DatabaseUnavailable(_) => "database_unavailable",
            Self::SigningUnavailable(_) | Self::Config(_) | Self::Internal(_) => "internal_error",
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TokenExpired
            | Self::TokenNotYetValid
            | Self::WrongTokenType { .. }
            | Self::Revoked
            | Self::InvalidToken
            | Self::InvalidApiKey
            | Self::MissingCredentials
            | Self::InactiveUser
            | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy { .. } | Self::DatabaseUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::WrongPassword => StatusCode::BAD_REQUEST,
            Self::NotAdmin | Self::Forbidden | Self::SignupDisabled => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::InvalidUsername => StatusCode::UNPROCESSABLE_ENTITY,
            Self::SigningUnavailable(_) | Self::Config(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        if let AuthError::DatabaseUnavailable(cause) = &e {
            return crate::db::DbError::unavailable_answer(cause);
        }
        let status = e.status();
        if status.is_server_error() && !matches!(e, AuthError::Busy { .. }) {
            return ApiError::internal(e);
        }
        let api = ApiError::new(status, Cow::Borrowed(e.code()), e.to_string());
        match e {
            AuthError::Throttled { retry_after } | AuthError::Busy { retry_after } => {
                api.with_header(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)))
            }
            _ => api,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes_are_stable() {
        let cases = [
            (AuthError::TokenExpired, 401, "token_expired"),
            (AuthError::InvalidToken, 401, "invalid_token"),
            (AuthError::WrongTokenType { expected: "access" }, 401, "wrong_token_type"),
            (AuthError::DatabaseUnavailable("pool timed out".into()), 503, "database_unavailable"),
            (AuthError::InvalidCredentials, 401, "invalid_credentials"),
            (AuthError::NotAdmin, 403, "not_admin"),
            (AuthError::SignupDisabled, 403, "signup_disabled"),
            (AuthError::Conflict("username taken".into()), 409, "conflict"),
            (AuthError::Throttled { retry_after: 9 }, 429, "login_throttled"),
            (AuthError::Busy { retry_after: 1 }, 503, "server_busy"),
            (AuthError::Internal("boom".into()), 500, "internal_error"),
        ];
        for (err, status, code) in cases {
            let api = ApiError::from(err);
            assert_eq!((api.status().as_u16(), api.code()), (status, code));
        }
    }

    #[test]
    fn wrong_type_reads_well_and_internals_are_not_echoed() {
        assert_eq!(
            AuthError::WrongTokenType { expected: "access" }.to_string(),
            "Wrong token type: expected an access token"
        );
        assert_eq!(
            AuthError::WrongTokenType { expected: "refresh" }.to_string(),
            "Wrong token type: expected a refresh token"
        );
        assert_eq!(ApiError::from(AuthError::Internal("db password x".into())).detail(), "Internal server error");
    }

    #[test]
    fn throttled_carries_retry_after() {
        let response =
            axum::response::IntoResponse::into_response(ApiError::from(AuthError::Throttled { retry_after: 42 }));
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
    }
}
