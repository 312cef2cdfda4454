//! The auth routes (docs/CONTRACT.md), mounted under `api_prefix + auth_prefix`
//! (default `/api/v1/auth`): `register`, `login`, `me`, `refresh`,
//! `change-password`, `logout` in `local` mode, and the admins' `api-keys` routes
//! in `local` and `apikey` mode.
//!
//! Login answers an unknown user and a wrong password identically, after about the
//! same work (a dummy argon2 verification), and reserves each attempt in the
//! [`LoginThrottle`](super::LoginThrottle) (per client address, and per username
//! from that address) before any password is checked.
//! Every login, registration, password change and key change is audited; no
//! password or key ever is.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request, State};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json, Router};
use http::request::Parts;
use http::{header, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::key_routes;
use super::store::{NewUser, UserStore};
use super::{
    check_dummy, check_password, Auth, AuthError, AuthMode, CurrentUser, TokenPair, UserIdentity, MAX_PASSWORD_BYTES,
    USER_ROLE,
};
use crate::api_doc::DocRoutes;
use crate::client_addr::TrustedProxies;
use crate::error::{ApiError, FieldError};
use crate::observability::names;
use utoipa::ToSchema;
use utoipa_axum::routes;

/// What the auth routes need: the store, the auth handle, who may sign up, and
/// which proxies to look behind for the client's address. Each field is sub-state.
#[derive(Clone, FromRef)]
pub(crate) struct AuthRoutes {
    store: UserStore,
    auth: Auth,
    proxies: TrustedProxies,
    #[from_ref(skip)]
    allow_self_signup: bool,
}

/// The auth routes at `{prefix}/...` (`prefix`: the API prefix and the auth
/// prefix): the account routes in `local` mode, the API-key routes in `local` and
/// `apikey` mode, none in `external` mode; their operations go into `doc`.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(
    auth: &Auth,
    proxies: TrustedProxies,
    allow_self_signup: bool,
    prefix: &str,
    doc: &mut utoipa::openapi::OpenApi,
) -> Router<S> {
    let mode = auth.mode();
    let Some(store) = auth.users().cloned() else {
        return Router::new(); // external mode: the issuer keeps the accounts
    };
    let state = AuthRoutes { store, auth: auth.clone(), proxies, allow_self_signup };
    let mut routes = DocRoutes::<AuthRoutes>::default();
    if mode == AuthMode::Local {
        routes = routes
            .documented(routes!(register))
            .documented(routes!(login))
            .documented(routes!(me))
            .documented(routes!(refresh))
            .documented(routes!(change_password))
            .documented(routes!(logout));
    }
    let routes = routes
        .documented(routes!(key_routes::create_key, key_routes::list_keys))
        .documented(routes!(key_routes::revoke_key));
    routes.mount(Router::new(), prefix, doc).with_state(state)
}

pub(super) type Store = State<UserStore>;

pub(super) fn invalid(field: &str, msg: &str, kind: &str) -> FieldError {
    FieldError { loc: vec!["body".into(), field.into()], msg: msg.into(), kind: kind.into() }
}

fn check(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

/// A plausible address: one `@`, a non-empty local part, a dotted domain, no spaces.
pub(super) fn valid_email(email: &str) -> bool {
    if email.len() > 254 || email.chars().any(char::is_whitespace) {
        return false;
    }
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && local.len() <= 64
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains("..")
        }
        None => false,
    }
}

/// The longest username or email login accepts, checked before any work.
pub(super) const MAX_LOGIN_BYTES: usize = 254;

fn password_errors(field: &str, password: &str, errors: &mut Vec<FieldError>) {
    if password.chars().count() < 8 {
        errors.push(invalid(field, "String should have at least 8 characters", "string_too_short"));
    }
    too_long(field, password, MAX_PASSWORD_BYTES, errors);
}

/// Refuses a value over `max` bytes, before it is hashed, counted or stored.
fn too_long(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) {
    if value.len() > max {
        errors.push(invalid(field, &format!("String should have at most {max} bytes"), "string_too_long"));
    }
}

/// The client's address (behind trusted proxies), when the server was started with
/// connect info.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp
where
    TrustedProxies: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(crate::client_addr::client_ip(parts, &TrustedProxies::from_ref(state))))
    }
}

#[derive(Deserialize, ToSchema)]
struct RegisterBody {
    username: String,
    #[serde(default)]
    email: Option<String>,
    password: String,
}

#[utoipa::path(post, path = "/register", tag = "auth", request_body = RegisterBody, responses(
    (status = 201, description = "the new user", body = UserIdentity), (status = 403, description = "self-signup is off"),
    (status = 409, description = "username or email taken"), (status = 422, description = "invalid fields")))]
