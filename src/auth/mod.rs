//! Identity and authentication: who is calling, and may they.
//!
//! This module owns the auth settings, the [`Auth`] handle the kernel holds, and
//! the identity extractors ([`CurrentUser`], [`OptionalUser`], [`AdminUser`]). A
//! request's identity comes from exactly one place ([`Auth::authenticate`], per the
//! configured [`AuthMode`]); tokens are verified with one pinned algorithm
//! ([`Tokens`]); passwords are hashed with argon2id ([`hash_password`]); failed
//! logins are throttled per username and address ([`LoginThrottle`]); API keys are
//! stored only as hashes ([`ApiKey`]). Every failure is an [`AuthError`], answered
//! as problem+json through [`ApiError`](crate::ApiError).
//!
//! The spec's token utilities are here too: [`create_access_token`],
//! [`create_refresh_token`], [`decode_token`], [`hash_password`],
//! [`verify_password`].

mod admin;
mod admin_accounts;
mod apikey;
mod claims;
mod error;
mod extract;
mod handle;
mod identity;
mod identity_cache;
mod issued;
mod key_routes;
mod keys;
mod login_metrics;
mod own_token;
mod password;
mod refresh;
pub(crate) mod routes;
mod settings;
mod source;
pub(crate) mod store;
mod throttle;
#[cfg(feature = "redis")]
mod throttle_redis;
mod token;
mod username;

pub(crate) use admin::{create_admin_command, promote_admin_command};
pub use admin::{AdminError, AdminPassword};
pub use apikey::{ApiKey, ApiKeyHash, API_KEY_HEADER, API_KEY_PREFIX};
pub use claims::{Claims, TokenType};
pub use error::AuthError;
pub(crate) use extract::identify;
pub use extract::{AdminUser, CurrentUser, OptionalUser};
pub use handle::Auth;
pub use identity::{UserIdentity, ADMIN_ROLE, USER_ROLE};
pub use issued::{IssuedPair, IssuedToken, TokenPair};
pub use keys::ApiKeyInfo;
pub use password::{
    check_dummy, check_password, dummy_verify, dummy_verify_async, hash_password, hash_password_async, verify_password,
    verify_password_async, ARGON2_ITERATIONS, ARGON2_MEMORY_KIB, ARGON2_PARALLELISM, HASHING_MEMORY_KEPT,
    HASHING_QUEUE_WAIT, MAX_PASSWORD_BYTES,
};
pub use settings::{AuthMode, AuthSettings, JwtAlgorithm};
pub use source::{ClaimsIdentity, IdentitySource};
pub use store::{NewUser, StoredUser, UserStore, API_KEYS_TABLE, REFRESH_TOKENS_TABLE, USERS_TABLE};
pub use throttle::{
    LoginAttempt, LoginThrottle, LoginThrottleBackend, LoginThrottleSettings, MemoryLoginThrottle, ThrottleRule,
};
#[cfg(feature = "redis")]
pub use throttle_redis::RedisLoginThrottle;
pub use token::{create_access_token, create_refresh_token, decode_token, Tokens, CLOCK_LEEWAY_SECS};

/// Auth for `settings` and `mode`, opened once at start-up: the token keys, the
/// login throttle (in Redis when `redis_url` is set and the `redis` feature is on,
/// so every instance counts together; in process otherwise) and, in `local` and
/// `apikey` mode, the user store on `db` as the identity source (its tables
/// created, the first admin from `ADMIN_EMAIL` made when none exists).
///
/// # Errors
/// The keys cannot be built from the settings; Redis or the database failed.
pub async fn open(
    settings: &AuthSettings,
    mode: AuthMode,
    db: &crate::db::Db,
    redis_url: Option<&str>,
    redis_prefix: &str,
) -> Result<Auth, AuthError> {
    let auth = Auth::new(settings, mode)?;
    #[cfg(feature = "redis")]
    let auth = match redis_url {
        Some(url) => {
            let backend = RedisLoginThrottle::connect(url, redis_prefix).await?;
            tracing::info!("login throttle: redis (shared by every instance)");
            auth.with_throttle_backend(std::sync::Arc::new(backend))
        }
        None => auth,
    };
    let _ = (redis_url, redis_prefix);
    if auth.secret_was_generated() {
        tracing::warn!(
            "JWT_SECRET is not set: using a random per-process secret; tokens will not survive a restart \
             and several instances need one shared secret"
        );
    }
    store::attach(auth, db, settings).await
}
