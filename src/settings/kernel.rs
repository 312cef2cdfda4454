use secrecy::{ExposeSecret, SecretString};

use super::*;

/// Redis connection (the spec's `RedisSettings`). With a URL, rate limits,
/// idempotency, stream leases and jobs are shared across instances through it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisSettings {
    /// `redis://` or `rediss://` URL; `None` keeps everything in-process.
    pub url: Option<SecretString>,
    /// Prefix of every key the kernel writes (default `app:`).
    pub key_prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self { url: None, key_prefix: "app:".into() }
    }
}

/// Everything the kernel is configured with (the spec's `KernelSettings`).
///
/// Build it directly for manual initialization, or convert a [`ServiceConfig`].
/// Once given to a service it is frozen.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct KernelSettings {
    /// Debug mode: allows a weak JWT secret and `auth.enabled = false`.
    pub debug: bool,
    /// Listener, prefix, limits.
    pub server: ServerSettings,
    /// Redis, when used.
    pub redis: RedisSettings,
    /// Authentication.
    pub auth: AuthSettings,
    /// The database.
    pub database: DatabaseSettings,
    /// Background jobs.
    pub jobs: JobSettings,
    /// Stream leases.
    pub streaming: StreamingSettings,
    /// Logs and metrics.
    pub observability: ObservabilitySettings,
    /// Rate limiting and idempotency.
    pub reliability: ReliabilitySettings,
    /// Which kernel routes are mounted.
    pub features: FeatureSettings,
    /// CORS.
    pub cors: CorsSettings,
    /// Security headers.
    pub security_headers: SecurityHeadersSettings,
    /// Which parts of the middleware stack run.
    pub stack: StackSettings,
}

/// The spec's default secret, refused outside debug mode.
pub(crate) const PLACEHOLDER_SECRET: &str = "dev-secret-change-me";
const MIN_SECRET_BYTES: usize = 32;

impl KernelSettings {
    /// Checks what cannot be expressed in types: a usable JWT secret, auth off only
    /// in debug, CORS origins and paths that make sense.
    ///
    /// # Errors
    /// The first setting that would make the service unsafe or unable to start.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if let Some(secret) = &self.auth.token_secret {
            let s = secret.expose_secret();
            if !self.debug && s == PLACEHOLDER_SECRET {
                return Err(SettingsError::rejected(
                    "JWT_SECRET",
                    "is the documented placeholder; set a random secret of at least 32 bytes (or DEBUG=true for development)",
                ));
            }
            if !self.debug && s.len() < MIN_SECRET_BYTES {
                return Err(SettingsError::rejected(
                    "JWT_SECRET",
                    format!(
                        "is {} bytes; at least {MIN_SECRET_BYTES} are required (or DEBUG=true for development)",
                        s.len()
                    ),
                ));
            }
        }
        if self.auth.token_secret.is_none()
            && !self.debug
            && self.auth.algorithm == crate::auth::JwtAlgorithm::HS256
            && (self.database.kind != crate::db::DatabaseKind::Sqlite || self.redis.url.is_some())
        {
            return Err(SettingsError::rejected(
                "JWT_SECRET",
                "is not set, and a server database or Redis makes this a deployment (several instances, restarts): \
                 a random per-process secret would log everyone out on restart and split instances; set a random \
                 secret of at least 32 bytes (or DEBUG=true for development)",
            ));
        }
        if !self.auth.enabled && !self.debug {
            return Err(SettingsError::rejected("AUTH_ENABLED", "false is only accepted with DEBUG=true"));
        }
        if self.cors.origins.is_empty() {
            return Err(SettingsError::rejected("CORS_ORIGINS", "is empty; use * or a list of origins"));
        }
        let prefix = &self.server.api_prefix;
        if !prefix.is_empty() && (!prefix.starts_with('/') || prefix.ends_with('/')) {
            return Err(SettingsError::rejected("api_prefix", "must start with / and not end with / (e.g. /api/v1)"));
        }
        if self.reliability.rate_limit_requests == 0 || self.reliability.rate_limit_window_seconds == 0 {
            return Err(SettingsError::rejected("RATE_LIMIT_REQUESTS/RATE_LIMIT_WINDOW", "must be positive"));
        }
        if self.reliability.idempotency_enabled && self.reliability.idempotency_ttl_seconds == 0 {
            return Err(SettingsError::rejected("reliability.idempotency_ttl_seconds", "must be positive"));
        }
        if self.reliability.idempotency_max_keys_per_caller == 0 {
            return Err(SettingsError::rejected("IDEMPOTENCY_MAX_KEYS_PER_CALLER", "must be positive"));
        }
        let wait = self.database.acquire_timeout;
        if wait.is_zero() || wait > crate::db::MAX_ACQUIRE_TIMEOUT {
            return Err(SettingsError::rejected(
                "DATABASE_ACQUIRE_TIMEOUT_MS",
                format!("is {} ms; use 1..=60000 ms (default 1000)", wait.as_millis()),
            ));
        }
        if self.streaming.max_concurrent_per_user == 0 || self.streaming.lease_ttl_seconds == 0 {
            return Err(SettingsError::rejected(
                "streaming.max_concurrent_per_user/lease_ttl_seconds",
                "must be positive",
            ));
        }
        Ok(())
    }
}