async fn register(
    State(store): Store,
    State(state): State<AuthRoutes>,
    Json(body): Json<RegisterBody>,
) -> Result<Response, ApiError> {
    if !state.allow_self_signup {
        return Err(AuthError::SignupDisabled.into());
    }
    let mut errors = Vec::new();
    if super::username::canonical_username(&body.username).is_none() {
        errors.push(invalid("username", super::username::USERNAME_RULE, "value_error"));
    }
    let email = body.email.as_deref().filter(|e| !e.is_empty());
    if email.is_some_and(|e| !valid_email(e)) {
        errors.push(invalid("email", "value is not a valid email address", "value_error"));
    }
    password_errors("password", &body.password, &mut errors);
    check(errors)?;
    let new = NewUser { username: &body.username, email, password: &body.password, role: USER_ROLE };
    let user = store.create_user(&new).await?;
    let resource = format!("users/{}", user.id);
    store
        .audit()
        .record(Some(&user.id), names::AUDIT_REGISTER, Some(&resource), json!({"username": user.username}))
        .await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

/// The login body, as JSON or as an OAuth2 password form (extra form fields ignored).
#[derive(Deserialize, ToSchema)]
struct Credentials {
    username: String,
    password: String,
}

struct LoginBody(Credentials);

impl<S: Send + Sync> FromRequest<S> for LoginBody {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            let Form(c) = Form::<Credentials>::from_request(req, state).await.map_err(IntoResponse::into_response)?;
            Ok(Self(c))
        } else {
            let Json(c) = Json::<Credentials>::from_request(req, state).await.map_err(IntoResponse::into_response)?;
            Ok(Self(c))
        }
    }
}

#[utoipa::path(post, path = "/login", tag = "auth", request_body(content = Credentials, description = "JSON, or an OAuth2 password form"), responses(
    (status = 200, description = "token pair", body = TokenPair), (status = 401, description = "invalid credentials"),
    (status = 429, description = "too many failed logins; see Retry-After"), (status = 503, description = "password checks busy; see Retry-After")))]
async fn login(
    State(store): Store,
    State(auth): State<Auth>,
    ClientIp(ip): ClientIp,
    LoginBody(creds): LoginBody,
) -> Result<Json<TokenPair>, ApiError> {
    let result = check_login(store, auth, ip, creds).await;
    super::login_metrics::count(&result);
    result
}

async fn check_login(
    store: UserStore,
    auth: Auth,
    ip: Option<IpAddr>,
    creds: Credentials,
) -> Result<Json<TokenPair>, ApiError> {
    let mut errors = Vec::new();
    too_long("username", &creds.username, MAX_LOGIN_BYTES, &mut errors);
    too_long("password", &creds.password, MAX_PASSWORD_BYTES, &mut errors);
    check(errors)?;
    let attempt = auth.throttle().begin(ip, &creds.username).await?;
    let user = store.find_by_login(&creds.username).await?;
    let verified = match &user {
        Some(u) => check_password(&creds.password, &u.password_hash).await,
        None => check_dummy(&creds.password).await,
    };
    let verified = match verified {
        Ok(verified) => verified,
        Err(busy) => {
            // Nothing was checked: the attempt is no failure.
            auth.throttle().abandoned(attempt).await?;
            return Err(busy.into());
        }
    };
    // A deactivated account gets the wrong password's answer, whatever the password
    // (no oracle for it), after the same work.
    let user = match user {
        Some(u) if verified && u.is_active => u,
        _ => {
            // The attempt stays counted as a failure.
            drop(attempt);
            let details = json!({"username": creds.username, "ip": ip.map(|i| i.to_string())});
            store.audit().record(None, names::AUDIT_LOGIN_FAILED, None, details).await?;
            return Err(AuthError::InvalidCredentials.into());
        }
    };
    auth.throttle().succeeded(attempt).await?;
    let pair = store.issue_pair(auth.tokens(), &user, None).await?;
    let id = &user.identity.id;
    let details = json!({"ip": ip.map(|i| i.to_string())});
    store.audit().record(Some(id), names::AUDIT_LOGIN, Some(&format!("users/{id}")), details).await?;
    Ok(Json(pair.response()))
}

#[utoipa::path(get, path = "/me", tag = "auth", security(("bearer" = [])), responses(
    (status = 200, description = "the caller", body = UserIdentity), (status = 401, description = "no or bad token")))]
async fn me(user: CurrentUser) -> Json<Arc<UserIdentity>> {
    Json(user.0)
}

#[derive(Debug, Deserialize, ToSchema)]
struct RefreshBody {
    refresh_token: String,
}

