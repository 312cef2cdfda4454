//! The token abuse suite: every forged, altered, expired, premature or misused
//! token is refused with the right error, and through an axum router with
//! `CurrentUser` it is a 401 problem+json with `WWW-Authenticate: Bearer`.

use std::time::{SystemTime, UNIX_EPOCH};

use app_kernel::auth::{
    AdminUser, Auth, AuthError, AuthMode, AuthSettings, Claims, CurrentUser, JwtAlgorithm, TokenType, Tokens,
    UserIdentity,
};
use axum::body::Body;
use axum::routing::get;
use axum::Router;
use data_encoding::BASE64URL_NOPAD as URL_SAFE_NO_PAD;
use http::{header, Request, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;
use tower::ServiceExt as _;

const SECRET: &str = "abuse-suite-secret-0123456789abcdef!";
const RSA_PUBLIC: &str = include_str!("fixtures/test_rsa_public.pem");
const RSA_PRIVATE: &str = include_str!("fixtures/test_rsa_private.pem");

fn settings() -> AuthSettings {
    let mut settings = AuthSettings::default();
    settings.token_secret = Some(SecretString::from(SECRET));
    settings
}

fn auth() -> Auth {
    Auth::new(&settings(), AuthMode::Local).unwrap()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn user() -> UserIdentity {
    UserIdentity::new("u1", "ann").with_email("ann@example.com")
}

fn access_claims(tokens: &Tokens) -> Claims {
    tokens.issue_access(&user()).unwrap().claims
}

fn b64(json: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(&serde_json::to_vec(json).unwrap())
}

/// Replaces one character in the middle of `part` (0 header, 1 payload, 2 signature).
fn flip(token: &str, part: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let p = &mut parts[part];
    let mid = p.len() / 2;
    let c = if &p[mid..=mid] == "A" { "B" } else { "A" };
    p.replace_range(mid..=mid, c);
    parts.join(".")
}

/// Every abusive token, with the error it must get from `decode_access`.
fn abusive_tokens() -> Vec<(&'static str, String, AuthError)> {
    let auth = auth();
    let tokens = auth.tokens();
    let valid = tokens.issue_access(&user()).unwrap().token;
    let claims = access_claims(tokens);
    let claims_json = serde_json::to_value(&claims).unwrap();
    let (_, payload_and_sig) = valid.split_once('.').unwrap();
    let (payload, _) = payload_and_sig.split_once('.').unwrap();

    let alg_none = format!("{}.{payload}.", b64(&serde_json::json!({"alg": "none", "typ": "JWT"})));
    let alg_none_upper = format!("{}.{payload}.", b64(&serde_json::json!({"alg": "None", "typ": "JWT"})));
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    let rsa_key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let rs256 = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &rsa_key).unwrap();
    let other_secret = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(b"another secret").unwrap(),
    )
    .unwrap();
    let mut admin = claims_json.clone();
    admin["role"] = "admin".into();
    let (header_part, rest) = valid.split_once('.').unwrap();
    let signature = rest.split_once('.').unwrap().1;
    let tampered = format!("{header_part}.{}.{signature}", b64(&admin));
    let truncated = valid[..valid.len() - 6].to_owned();
    let no_signature = format!("{header_part}.{payload}.");

    let mut expired = claims.clone();
    (expired.iat, expired.exp) = (now() - 3600, now() - 60);
    let mut premature = claims.clone();
    premature.nbf = Some(now() + 120);
    let mut untyped = claims.clone();
    untyped.token_type = None;
    let mut no_exp = claims_json.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let no_exp = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &no_exp,
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    let refresh = tokens.issue_refresh(&user(), None).unwrap().token;

    vec![
        ("alg none", alg_none, AuthError::InvalidToken),
        ("alg None", alg_none_upper, AuthError::InvalidToken),
        ("HS512 with the right secret", hs512, AuthError::InvalidToken),
        ("RS256 token to an HS256 verifier", rs256, AuthError::InvalidToken),
        ("signed with another secret", other_secret, AuthError::InvalidToken),
        ("bad signature", flip(&valid, 2), AuthError::InvalidToken),
        ("truncated signature", truncated, AuthError::InvalidToken),
        ("empty signature", no_signature, AuthError::InvalidToken),
        ("tampered payload (role admin)", tampered, AuthError::InvalidToken),
        ("tampered payload byte", flip(&valid, 1), AuthError::InvalidToken),
        ("tampered header byte", flip(&valid, 0), AuthError::InvalidToken),
        ("expired", tokens.sign(&expired).unwrap(), AuthError::TokenExpired),
        ("not yet valid", tokens.sign(&premature).unwrap(), AuthError::TokenNotYetValid),
        ("no type", tokens.sign(&untyped).unwrap(), AuthError::InvalidToken),
        ("no exp", no_exp, AuthError::InvalidToken),
        ("refresh used as access", refresh, AuthError::WrongTokenType { expected: "access" }),
        ("two parts", format!("{header_part}.{payload}"), AuthError::InvalidToken),
        ("garbage", "not-a-jwt".to_owned(), AuthError::InvalidToken),
        ("oversized", "a".repeat(20_000), AuthError::InvalidToken),
    ]
}

