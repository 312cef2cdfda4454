//! JWT issuing and verification with one pinned algorithm: [`Tokens`], and the
//! spec's utilities [`create_access_token`], [`create_refresh_token`],
//! [`decode_token`].
//!
//! Invariants: a token is accepted only if its header names the configured
//! algorithm (so `alg: none`, HS512 or an RS256/HS256 key confusion are refused),
//! its signature verifies, `exp` is present and not past (5 s leeway), `nbf`, when
//! present, is not in the future, `iss`/`aud` match when configured, and its `type`
//! is the one asked for ([`Tokens::decode_access`] refuses a refresh token and
//! [`Tokens::decode_refresh`] an access token).
//!
//! ```
//! use app_kernel::auth::{AuthMode, AuthSettings, Tokens, UserIdentity};
//! let tokens = Tokens::new(&AuthSettings::default(), AuthMode::Local).unwrap();
//! assert!(tokens.secret_was_generated());
//! let pair = tokens.issue_pair(&UserIdentity::new("1", "ann"), None).unwrap();
//! assert_eq!(tokens.decode_access(&pair.access.token).unwrap().sub, "1");
//! assert!(tokens.decode_access(&pair.refresh.token).is_err());
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};

use super::claims::{Claims, TokenType};
use super::identity::UserIdentity;
use super::issued::{IssuedPair, IssuedToken};
use super::own_token::{Check, OwnTokens};
use super::settings::{AuthMode, AuthSettings, JwtAlgorithm};
use super::AuthError;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const CLOCK_LEEWAY_SECS: u64 = 5;
/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Signs and verifies the kernel's JWTs. Build it once from [`AuthSettings`].
pub struct Tokens {
    header: Header,
    encoding: Option<EncodingKey>,
    /// `None` only for an empty HMAC secret, which `jsonwebtoken` refuses as a key.
    decoding: Option<DecodingKey>,
    validation: Validation,
    /// HS256 only: the kernel's own tokens, checked with the key prepared once.
    own: Option<OwnTokens>,
    access_ttl: Duration,
    refresh_ttl: Duration,
    issuer: Option<String>,
    audience: Option<String>,
    require_type: bool,
    generated_secret: bool,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("algorithm", &self.header.alg)
            .field("can_sign", &self.encoding.is_some())
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("generated_secret", &self.generated_secret)
            .finish_non_exhaustive()
    }
}

/// What tokens are signed and verified with.
enum Key {
    /// HS256: the shared secret (`generated` when none was configured).
    Hmac { secret: SecretString, generated: bool },
    /// RS256/ES256: a public key that verifies only.
    Public(Algorithm, DecodingKey),
}

impl Tokens {
    /// Builds the signer/verifier the settings describe.
    ///
    /// HS256 signs and verifies with `token_secret`; unset, a random 32-byte secret
    /// is made for this instance ([`Self::secret_was_generated`] tells the service
    /// to warn). RS256/ES256 verify with the PEM `public_key` and cannot sign. In
    /// [`AuthMode::External`] a token without `type` counts as an access token.
    ///
    /// # Errors
    /// [`AuthError::Config`]: an empty HS256 secret, or RS256/ES256 without a usable
    /// PEM public key.
    pub fn new(settings: &AuthSettings, mode: AuthMode) -> Result<Self, AuthError> {
        let key = match settings.algorithm {
            JwtAlgorithm::HS256 => match &settings.token_secret {
                Some(secret) if secret.expose_secret().is_empty() => {
                    return Err(AuthError::Config("token_secret is empty".into()));
                }
                Some(secret) => Key::Hmac { secret: secret.clone(), generated: false },
                None => Key::Hmac { secret: generate_secret(), generated: true },
            },
            JwtAlgorithm::RS256 | JwtAlgorithm::ES256 => {
                let pem = settings.public_key.as_deref().ok_or_else(|| {
                    AuthError::Config(format!("{:?} needs a PEM public key (public_key)", settings.algorithm))
                })?;
                let (alg, key) = if settings.algorithm == JwtAlgorithm::RS256 {
                    (Algorithm::RS256, DecodingKey::from_rsa_pem(pem.as_bytes()))
                } else {
                    (Algorithm::ES256, DecodingKey::from_ec_pem(pem.as_bytes()))
                };
                let key = key.map_err(|e| AuthError::Config(format!("public_key is not a usable PEM key: {e}")))?;
                Key::Public(alg, key)
            }
        };
        Ok(Self::assemble(settings, mode, key))
    }