#[utoipa::path(post, path = "/refresh", tag = "auth", request_body = RefreshBody, responses(
    (status = 200, description = "a new token pair", body = TokenPair), (status = 401, description = "refresh token invalid, expired or reused")))]
async fn refresh(
    State(store): Store,
    State(auth): State<Auth>,
    Json(body): Json<RefreshBody>,
) -> Result<Json<TokenPair>, ApiError> {
    let tokens = auth.tokens();
    let claims = tokens.decode_refresh(&body.refresh_token)?;
    let pair = store.rotate_refresh(tokens, &claims).await?;
    Ok(Json(pair.response()))
}

#[derive(Deserialize, ToSchema)]
struct ChangePasswordBody {
    old_password: String,
    new_password: String,
}

/// Wrong old passwords are throttled as failed logins of the user from that address.
#[utoipa::path(post, path = "/change-password", tag = "auth", security(("bearer" = [])), request_body = ChangePasswordBody, responses(
    (status = 200, description = "changed; every session ends"), (status = 400, description = "wrong current password"),
    (status = 401, description = "no or bad token"), (status = 429, description = "too many wrong passwords")))]
async fn change_password(
    State(store): Store,
    State(auth): State<Auth>,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    Json(body): Json<ChangePasswordBody>,
) -> Result<Json<Value>, ApiError> {
    let mut errors = Vec::new();
    too_long("old_password", &body.old_password, MAX_PASSWORD_BYTES, &mut errors);
    password_errors("new_password", &body.new_password, &mut errors);
    check(errors)?;
    let stored = store.get_user(&user.id).await?.ok_or(AuthError::InvalidToken)?;
    let throttle = auth.throttle();
    let attempt = throttle.begin(ip, &stored.identity.username).await?;
    match check_password(&body.old_password, &stored.password_hash).await {
        Ok(true) => throttle.succeeded(attempt).await?,
        Ok(false) => return Err(AuthError::WrongPassword.into()),
        Err(busy) => {
            throttle.abandoned(attempt).await?;
            return Err(busy.into());
        }
    }
    store.set_password(&user.id, &body.new_password).await?;
    let resource = format!("users/{}", user.id);
    store.audit().record(Some(&user.id), names::AUDIT_PASSWORD_CHANGE, Some(&resource), json!({})).await?;
    Ok(Json(json!({"message": "Password changed successfully"})))
}

/// Ends every session of the caller: their access tokens stop working and their
/// refresh tokens are revoked. A body `{"refresh_token"}` (docs/CONTRACT.md) is accepted
/// and not needed: that token is one of them.
#[utoipa::path(post, path = "/logout", tag = "auth", security(("bearer" = [])), responses(
    (status = 200, description = "every session of the caller ended"), (status = 401, description = "no or bad token")))]
async fn logout(State(store): Store, user: CurrentUser) -> Result<Json<Value>, ApiError> {
    store.end_sessions(&user.id).await?;
    Ok(Json(json!({"message": "Logged out successfully"})))
}

/// The bodies that hold passwords print without them.
mod redacted {
    use super::{ChangePasswordBody, Credentials, RegisterBody};
    use std::fmt;

    impl fmt::Debug for RegisterBody {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let email = &self.email;
            f.debug_struct("RegisterBody")
                .field("username", &self.username)
                .field("email", email)
                .finish_non_exhaustive()
        }
    }

    impl fmt::Debug for Credentials {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Credentials").field("username", &self.username).finish_non_exhaustive()
        }
    }

    impl fmt::Debug for ChangePasswordBody {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("ChangePasswordBody").finish_non_exhaustive()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_password_in_debug_output() {
        let register = RegisterBody { username: "ann".into(), email: None, password: "hunter2-secret".into() };
        let creds = Credentials { username: "ann".into(), password: "hunter2-secret".into() };
        let change =
            ChangePasswordBody { old_password: "hunter2-secret".into(), new_password: "hunter3-secret".into() };
        let new = NewUser { username: "ann", email: None, password: "hunter2-secret", role: "user" };
        let dump = format!("{register:?} {creds:?} {change:?} {new:?}");
        assert!(!dump.contains("hunter"), "{dump}");
        assert!(dump.contains("ann"), "{dump}");
    }

    #[test]
    fn email_shapes() {
        for ok in ["a@b.co", "ann.lee+x@mail.example.com"] {
            assert!(valid_email(ok), "{ok}");
        }
        for bad in ["", "ann", "@b.co", "a@b", "a@@b.co", "a b@c.de", "a@.b.co", "a@b.co.", "a@b..co"] {
            assert!(!valid_email(bad), "{bad}");
        }
    }
}
