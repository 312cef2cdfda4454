//! [`IdentitySource`]: turns verified credentials into the caller's current identity.
//!
//! The extractors verify a token's signature and claims themselves, then ask the
//! source who the caller is *now*. [`ClaimsIdentity`], the default, trusts the
//! claims alone (stateless: a deactivated user keeps access until the token
//! expires, and API keys are refused). A user store implements this trait to check
//! that the user still exists and is active and the token is not revoked, and to
//! resolve `X-API-Key` keys in `apikey` mode.

use std::sync::Arc;

use async_trait::async_trait;

use super::{ApiKey, AuthError, Claims, UserIdentity};

/// Resolves verified credentials to the current identity.
///
/// The identity is shared (`Arc`): a source that caches identities hands out the
/// cached one without copying it, and so do the extractors.
#[async_trait]
pub trait IdentitySource: Send + Sync + std::fmt::Debug {
    /// The identity behind a verified access token's claims.
    ///
    /// # Errors
    /// [`AuthError::InactiveUser`], [`AuthError::Revoked`],
    /// [`AuthError::InvalidToken`] (the user is gone), or a store error.
    async fn identify_token(&self, claims: &Claims) -> Result<Arc<UserIdentity>, AuthError>;

    /// The identity an API key belongs to.
    ///
    /// # Errors
    /// [`AuthError::InvalidApiKey`] for an unknown or revoked key, or a store error.
    async fn identify_api_key(&self, key: &ApiKey) -> Result<Arc<UserIdentity>, AuthError>;
}

/// The stateless default: a token's claims are the identity; API keys are refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClaimsIdentity;

#[async_trait]
impl IdentitySource for ClaimsIdentity {
    async fn identify_token(&self, claims: &Claims) -> Result<Arc<UserIdentity>, AuthError> {
        Ok(Arc::new(claims.identity()))
    }

    async fn identify_api_key(&self, _key: &ApiKey) -> Result<Arc<UserIdentity>, AuthError> {
        Err(AuthError::InvalidApiKey)
    }
}
