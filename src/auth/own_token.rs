//! The kernel's own HS256 tokens, verified without `jsonwebtoken`'s general path.
//!
//! `jsonwebtoken` derives the HMAC key from the secret on every verification (two
//! SHA-256 blocks), parses the header's JSON and deserializes the claims twice: about
//! a third of what an authenticated request costs. A token whose header segment is
//! byte for byte the one this kernel writes names HS256 by construction; its
//! signature is checked here in constant time (`ring::hmac::verify`) with the key
//! prepared once, its claims are deserialized once and validated here with the rules
//! `jsonwebtoken` applies (a test holds the two paths to the same answer). Any other
//! header (another algorithm, `none`, the same JSON with its keys in another order)
//! is not handled here and goes through `jsonwebtoken`'s full verification with the
//! pinned algorithm.

use data_encoding::BASE64URL_NOPAD as URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};

use super::claims::Claims;
use super::AuthError;

/// What [`OwnTokens::check`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Check<'t> {
    /// The kernel's own header and a valid signature over this claims segment.
    Signed(&'t str),
    /// The kernel's own header and a wrong or malformed signature.
    Forged,
    /// Not the kernel's header: verify the whole token the general way.
    Foreign,
}

/// The prepared key, the header segment the kernel writes, and the claim rules.
pub(super) struct OwnTokens {
    key: ring::hmac::Key,
    header: String,
    leeway: u64,
    issuer: Option<String>,
    audience: Option<String>,
}

impl OwnTokens {
    /// For HS256 tokens signed with `secret` under `header`; `issuer` and `audience`
    /// are required and matched when set, as the general path's validation does.
    pub(super) fn new(
        secret: &[u8],
        header: &Header,
        leeway: u64,
        issuer: Option<String>,
        audience: Option<String>,
    ) -> Option<Self> {
        let sample =
            jsonwebtoken::encode(header, &serde_json::json!({}), &EncodingKey::from_secret(secret).ok()?).ok()?;
        let header = sample.split('.').next()?.to_owned();
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        Some(Self { key, header, leeway, issuer, audience })
    }

    /// Checks the signature of `token` if it carries the kernel's own header. The
    /// segments are split as `jsonwebtoken` splits them (at the last two dots).
    pub(super) fn check<'t>(&self, token: &'t str) -> Check<'t> {
        let Some((message, signature)) = token.rsplit_once('.') else { return Check::Foreign };
        let Some((header, claims)) = message.rsplit_once('.') else { return Check::Foreign };
        if header != self.header {
            return Check::Foreign;
        }
        let Ok(signature) = URL_SAFE_NO_PAD.decode(signature.as_bytes()) else { return Check::Forged };
        match ring::hmac::verify(&self.key, message.as_bytes(), &signature) {
            Ok(()) => Check::Signed(claims),
            Err(_) => Check::Forged,
        }
    }

    /// The claims of a [`Check::Signed`] segment, validated at `now` (seconds since
    /// the epoch) as `jsonwebtoken` validates them: the required claims first (`exp`
    /// and `sub` by type, `iss`/`aud` when configured), then `exp` and `nbf` with the
    /// leeway, then issuer and audience (an audience in a token when none is
    /// configured is refused).
    pub(super) fn claims(&self, segment: &str, now: u64) -> Result<Claims, AuthError> {
        let json = URL_SAFE_NO_PAD.decode(segment.as_bytes()).map_err(|_| AuthError::InvalidToken)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| AuthError::InvalidToken)?;
        if (self.issuer.is_some() && claims.iss.is_none()) || (self.audience.is_some() && claims.aud.is_empty()) {
            return Err(AuthError::InvalidToken);
        }
        if claims.exp < now.saturating_sub(self.leeway) {
            return Err(AuthError::TokenExpired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + self.leeway) {
            return Err(AuthError::TokenNotYetValid);
        }
        if self.issuer.as_ref().is_some_and(|iss| claims.iss.as_ref() != Some(iss)) {
            return Err(AuthError::InvalidToken);
        }
        let audience_ok = match &self.audience {
            Some(aud) => claims.aud.contains(aud),
            None => claims.aud.is_empty(),
        };
        if !audience_ok {
            return Err(AuthError::InvalidToken);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::json;

    use super::{Check, OwnTokens};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn prepared() -> OwnTokens {
        OwnTokens::new(SECRET, &Header::new(Algorithm::HS256), 5, None, None).unwrap()
    }

    fn token(header: &Header, secret: &[u8]) -> String {
        jsonwebtoken::encode(
            header,
            &json!({"sub": "1", "exp": 4_000_000_000u64}),
            &EncodingKey::from_secret(secret).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn the_kernels_own_tokens_are_checked_here_and_forgeries_refused() {
        let p = prepared();
        let good = token(&Header::new(Algorithm::HS256), SECRET);
        assert!(matches!(p.check(&good), Check::Signed(_)));
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