    fn assemble(settings: &AuthSettings, mode: AuthMode, key: Key) -> Self {
        let (algorithm, encoding, decoding, own, generated_secret) = match key {
            Key::Hmac { secret, generated } => {
                let bytes = secret.expose_secret().as_bytes();
                let (iss, aud) = (settings.issuer.clone(), settings.audience.clone());
                // An empty secret is no key (`jsonwebtoken` refuses it): such an instance
                // neither signs nor accepts any token.
                match (EncodingKey::from_secret(bytes), DecodingKey::from_secret(bytes)) {
                    (Ok(encoding), Ok(decoding)) => {
                        let own = OwnTokens::new(bytes, &Header::new(Algorithm::HS256), CLOCK_LEEWAY_SECS, iss, aud);
                        (Algorithm::HS256, Some(encoding), Some(decoding), own, generated)
                    }
                    _ => (Algorithm::HS256, None, None, None, generated),
                }
            }
            Key::Public(algorithm, decoding) => (algorithm, None, Some(decoding), None, false),
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = CLOCK_LEEWAY_SECS;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(iss) = &settings.issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        if let Some(aud) = &settings.audience {
            validation.set_audience(&[aud]);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        Self {
            header: Header::new(algorithm),
            encoding,
            decoding,
            validation,
            own,
            access_ttl: Duration::from_secs(settings.access_token_expires_minutes.saturating_mul(60)),
            refresh_ttl: Duration::from_secs(settings.refresh_token_expires_days.saturating_mul(86_400)),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            require_type: mode != AuthMode::External,
            generated_secret,
        }
    }

    /// HS256 with `secret` and the default lifetimes (what the spec's utilities use).
    pub fn from_secret(secret: &SecretString) -> Self {
        let key = Key::Hmac { secret: secret.clone(), generated: false };
        Self::assemble(&AuthSettings::default(), AuthMode::Local, key)
    }

    /// Whether the HMAC secret was generated because none was configured: tokens
    /// will not survive a restart and other instances will refuse them.
    pub fn secret_was_generated(&self) -> bool {
        self.generated_secret
    }

    /// The access token lifetime.
    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// Signs an access token for `user` with the configured lifetime.
    ///
    /// # Errors
    /// [`AuthError::SigningUnavailable`] with a public key only.
    pub fn issue_access(&self, user: &UserIdentity) -> Result<IssuedToken, AuthError> {
        self.issue(user, TokenType::Access, self.access_ttl, None)
    }

    /// Signs a refresh token for `user`, in `family` (a rotation) or a new one (a login).
    ///
    /// # Errors
    /// [`AuthError::SigningUnavailable`] with a public key only.
    pub fn issue_refresh(&self, user: &UserIdentity, family: Option<&str>) -> Result<IssuedToken, AuthError> {
        let family = family.map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
        self.issue(user, TokenType::Refresh, self.refresh_ttl, Some(family))
    }

    /// An access token and a refresh token (in `family`, or a new family).
    ///
    /// # Errors
    /// [`AuthError::SigningUnavailable`] with a public key only.
    pub fn issue_pair(&self, user: &UserIdentity, family: Option<&str>) -> Result<IssuedPair, AuthError> {
        Ok(IssuedPair { access: self.issue_access(user)?, refresh: self.issue_refresh(user, family)? })
    }

    /// Signs a token of `kind` for `user` that lives `ttl`.
    ///
    /// # Errors
    /// [`AuthError::SigningUnavailable`] with a public key only.
    pub fn issue(
        &self,
        user: &UserIdentity,
        kind: TokenType,
        ttl: Duration,
        family: Option<String>,
    ) -> Result<IssuedToken, AuthError> {
        self.issue_versioned(user, kind, ttl, family, None)
    }

    /// An access and a refresh token (in `family`, or a new family) for `user`, whose
    /// token version is `version` (the user store's sessions).
    ///
    /// # Errors
    /// [`AuthError::SigningUnavailable`] with a public key only.
    pub fn issue_pair_versioned(
        &self,
        user: &UserIdentity,
        family: Option<&str>,
        version: u64,
    ) -> Result<IssuedPair, AuthError> {
        let family = family.map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
        Ok(IssuedPair {
            access: self.issue_versioned(user, TokenType::Access, self.access_ttl, None, Some(version))?,
            refresh: self.issue_versioned(user, TokenType::Refresh, self.refresh_ttl, Some(family), Some(version))?,
        })
    }

    fn issue_versioned(
        &self,
        user: &UserIdentity,
        kind: TokenType,
        ttl: Duration,
        family: Option<String>,
        version: Option<u64>,
    ) -> Result<IssuedToken, AuthError> {
        let iat = now_secs();
        let claims = Claims {
            sub: user.id.clone(),
            username: Some(user.username.clone()),
            email: user.email.clone(),
            role: user.role.clone(),
            token_type: Some(kind),
            iat,
            exp: iat.saturating_add(ttl.as_secs()),
            nbf: None,
            jti: uuid::Uuid::now_v7().to_string(),
            fam: if kind == TokenType::Refresh { family } else { None },
            ver: version,
            iss: self.issuer.clone(),
            aud: self.audience.iter().cloned().collect(),
        };
        Ok(IssuedToken { token: self.sign(&claims)?, claims })
    }

    /// Signs arbitrary claims as they are (tests, custom flows).
    ///
    /// # Errors
    /// [`AuthError::SigningUnavailable`] with a public key only.
    pub fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        let key = self.encoding.as_ref().ok_or(AuthError::SigningUnavailable(if self.decoding.is_some() {
            "only a public key is configured"
        } else {
            "the secret is empty"
        }))?;
        jsonwebtoken::encode(&self.header, claims, key).map_err(|e| AuthError::Internal(format!("jwt encode: {e}")))
    }

    /// Verifies a token of either type.
    ///
    /// # Errors
    /// [`AuthError::TokenExpired`], [`AuthError::TokenNotYetValid`], or
    /// [`AuthError::InvalidToken`] for anything else wrong with it.
    pub fn decode(&self, token: &str) -> Result<Claims, AuthError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::InvalidToken);
        }
        let claims = match self.own.as_ref().map(|own| (own, own.check(token))) {
            Some((_, Check::Forged)) => return Err(AuthError::InvalidToken),
            Some((own, Check::Signed(segment))) => own.claims(segment, now_secs())?,
            Some((_, Check::Foreign)) | None => self.decode_general(token)?,
        };
        if self.require_type && claims.token_type.is_none() {
            return Err(AuthError::InvalidToken);
        }
        Ok(claims)
    }

    /// `jsonwebtoken`'s full verification: signature with the pinned algorithm, then claims.
    fn decode_general(&self, token: &str) -> Result<Claims, AuthError> {
        let decoding = self.decoding.as_ref().ok_or(AuthError::InvalidToken)?;
        let data = jsonwebtoken::decode::<Claims>(token, decoding, &self.validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthError::TokenExpired,
            ErrorKind::ImmatureSignature => AuthError::TokenNotYetValid,
            kind => {
                tracing::debug!(reason = ?kind, "token refused");
                AuthError::InvalidToken
            }
        })?;
        Ok(data.claims)
    }

    /// Verifies an access token; a refresh token is [`AuthError::WrongTokenType`].
    ///
    /// # Errors
    /// As [`Self::decode`], or the wrong type.
    pub fn decode_access(&self, token: &str) -> Result<Claims, AuthError> {
        let claims = self.decode(token)?;
        match claims.token_type {
            Some(TokenType::Access) | None => Ok(claims),
            Some(TokenType::Refresh) => Err(AuthError::WrongTokenType { expected: "access" }),
        }
    }

    /// Verifies a refresh token; an access token is [`AuthError::WrongTokenType`].
    ///
    /// # Errors
    /// As [`Self::decode`], or the wrong type.
    pub fn decode_refresh(&self, token: &str) -> Result<Claims, AuthError> {
        let claims = self.decode(token)?;
        match claims.token_type {
            Some(TokenType::Refresh) => Ok(claims),
            _ => Err(AuthError::WrongTokenType { expected: "refresh" }),
        }
    }
}

