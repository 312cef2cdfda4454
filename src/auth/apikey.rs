//! API keys for [`AuthMode::ApiKey`](super::AuthMode): `ak_` + 32 random bytes in
//! base64url, sent as `X-API-Key`.
//!
//! Only the SHA-256 of a key is ever stored ([`ApiKeyHash`]); the key itself is
//! shown once, at creation. A fast hash is right here (unlike passwords): a key
//! has 256 bits of entropy, so there is nothing to brute-force. Stores look a key
//! up by its hash and confirm with [`ApiKeyHash::matches`], a constant-time
//! comparison.
//!
//! ```
//! use app_kernel::auth::{ApiKey, ApiKeyHash};
//! let (key, hash) = ApiKey::generate();
//! let presented = ApiKey::parse(key.expose()).unwrap();
//! assert!(hash.matches(&presented));
//! assert!(ApiKey::parse("ak_short").is_err());
//! ```

use data_encoding::BASE64URL_NOPAD as URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AuthError;

/// Every key starts with this.
pub const API_KEY_PREFIX: &str = "ak_";
/// The request header that carries a key.
pub const API_KEY_HEADER: &str = "x-api-key";
const KEY_BYTES: usize = 32;
const ENCODED_LEN: usize = 43;

/// A well-formed API key (generated, or presented by a caller). Never printed.
#[derive(Debug, Clone)]
pub struct ApiKey(SecretString);

/// The SHA-256 of an API key, as stored: 64 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiKeyHash(String);

impl ApiKey {
    /// A new random key and the hash to store. Show the key to its owner once.
    pub fn generate() -> (Self, ApiKeyHash) {
        let mut bytes = [0u8; KEY_BYTES];
        crate::random::fill(&mut bytes);
        let key = Self(SecretString::from(format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(&bytes))));
        let hash = key.hash();
        (key, hash)
    }

    /// Checks the shape of a presented key (`ak_` + 43 base64url characters that
    /// decode to 32 bytes).
    ///
    /// # Errors
    /// [`AuthError::InvalidApiKey`] for anything else.
    pub fn parse(raw: &str) -> Result<Self, AuthError> {
        let body = raw.strip_prefix(API_KEY_PREFIX).ok_or(AuthError::InvalidApiKey)?;
        if body.len() != ENCODED_LEN {
            return Err(AuthError::InvalidApiKey);
        }
        match URL_SAFE_NO_PAD.decode(body.as_bytes()) {
            Ok(bytes) if bytes.len() == KEY_BYTES => Ok(Self(SecretString::from(raw.to_owned()))),
            _ => Err(AuthError::InvalidApiKey),
        }
    }

    /// The key's text, to show once at creation.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// A short, non-secret label for listings: the prefix and the first 8 characters.
    pub fn display_prefix(&self) -> &str {
        &self.expose()[..API_KEY_PREFIX.len() + 8]
    }

    /// The hash to store or look up.
    pub fn hash(&self) -> ApiKeyHash {
        let digest = Sha256::digest(self.expose().as_bytes());
        ApiKeyHash(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

impl ApiKeyHash {
    /// A stored hash, as read back from storage.
    pub fn from_stored(hex: impl Into<String>) -> Self {
        Self(hex.into())
    }

    /// The hex text to store.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `key` hashes to this, compared in constant time.
    pub fn matches(&self, key: &ApiKey) -> bool {
        bool::from(key.hash().0.as_bytes().ct_eq(self.0.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_match_their_hash_only() {
        let (key, hash) = ApiKey::generate();
        assert!(key.expose().starts_with("ak_") && key.expose().len() == 3 + ENCODED_LEN);
        let presented = ApiKey::parse(key.expose()).unwrap();
        assert!(hash.matches(&presented));
        let (other, other_hash) = ApiKey::generate();
        assert!(!hash.matches(&other));
        assert_ne!(hash, other_hash);
        assert_eq!(hash.as_str().len(), 64);
        assert!(ApiKeyHash::from_stored(hash.as_str()).matches(&presented));
        assert_eq!(key.display_prefix().len(), 11);
    }

    #[test]
    fn malformed_keys_are_refused() {
        let good = ApiKey::generate().0.expose().to_owned();
        for bad in [
            "",
            "ak_",
            &good[3..],
            &good[..good.len() - 1],
            &format!("{good}A"),
            &format!("xk_{}", &good[3..]),
            &format!("ak_{}", "!".repeat(ENCODED_LEN)),
        ] {
            assert!(matches!(ApiKey::parse(bad), Err(AuthError::InvalidApiKey)), "{bad}");
        }
    }

    #[test]
    fn hash_is_sha256_hex() {
        let key = ApiKey(SecretString::from("abc".to_owned()));
        assert_eq!(key.hash().as_str(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn debug_does_not_leak() {
        let (key, _) = ApiKey::generate();
        assert!(!format!("{key:?}").contains(&key.expose()[3..]));
    }
}
