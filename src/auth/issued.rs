//! What signing produces: [`IssuedToken`] (the JWT and its claims, which a
//! revocation store records), [`IssuedPair`], and [`TokenPair`], the body of the
//! login and refresh routes.

use serde::Serialize;

use super::claims::Claims;

/// A freshly signed token and what it says.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The compact JWT.
    pub token: String,
    /// Its claims (`jti`, `fam`, `exp` are what a revocation store records).
    pub claims: Claims,
}

/// An access token and a refresh token of one family.
#[derive(Debug, Clone)]
pub struct IssuedPair {
    /// The access token.
    pub access: IssuedToken,
    /// The refresh token.
    pub refresh: IssuedToken,
}

/// The login and refresh routes' answer: `{"access_token","refresh_token","token_type":"bearer","expires_in"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// The access token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

impl IssuedPair {
    /// The body the login and refresh routes send.
    pub fn response(&self) -> TokenPair {
        TokenPair {
            access_token: self.access.token.clone(),
            refresh_token: self.refresh.token.clone(),
            token_type: "bearer",
            expires_in: self.access.claims.exp.saturating_sub(self.access.claims.iat),
        }
    }
}
