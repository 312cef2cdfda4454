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
/// The `role` claim is believed only when asked ([`ClaimsIdentity::trusting_roles`]);
/// otherwise every caller is a `user`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClaimsIdentity {
    trust_role: bool,
}

impl ClaimsIdentity {
    /// Claims as the identity, the `role` claim believed (`AuthSettings::trust_role_claim`).
    pub fn trusting_roles(trust_role: bool) -> Self {
        Self { trust_role }
    }
}

#[async_trait]
impl IdentitySource for ClaimsIdentity {
    async fn identify_token(&self, claims: &Claims) -> Result<Arc<UserIdentity>, AuthError> {
        let mut identity = claims.identity();
        if !self.trust_role {
            identity.role = super::USER_ROLE.to_owned();
        }
        Ok(Arc::new(identity))
    }

    async fn identify_api_key(&self, _key: &ApiKey) -> Result<Arc<UserIdentity>, AuthError> {
        Err(AuthError::InvalidApiKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_role_claim_is_believed_only_when_asked() {
        let claims: Claims = serde_json::from_str(r#"{"sub":"u1","exp":10,"role":"admin"}"#).unwrap();
        assert_eq!(ClaimsIdentity::default().identify_token(&claims).await.unwrap().role, super::super::USER_ROLE);
        assert_eq!(ClaimsIdentity::trusting_roles(true).identify_token(&claims).await.unwrap().role, "admin");
    }
}
