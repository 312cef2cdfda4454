//! [`Auth`]: the authentication handle a service holds: the
//! settings, the token signer/verifier, the identity source and the login throttle.
//!
//! [`Auth::authenticate`] is the one place a request's credentials are read:
//!
//! - `enabled = false` (debug only): every request is
//!   [`UserIdentity::anonymous_dev`], an admin, without looking at headers;
//! - in `apikey` mode, an `X-API-Key` header is resolved by the identity source;
//! - otherwise `Authorization: Bearer <access token>` is verified and resolved.
//!
//! Other `Authorization` schemes (Basic, ...) count as no credentials.

use std::sync::Arc;

use http::{header, HeaderMap};

use super::apikey::{ApiKey, API_KEY_HEADER};
use super::source::{ClaimsIdentity, IdentitySource};
use super::throttle::{LoginThrottle, LoginThrottleBackend};
use super::{AuthError, AuthMode, AuthSettings, Tokens, UserIdentity};

/// The authentication handle. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Auth {
    settings: Arc<AuthSettings>,
    mode: AuthMode,
    tokens: Arc<Tokens>,
    identities: Arc<dyn IdentitySource>,
    users: Option<super::UserStore>,
    throttle: LoginThrottle,
}

impl Auth {
    /// Builds the handle with [`ClaimsIdentity`] and the in-process login throttle.
    ///
    /// # Errors
    /// [`AuthError::Config`] when the token keys cannot be built (see [`Tokens::new`]).
    pub fn new(settings: &AuthSettings, mode: AuthMode) -> Result<Self, AuthError> {
        Ok(Self {
            tokens: Arc::new(Tokens::new(settings, mode)?),
            settings: Arc::new(settings.clone()),
            mode,
            identities: Arc::new(ClaimsIdentity::trusting_roles(match mode {
                // The kernel signed these tokens itself: their role is its own word.
                AuthMode::Local | AuthMode::ApiKey => true,
                AuthMode::External => settings.trust_role_claim,
            })),
            users: None,
            throttle: LoginThrottle::new(settings.login_throttle.clone()),
        })
    }

    /// Replaces the identity source (a user store that checks deactivation,
    /// revocation and API keys).
    #[must_use]
    pub fn with_identity_source(mut self, source: Arc<dyn IdentitySource>) -> Self {
        self.identities = source;
        self
    }

    /// Makes `store` the identity source and the accounts the auth routes serve:
    /// one store, so a password change or a logout through the routes is seen at
    /// once by the identity cache that checks every token.
    #[must_use]
    pub fn with_user_store(mut self, store: super::UserStore) -> Self {
        self.identities = Arc::new(store.clone());
        self.users = Some(store);
        self
    }

    /// The user store, in `local` and `apikey` mode once opened by [`super::open`].
    pub fn users(&self) -> Option<&super::UserStore> {
        self.users.as_ref()
    }

    /// Keeps login failures in another backend (Redis, shared by instances).
    #[must_use]
    pub fn with_throttle_backend(mut self, backend: Arc<dyn LoginThrottleBackend>) -> Self {
        self.throttle = LoginThrottle::with_backend(self.settings.login_throttle.clone(), backend);
        self
    }

    /// The settings.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// The auth mode.
    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// The token signer/verifier.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The identity source.
    pub fn identities(&self) -> &dyn IdentitySource {
        self.identities.as_ref()
    }

    /// The login throttle.
    pub fn throttle(&self) -> &LoginThrottle {
        &self.throttle
    }

    /// Whether the JWT secret was generated for this process (the service warns).
    pub fn secret_was_generated(&self) -> bool {
        self.tokens.secret_was_generated()
    }

    /// Who sent these headers: `Ok(None)` without credentials.
    ///
    /// # Errors
    /// Credentials were sent but are not valid (bad or expired token, a refresh
    /// token, unknown API key, inactive user).
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Arc<UserIdentity>>, AuthError> {
        if !self.settings.enabled {
            return Ok(Some(Arc::new(UserIdentity::anonymous_dev())));
        }
        if self.mode == AuthMode::ApiKey {
            if let Some(raw) = headers.get(API_KEY_HEADER) {
                let key = ApiKey::parse(raw.to_str().map_err(|_| AuthError::InvalidApiKey)?.trim())?;
                return self.identities.identify_api_key(&key).await.map(Some);
            }
        }
        let Some(token) = bearer_token(headers)? else { return Ok(None) };
        let claims = self.tokens.decode_access(token)?;
        self.identities.identify_token(&claims).await.map(Some)
    }
}

/// The token of an `Authorization: Bearer` header; `None` without one.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    // What `HeaderValue::to_str` accepts (a header value holds no control bytes), with
    // the standard library's word-at-a-time scans instead of its byte loop.
    let bytes = value.as_bytes();
    if !bytes.is_ascii() {
        return Err(AuthError::InvalidToken);
    }
    let value = std::str::from_utf8(bytes).map_err(|_| AuthError::InvalidToken)?.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    match rest.trim() {
        "" => Err(AuthError::InvalidToken),
        token => Ok(Some(token)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(&headers(&[])), Ok(None));
        assert_eq!(bearer_token(&headers(&[("authorization", "Bearer abc")])), Ok(Some("abc")));
        assert_eq!(bearer_token(&headers(&[("authorization", "bearer   abc ")])), Ok(Some("abc")));
        assert_eq!(bearer_token(&headers(&[("authorization", "Basic dXNlcjpwdw==")])), Ok(None));
        assert_eq!(bearer_token(&headers(&[("authorization", "Bearer")])), Err(AuthError::InvalidToken));
        assert_eq!(bearer_token(&headers(&[("authorization", "Bearer  ")])), Err(AuthError::InvalidToken));
    }

    #[tokio::test]
    async fn disabled_auth_is_the_anonymous_dev_admin() {
        let settings = AuthSettings { enabled: false, ..AuthSettings::default() };
        let auth = Auth::new(&settings, AuthMode::Local).unwrap();
        let who = auth.authenticate(&headers(&[("authorization", "Bearer garbage")])).await;
        assert_eq!(who, Ok(Some(Arc::new(UserIdentity::anonymous_dev()))));
    }

    #[tokio::test]
    async fn api_keys_only_in_apikey_mode_and_resolved_by_the_source() {
        let (key, _) = ApiKey::generate();
        let local = Auth::new(&AuthSettings::default(), AuthMode::Local).unwrap();
        assert_eq!(local.authenticate(&headers(&[("x-api-key", key.expose())])).await, Ok(None));
        let apikey = Auth::new(&AuthSettings::default(), AuthMode::ApiKey).unwrap();
        let sent = headers(&[("x-api-key", key.expose())]);
        assert_eq!(apikey.authenticate(&sent).await, Err(AuthError::InvalidApiKey), "no store: refused");
        let bad = headers(&[("x-api-key", "ak_nope")]);
        assert_eq!(apikey.authenticate(&bad).await, Err(AuthError::InvalidApiKey));
        let token = apikey.tokens().issue_access(&UserIdentity::new("1", "admin")).unwrap().token;
        let bearer = headers(&[("authorization", &format!("Bearer {token}"))]);
        assert_eq!(apikey.authenticate(&bearer).await.unwrap().unwrap().id, "1", "bearer still works");
    }
}
