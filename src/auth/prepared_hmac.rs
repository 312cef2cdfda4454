//! The signature check of the kernel's own HS256 tokens, with the HMAC key
//! prepared once.
//!
//! `jsonwebtoken` derives the HMAC key from the secret on every verification: two
//! SHA-256 blocks, about 5,000 instructions, on every authenticated request. A
//! token whose header segment is byte for byte the one this kernel writes names
//! HS256 by construction; its signature is checked here, in constant time
//! (`ring::hmac::verify`) with the prepared key, and `jsonwebtoken` then checks
//! only the claims. Any other header (another algorithm, `none`, the same JSON with
//! its keys in another order) is not handled here and goes through `jsonwebtoken`'s
//! full verification with the pinned algorithm.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{EncodingKey, Header, Validation};

/// What [`PreparedHmac::check`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Check {
    /// The kernel's own header and a valid signature: the claims remain to check.
    Signed,
    /// The kernel's own header and a wrong or malformed signature.
    Forged,
    /// Not the kernel's header: verify the whole token the general way.
    Foreign,
}

/// The prepared key, the header segment the kernel writes and the claim-only
/// validation used after [`Check::Signed`].
pub(super) struct PreparedHmac {
    key: ring::hmac::Key,
    header: String,
    claims_only: Validation,
}

impl PreparedHmac {
    /// For HS256 tokens signed with `secret` under `header`; `validation` is the
    /// full one, kept for the claims.
    pub(super) fn new(secret: &[u8], header: &Header, validation: &Validation) -> Option<Self> {
        let sample = jsonwebtoken::encode(header, &serde_json::json!({}), &EncodingKey::from_secret(secret)).ok()?;
        let header = sample.split('.').next()?.to_owned();
        let mut claims_only = validation.clone();
        claims_only.insecure_disable_signature_validation();
        Some(Self { key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret), header, claims_only })
    }

    /// Checks the signature of `token` if it carries the kernel's own header. The
    /// segments are split as `jsonwebtoken` splits them (at the last two dots), so
    /// the claims it reads next are the ones signed here.
    pub(super) fn check(&self, token: &str) -> Check {
        let Some((message, signature)) = token.rsplit_once('.') else { return Check::Foreign };
        let Some((header, _claims)) = message.rsplit_once('.') else { return Check::Foreign };
        if header != self.header {
            return Check::Foreign;
        }
        let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else { return Check::Forged };
        match ring::hmac::verify(&self.key, message.as_bytes(), &signature) {
            Ok(()) => Check::Signed,
            Err(_) => Check::Forged,
        }
    }

    /// The validation to decode a [`Check::Signed`] token with: claims only.
    pub(super) fn claims_only(&self) -> &Validation {
        &self.claims_only
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use jsonwebtoken::{Algorithm, EncodingKey, Header, Validation};
    use serde_json::json;

    use super::{Check, PreparedHmac};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn prepared() -> PreparedHmac {
        PreparedHmac::new(SECRET, &Header::new(Algorithm::HS256), &Validation::new(Algorithm::HS256)).unwrap()
    }

    fn token(header: &Header, secret: &[u8]) -> String {
        jsonwebtoken::encode(header, &json!({"sub": "1", "exp": 4_000_000_000u64}), &EncodingKey::from_secret(secret))
            .unwrap()
    }

    #[test]
    fn the_kernels_own_tokens_are_checked_here_and_forgeries_refused() {
        let p = prepared();
        let good = token(&Header::new(Algorithm::HS256), SECRET);
        assert_eq!(p.check(&good), Check::Signed);
        assert_eq!(p.check(&token(&Header::new(Algorithm::HS256), b"another secret")), Check::Forged);
        let (message, _) = good.rsplit_once('.').unwrap();
        assert_eq!(p.check(&format!("{message}.not base64!")), Check::Forged);
        assert_eq!(p.check(&format!("{message}.")), Check::Forged);
        // The signed claims swapped for others under the same header and signature.
        let (head, rest) = good.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let other = super::URL_SAFE_NO_PAD.encode(br#"{"sub":"2","exp":4000000000}"#);
        assert_eq!(p.check(&format!("{head}.{other}.{signature}")), Check::Forged);
    }

    #[test]
    fn any_other_header_is_left_to_the_full_verification() {
        let p = prepared();
        assert_eq!(p.check(&token(&Header::new(Algorithm::HS512), SECRET)), Check::Foreign);
        let none = super::URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert_eq!(p.check(&format!("{none}.e30.")), Check::Foreign);
        assert_eq!(p.check("no dots"), Check::Foreign);
        assert_eq!(p.check("one.dot"), Check::Foreign);
        // Extra segments: the header is everything before the last two dots, as jsonwebtoken reads it.
        let good = token(&Header::new(Algorithm::HS256), SECRET);
        assert_eq!(p.check(&format!("x.{good}")), Check::Foreign);
    }
}
