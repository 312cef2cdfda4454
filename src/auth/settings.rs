use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::throttle::LoginThrottleSettings;

/// How callers prove who they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// The kernel's own users, passwords and JWTs; auth routes are mounted.
    #[default]
    Local,
    /// `X-API-Key` keys created by an admin.
    #[serde(rename = "apikey")]
    ApiKey,
    /// Tokens issued elsewhere, verified with a configured key; no auth routes.
    External,
}

impl AuthMode {
    /// Parses `local`, `apikey` or `external`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "local" => Some(Self::Local),
            "apikey" | "api_key" | "api-key" => Some(Self::ApiKey),
            "external" => Some(Self::External),
            _ => None,
        }
    }
}

/// The JWT signature algorithm. One is pinned: tokens signed otherwise are refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with `token_secret` (the default).
    #[default]
    HS256,
    /// RSA-SHA256 with `public_key` (external mode).
    RS256,
    /// ECDSA P-256 with `public_key` (external mode).
    ES256,
}

impl JwtAlgorithm {
    /// Parses `HS256`, `RS256` or `ES256` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "HS256" => Some(Self::HS256),
            "RS256" => Some(Self::RS256),
            "ES256" => Some(Self::ES256),
            _ => None,
        }
    }
}

/// Authentication settings (the spec's `AuthSettings`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthSettings {
    /// Enforce authentication. `false` lets every route through with no user; only
    /// accepted with `debug` on.
    pub enabled: bool,
    /// The HMAC secret. `None`: a random per-process secret is made at start-up
    /// (tokens do not survive a restart, and instances do not share them).
    pub token_secret: Option<SecretString>,
    /// PEM public key for RS256/ES256 in external mode.
    pub public_key: Option<String>,
    /// The pinned algorithm.
    pub algorithm: JwtAlgorithm,
    /// Access token lifetime (default 15).
    pub access_token_expires_minutes: u64,
    /// Refresh token lifetime (default 30).
    pub refresh_token_expires_days: u64,
    /// Expected `iss` claim, when set.
    pub issuer: Option<String>,
    /// Expected `aud` claim, when set.
    pub audience: Option<String>,
    /// External mode: take the caller's role from the token's `role` claim (default
    /// false: every external caller is a `user`; turn it on only when the issuer alone
    /// can put `admin` there).
    pub trust_role_claim: bool,
    /// The first admin, created at start-up if no admin exists.
    pub admin_email: Option<String>,
    /// The first admin's password.
    pub admin_password: Option<SecretString>,
    /// Failed-login throttling.
    pub login_throttle: LoginThrottleSettings,
    /// How long an authenticated request may trust a user's role and active flag
    /// looked up by an earlier one (default 2 s; zero reads the user table every
    /// time). This instance forgets a user at once when it deactivates them or
    /// changes their role; other instances notice within this time.
    pub identity_cache_ttl: std::time::Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            token_secret: None,
            public_key: None,
            algorithm: JwtAlgorithm::HS256,
            access_token_expires_minutes: 15,
            refresh_token_expires_days: 30,
            issuer: None,
            audience: None,
            trust_role_claim: false,
            admin_email: None,
            admin_password: None,
            login_throttle: LoginThrottleSettings::default(),
            identity_cache_ttl: super::identity_cache::DEFAULT_TTL,
        }
    }
}