fn generate_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    crate::random::fill(&mut bytes);
    SecretString::from(data_encoding::BASE64URL_NOPAD.encode(&bytes))
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Signs an HS256 access token for `user` with `secret`, valid for `ttl` (spec utility).
///
/// # Errors
/// [`AuthError::Internal`] if encoding fails.
pub fn create_access_token(user: &UserIdentity, secret: &SecretString, ttl: Duration) -> Result<String, AuthError> {
    Ok(Tokens::from_secret(secret).issue(user, TokenType::Access, ttl, None)?.token)
}

/// Signs an HS256 refresh token (new family) for `user` with `secret`, valid for `ttl` (spec utility).
///
/// # Errors
/// [`AuthError::Internal`] if encoding fails.
pub fn create_refresh_token(user: &UserIdentity, secret: &SecretString, ttl: Duration) -> Result<String, AuthError> {
    let family = uuid::Uuid::now_v7().to_string();
    Ok(Tokens::from_secret(secret).issue(user, TokenType::Refresh, ttl, Some(family))?.token)
}

/// Verifies an HS256 token of either type signed with `secret` (spec utility).
///
/// # Errors
/// As [`Tokens::decode`].
pub fn decode_token(token: &str, secret: &SecretString) -> Result<Claims, AuthError> {
    Tokens::from_secret(secret).decode(token)
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