#[test]
fn every_abusive_token_is_refused_with_the_right_error() {
    let auth = auth();
    for (name, token, expected) in abusive_tokens() {
        assert_eq!(auth.tokens().decode_access(&token).err(), Some(expected), "{name}");
    }
}

/// A token as the Python kernel (PyJWT) writes it: the same claims and algorithm,
/// the header's keys in another order. Signed with `secret` over its own segments.
fn pyjwt_style(claims: &Claims, secret: &[u8]) -> String {
    let head = b64(&serde_json::json!({"alg": "HS256", "typ": "JWT"}));
    let body = URL_SAFE_NO_PAD.encode(&serde_json::to_vec(claims).unwrap());
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, format!("{head}.{body}").as_bytes());
    format!("{head}.{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

#[test]
fn a_token_with_another_header_encoding_is_verified_in_full() {
    let auth = auth();
    let claims = access_claims(auth.tokens());
    let token = pyjwt_style(&claims, SECRET.as_bytes());
    assert_eq!(auth.tokens().decode_access(&token).unwrap().identity(), user());
    assert_eq!(auth.tokens().decode_access(&pyjwt_style(&claims, b"wrong secret")), Err(AuthError::InvalidToken));
    let mut expired = claims;
    expired.exp = now() - 60;
    assert_eq!(auth.tokens().decode_access(&pyjwt_style(&expired, SECRET.as_bytes())), Err(AuthError::TokenExpired));
}

#[test]
fn an_access_token_is_not_a_refresh_token() {
    let auth = auth();
    let pair = auth.tokens().issue_pair(&user(), None).unwrap();
    assert_eq!(
        auth.tokens().decode_refresh(&pair.access.token),
        Err(AuthError::WrongTokenType { expected: "refresh" })
    );
    let refresh = auth.tokens().decode_refresh(&pair.refresh.token).unwrap();
    assert_eq!(refresh.token_type, Some(TokenType::Refresh));
    assert_eq!(auth.tokens().decode_access(&pair.access.token).unwrap().identity(), user());
}

#[test]
fn leeway_is_a_few_seconds_only() {
    let auth = auth();
    let tokens = auth.tokens();
    let mut claims = access_claims(tokens);
    claims.exp = now() - 2;
    assert!(tokens.decode_access(&tokens.sign(&claims).unwrap()).is_ok(), "within the 5 s leeway");
    claims.exp = now() - 10;
    assert_eq!(tokens.decode_access(&tokens.sign(&claims).unwrap()), Err(AuthError::TokenExpired));
}

#[test]
fn rs256_external_mode_refuses_key_confusion() {
    let mut settings = AuthSettings::default();
    settings.algorithm = JwtAlgorithm::RS256;
    settings.public_key = Some(RSA_PUBLIC.to_owned());
    let external = Tokens::new(&settings, AuthMode::External).unwrap();
    let claims = access_claims(&Tokens::from_secret(&SecretString::from(SECRET)));
    let genuine = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(external.decode_access(&genuine).unwrap().sub, "u1");
    // The classic confusion: HS256 "signed" with the public key as the HMAC secret.
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(external.decode_access(&confused), Err(AuthError::InvalidToken));
    assert_eq!(
        external.issue_access(&user()).err(),
        Some(AuthError::SigningUnavailable("only a public key is configured"))
    );
}

fn app(auth: Auth) -> Router {
    Router::new()
        .route("/me", get(|user: CurrentUser| async move { user.id.clone() }))
        .route("/admin", get(|admin: AdminUser| async move { admin.id.clone() }))
        .with_state(auth)
}

async fn get_with(app: &Router, path: &str, token: &str) -> (StatusCode, http::HeaderMap, serde_json::Value) {
    let request =
        Request::get(path).header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
    (status, headers, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn abusive_tokens_are_401_problem_json_with_www_authenticate() {
    let app = app(auth());
    for (name, token, expected) in abusive_tokens() {
        let (status, headers, body) = get_with(&app, "/me", &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer", "{name}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json", "{name}");
        assert_eq!(body["status"], 401, "{name}");
        assert_eq!(body["code"], expected.code(), "{name}");
        assert!(body["detail"].is_string(), "{name}");
    }
}

#[tokio::test]
async fn a_valid_token_passes_and_admin_needs_the_role() {
    let auth = auth();
    let user_token = auth.tokens().issue_access(&user()).unwrap().token;
    let admin_token = auth.tokens().issue_access(&user().with_role("admin")).unwrap().token;
    let app = app(auth);
    assert_eq!(get_with(&app, "/me", &user_token).await.0, StatusCode::OK);
    let (status, headers, body) = get_with(&app, "/admin", &user_token).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("not_admin")));
    assert!(headers.get(header::WWW_AUTHENTICATE).is_none());
    assert_eq!(get_with(&app, "/admin", &admin_token).await.0, StatusCode::OK);
}

/// The kernel's own tokens are validated by the kernel (`auth/own_token.rs`), any
/// other by jsonwebtoken: over a matrix of claims, signed under the kernel's header,
/// the kernel's answer is jsonwebtoken's, with and without an issuer and audience.
#[test]
fn own_token_validation_answers_as_jsonwebtoken_does() {
    use jsonwebtoken::errors::ErrorKind;
    use jsonwebtoken::Validation;
    use serde_json::{json, Map, Value};

    let t = now();
    let exps = [json!(t + 60), json!(t - 2), json!(t - 60), Value::Null, json!(1.5), json!("soon")];
    let nbfs = [None, Some(json!(t + 2)), Some(json!(t + 60)), Some(Value::Null)];
    let isss = [None, Some(json!("kernel")), Some(json!("other")), Some(json!(["kernel"]))];
    let auds =
        [None, Some(json!("api")), Some(json!(["x", "api"])), Some(json!(["x"])), Some(json!([])), Some(json!(7))];
    for configured in [false, true] {
        let mut settings = settings();
        if configured {
            settings.issuer = Some("kernel".into());
            settings.audience = Some("api".into());
        }
        let tokens = Tokens::new(&settings, AuthMode::Local).unwrap();
        let mut reference = Validation::new(Algorithm::HS256);
        reference.leeway = app_kernel::auth::CLOCK_LEEWAY_SECS;
        reference.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if configured {
            reference.set_issuer(&["kernel"]);
            reference.set_audience(&["api"]);
            required.extend(["iss", "aud"]);
        }
        reference.set_required_spec_claims(&required);
        let mut cases = 0;
        for exp in &exps {
            for nbf in &nbfs {
                for iss in &isss {
                    for aud in &auds {
                        let mut claims = Map::new();
                        claims.insert("sub".into(), json!("u1"));
                        claims.insert("type".into(), json!("access"));
                        claims.insert("exp".into(), exp.clone());
                        for (name, value) in [("nbf", nbf), ("iss", iss), ("aud", aud)] {
                            if let Some(v) = value {
                                claims.insert(name.into(), v.clone());
                            }
                        }
                        let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
                        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
                        let key = jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()).unwrap();
                        let expected = match jsonwebtoken::decode::<Claims>(&token, &key, &reference) {
                            Ok(data) => Ok(data.claims),
                            Err(e) => Err(match e.kind() {
                                ErrorKind::ExpiredSignature => AuthError::TokenExpired,
                                ErrorKind::ImmatureSignature => AuthError::TokenNotYetValid,
                                _ => AuthError::InvalidToken,
                            }),
                        };
                        assert_eq!(tokens.decode(&token), expected, "configured={configured} claims={claims:?}");
                        cases += 1;
                    }
                }
            }
        }
        assert_eq!(cases, 576);
    }
}

/// In external mode a token's `role` claim is the issuer's word only when the service
/// says so: a token signed with a shared secret could otherwise name itself admin.
#[tokio::test]
async fn an_external_tokens_role_counts_only_when_trusted() {
    let claims = serde_json::json!({"sub": "ext-1", "exp": now() + 60, "role": "admin"});
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    for (trust, admin_status) in [(false, StatusCode::FORBIDDEN), (true, StatusCode::OK)] {
        let mut s = settings();
        s.trust_role_claim = trust;
        let app = app(Auth::new(&s, AuthMode::External).unwrap());
        assert_eq!(get_with(&app, "/me", &token).await.0, StatusCode::OK, "trust {trust}");
        assert_eq!(get_with(&app, "/admin", &token).await.0, admin_status, "trust {trust}");
    }
}

/// External mode as an operator configures it, from the environment: tokens of the
/// issuer named by `JWT_ISSUER`, for the audience named by `JWT_AUDIENCE`, signed with
/// the key of `JWT_PUBLIC_KEY`, are accepted; the same key's tokens with another or no
/// `iss` or `aud` (meant for another service) are 401.
#[tokio::test]
async fn external_mode_refuses_tokens_of_another_issuer_or_audience() {
    let env = std::collections::HashMap::from([
        ("KERNEL_AUTH_MODE", "external"),
        ("JWT_ALGORITHM", "RS256"),
        ("JWT_PUBLIC_KEY", RSA_PUBLIC),
        ("JWT_ISSUER", "https://id.example.com/"),
        ("JWT_AUDIENCE", "widgets"),
    ]);
    let config = app_kernel::ServiceConfig::from_lookup("", |k| env.get(k).map(|v| (*v).to_owned())).unwrap();
    let settings = config.into_settings("svc").unwrap();
    let app = app(Auth::new(&settings.auth, settings.features.auth_mode).unwrap());
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let token = |iss: Option<&str>, aud: Option<&str>| {
        let mut claims = serde_json::json!({"sub": "ext-1", "exp": now() + 60});
        if let Some(iss) = iss {
            claims["iss"] = iss.into();
        }
        if let Some(aud) = aud {
            claims["aud"] = aud.into();
        }
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
    };
    let right = token(Some("https://id.example.com/"), Some("widgets"));
    assert_eq!(get_with(&app, "/me", &right).await.0, StatusCode::OK, "the configured issuer and audience");
    let refused = [
        ("another issuer", token(Some("https://evil.example.com/"), Some("widgets"))),
        ("no issuer", token(None, Some("widgets"))),
        ("another audience", token(Some("https://id.example.com/"), Some("billing"))),
        ("no audience", token(Some("https://id.example.com/"), None)),
    ];
    for (name, token) in refused {
        let (status, _, body) = get_with(&app, "/me", &token).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_token")), "{name}");
    }
}
