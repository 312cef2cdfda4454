//! [`Claims`]: what a kernel JWT says, and [`TokenType`]: access or refresh.
//!
//! Access and refresh tokens share one claim set and are told apart by `type`,
//! which every verification checks, so a refresh token is never accepted where an
//! access token is required and the reverse. Refresh tokens also carry `fam`, the
//! id of their rotation family (one login), so that reuse of a rotated-out refresh
//! token can revoke the whole family.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::identity::{UserIdentity, USER_ROLE};

/// Which kind of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// Short-lived; sent as `Authorization: Bearer` on every request.
    Access,
    /// Long-lived; only exchanged at the refresh route for a new pair.
    Refresh,
}

impl TokenType {
    /// `access` or `refresh`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }
}

/// The claims of a kernel token. Times are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The login name (kernel tokens always carry it; external ones may not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The user's email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's role (`user` when an external token has none).
    #[serde(default = "default_role")]
    pub role: String,
    /// `access` or `refresh`. Required of kernel tokens; an external token without
    /// one counts as an access token.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<TokenType>,
    /// Issued at.
    #[serde(default)]
    pub iat: u64,
    /// Expires at (required).
    pub exp: u64,
    /// Not valid before. When present it is a number: `null` is refused, as
    /// `jsonwebtoken` (since 10.3) refuses a malformed `nbf`.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "de_nbf")]
    pub nbf: Option<u64>,
    /// Unique token id (UUID v7): the handle for revocation.
    #[serde(default)]
    pub jti: String,
    /// Refresh family id (UUID v7), on refresh tokens only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<String>,
    /// The user's token version when the token was issued (kernel access tokens).
    /// The user store refuses a token whose version is not the user's current one:
    /// a password change, logout, deactivation or role change moves it on. Absent
    /// counts as 0 (tokens issued before versions existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver: Option<u64>,
    /// Issuer, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience(s), when configured; a single one is written as a string. An empty
    /// list is refused (it names no recipient).
    #[serde(default, skip_serializing_if = "Vec::is_empty", serialize_with = "ser_aud", deserialize_with = "de_aud")]
    pub aud: Vec<String>,
}

fn default_role() -> String {
    USER_ROLE.to_owned()
}

impl Claims {
    /// The identity these claims describe (the username falls back to `sub`).
    pub fn identity(&self) -> UserIdentity {
        UserIdentity {
            id: self.sub.clone(),
            username: self.username.clone().unwrap_or_else(|| self.sub.clone()),
            email: self.email.clone(),
            role: self.role.clone(),
        }
    }
}

fn ser_aud<S: Serializer>(aud: &[String], s: S) -> Result<S::Ok, S::Error> {
    match aud {
        [one] => s.serialize_str(one),
        many => many.serialize(s),
    }
}

fn de_nbf<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    u64::deserialize(d).map(Some)
}

fn de_aud<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    match OneOrMany::deserialize(d)? {
        OneOrMany::One(one) => Ok(vec![one]),
        // Names no recipient; refused, so that "present" and "non-empty" are one thing.
        OneOrMany::Many(many) if many.is_empty() => Err(serde::de::Error::custom("an empty aud names no recipient")),
        OneOrMany::Many(many) => Ok(many),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_minimal_claims_get_defaults() {
        let claims: Claims = serde_json::from_str(r#"{"sub":"u1","exp":10,"aud":["a","b"]}"#).unwrap();
        assert_eq!((claims.role.as_str(), claims.token_type, claims.aud.len()), ("user", None, 2));
        assert_eq!(claims.identity().username, "u1");
        assert!(serde_json::from_str::<Claims>(r#"{"sub":"u1","exp":10,"aud":[]}"#).is_err());
    }

    #[test]
    fn one_audience_is_a_string_and_type_is_lowercase() {
        let claims = Claims {
            sub: "u1".into(),
            username: Some("ann".into()),
            email: None,
            role: "admin".into(),
            token_type: Some(TokenType::Refresh),
            iat: 1,
            exp: 2,
            nbf: None,
            jti: "j".into(),
            fam: Some("f".into()),
            ver: Some(3),
            iss: None,
            aud: vec!["api".into()],
        };
        let json = serde_json::to_value(&claims).unwrap();
        assert_eq!((json["aud"].as_str(), json["type"].as_str()), (Some("api"), Some("refresh")));
        assert_eq!(serde_json::from_value::<Claims>(json).unwrap(), claims);
    }
}
