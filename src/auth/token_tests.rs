//! Unit tests of `token.rs`: the spec utilities, secrets, rotation, issuer and
//! audience, external mode.

use super::*;

fn secret() -> SecretString {
    SecretString::from("0123456789abcdef0123456789abcdef")
}

#[test]
fn spec_utilities_round_trip() {
    let user = UserIdentity::new("42", "ann").with_email("ann@example.com").with_role("admin");
    let access = create_access_token(&user, &secret(), Duration::from_secs(60)).unwrap();
    let claims = decode_token(&access, &secret()).unwrap();
    assert_eq!(claims.identity(), user);
    assert_eq!((claims.token_type, claims.exp - claims.iat, claims.fam), (Some(TokenType::Access), 60, None));
    let refresh = create_refresh_token(&user, &secret(), Duration::from_secs(60)).unwrap();
    let claims = decode_token(&refresh, &secret()).unwrap();
    assert_eq!(claims.token_type, Some(TokenType::Refresh));
    assert!(claims.fam.is_some());
    assert_eq!(uuid::Uuid::parse_str(&claims.jti).unwrap().get_version_num(), 7);
}

#[test]
fn a_missing_secret_is_generated_and_differs_per_instance() {
    let a = Tokens::new(&AuthSettings::default(), AuthMode::Local).unwrap();
    let b = Tokens::new(&AuthSettings::default(), AuthMode::Local).unwrap();
    assert!(a.secret_was_generated());
    let token = a.issue_access(&UserIdentity::new("1", "x")).unwrap().token;
    assert_eq!(b.decode(&token), Err(AuthError::InvalidToken));
    assert!(!Tokens::from_secret(&secret()).secret_was_generated());
}

#[test]
fn an_empty_secret_is_no_key() {
    let settings = AuthSettings { token_secret: Some(SecretString::from("")), ..AuthSettings::default() };
    assert!(matches!(Tokens::new(&settings, AuthMode::Local), Err(AuthError::Config(_))));
    let empty = Tokens::from_secret(&SecretString::from(""));
    assert!(matches!(empty.issue_access(&UserIdentity::new("1", "x")), Err(AuthError::SigningUnavailable(_))));
    let token = Tokens::from_secret(&secret()).issue_access(&UserIdentity::new("1", "x")).unwrap().token;
    assert_eq!(empty.decode(&token), Err(AuthError::InvalidToken));
}

#[test]
fn rotation_keeps_the_family_and_pair_reports_expiry() {
    let tokens = Tokens::from_secret(&secret());
    let user = UserIdentity::new("1", "x");
    let pair = tokens.issue_pair(&user, None).unwrap();
    let fam = pair.refresh.claims.fam.clone().unwrap();
    let next = tokens.issue_refresh(&user, Some(&fam)).unwrap();
    assert_eq!(next.claims.fam.as_deref(), Some(fam.as_str()));
    assert_ne!(next.claims.jti, pair.refresh.claims.jti);
    let body = pair.response();
    assert_eq!((body.token_type, body.expires_in), ("bearer", 15 * 60));
}

#[test]
fn issuer_and_audience_are_written_and_required() {
    let settings = AuthSettings {
        token_secret: Some(secret()),
        issuer: Some("kernel".into()),
        audience: Some("api".into()),
        ..AuthSettings::default()
    };
    let tokens = Tokens::new(&settings, AuthMode::Local).unwrap();
    let issued = tokens.issue_access(&UserIdentity::new("1", "x")).unwrap();
    assert_eq!(tokens.decode_access(&issued.token).unwrap().aud, vec!["api".to_owned()]);
    let plain = Tokens::from_secret(&secret()).issue_access(&UserIdentity::new("1", "x")).unwrap();
    assert_eq!(tokens.decode(&plain.token), Err(AuthError::InvalidToken));
    let mut other = issued.claims.clone();
    other.aud = vec!["elsewhere".into()];
    assert_eq!(tokens.decode(&tokens.sign(&other).unwrap()), Err(AuthError::InvalidToken));
}

#[test]
fn external_mode_verifies_only_and_accepts_untyped_tokens() {
    let settings =
        AuthSettings { algorithm: JwtAlgorithm::RS256, public_key: Some("not pem".into()), ..AuthSettings::default() };
    assert!(matches!(Tokens::new(&settings, AuthMode::External), Err(AuthError::Config(_))));
    let settings = AuthSettings { algorithm: JwtAlgorithm::ES256, ..AuthSettings::default() };
    assert!(matches!(Tokens::new(&settings, AuthMode::External), Err(AuthError::Config(_))));

    let settings = AuthSettings { token_secret: Some(secret()), ..AuthSettings::default() };
    let external = Tokens::new(&settings, AuthMode::External).unwrap();
    let mut claims = external.issue_access(&UserIdentity::new("1", "x")).unwrap().claims;
    claims.token_type = None;
    let untyped = external.sign(&claims).unwrap();
    assert!(external.decode_access(&untyped).is_ok());
    assert_eq!(Tokens::from_secret(&secret()).decode_access(&untyped), Err(AuthError::InvalidToken));
}
