//! The identity extractors: [`CurrentUser`], [`OptionalUser`], [`AdminUser`].
//!
//! They take the [`Auth`] handle from the router's state (any state `S` with
//! `Auth: FromRef<S>`: the kernel state of a service's routers, or `Auth` itself in
//! a plain axum app), call
//! [`Auth::authenticate`] once per request (the result is cached in the request's
//! extensions, so a handler may take several of them), and record the user id in
//! the request's log context.
//!
//! | extractor | no credentials | bad credentials | not admin |
//! |---|---|---|---|
//! | [`CurrentUser`] | 401 `not_authenticated` | 401 (`invalid_token`, `token_expired`, ...) | – |
//! | [`OptionalUser`] | `None` | 401 | – |
//! | [`AdminUser`] | 401 | 401 | 403 `not_admin` |
//!
//! With `AuthSettings.enabled = false` (debug only) all three yield
//! [`UserIdentity::anonymous_dev`], an admin.
//!
//! ```
//! use app_kernel::auth::{AdminUser, CurrentUser};
//! async fn profile(user: CurrentUser) -> String {
//!     format!("hello {}", user.username)
//! }
//! async fn admin_action(admin: AdminUser) -> String {
//!     admin.id.clone()
//! }
//! let _app: axum::Router<app_kernel::auth::Auth> = axum::Router::new()
//!     .route("/profile", axum::routing::get(profile))
//!     .route("/admin", axum::routing::post(admin_action));
//! ```

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;

use super::{Auth, AuthError, UserIdentity};
use crate::error::ApiError;

/// The authenticated caller (the spec's `get_current_user`).
///
/// It takes [`Auth`] from the router's state (the kernel state in a service, or
/// any state with `Auth: FromRef<S>`), so a route whose router has no auth does
/// not compile, rather than failing at run time:
///
/// ```compile_fail
/// use app_kernel::auth::CurrentUser;
/// use axum::routing::get;
///
/// let app: axum::Router = axum::Router::new().route("/me", get(|user: CurrentUser| async move { user.id.clone() }));
/// ```
///
/// ```
/// use app_kernel::auth::CurrentUser;
/// use app_kernel::auth::Auth;
/// use axum::routing::get;
///
/// let app: axum::Router<Auth> = axum::Router::new().route("/me", get(|user: CurrentUser| async move { user.id.clone() }));
/// ```
///
/// It derefs to [`UserIdentity`] (`user.id`, `user.is_admin()`). The identity is
/// shared with the identity cache and with the other extractors of the request, so
/// taking it costs no copy; `(*user.0).clone()` makes an owned one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentUser(pub Arc<UserIdentity>);

/// The caller if credentials were sent (`None` without any; 401 for bad ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionalUser(pub Option<Arc<UserIdentity>>);

/// An authenticated caller with the admin role (the spec's `require_admin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminUser(pub Arc<UserIdentity>);

/// What [`Auth::authenticate`] said for this request.
#[derive(Clone)]
struct Resolved(Result<Option<Arc<UserIdentity>>, AuthError>);

/// The caller of this request, asked of `auth` once per request: every later
/// extractor (and the rate limit and idempotency layers) reads the answer kept in
/// the request's extensions.
pub(crate) async fn identify<S>(parts: &mut Parts, state: &S) -> Result<Option<Arc<UserIdentity>>, ApiError>
where
    Auth: FromRef<S>,
{
    if let Some(Resolved(done)) = parts.extensions.get::<Resolved>() {
        return done.clone().map_err(ApiError::from);
    }
    let auth = Auth::from_ref(state);
    let result = auth.authenticate(&parts.headers).await;
    if let Ok(Some(user)) = &result {
        crate::observability::request_id::set_user_id(&user.id);
    }
    parts.extensions.insert(Resolved(result.clone()));
    result.map_err(ApiError::from)
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser
where
    Auth: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        identify(parts, state).await?.map(Self).ok_or_else(|| AuthError::MissingCredentials.into())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for OptionalUser
where
    Auth: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        identify(parts, state).await.map(Self)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AdminUser
where
    Auth: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let CurrentUser(user) = CurrentUser::from_request_parts(parts, state).await?;
        if user.is_admin() {
            Ok(Self(user))
        } else {
            Err(AuthError::NotAdmin.into())
        }
    }
}

impl Deref for CurrentUser {
    type Target = UserIdentity;

    fn deref(&self) -> &UserIdentity {
        &self.0
    }
}

impl Deref for AdminUser {
    type Target = UserIdentity;

    fn deref(&self) -> &UserIdentity {
        &self.0
    }
}

impl Deref for OptionalUser {
    type Target = Option<Arc<UserIdentity>>;

    fn deref(&self) -> &Option<Arc<UserIdentity>> {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use axum::{Json, Router};
    use http::{header, Request, StatusCode};
    use secrecy::SecretString;
    use tower::ServiceExt as _;

    use super::*;
    use crate::auth::{AuthMode, AuthSettings};

    const SECRET: &str = "extract-tests-secret-0123456789abcdef";

    fn auth(settings: AuthSettings) -> Auth {
        Auth::new(&settings, AuthMode::Local).unwrap()
    }

    fn settings() -> AuthSettings {
        AuthSettings { token_secret: Some(SecretString::from(SECRET)), ..AuthSettings::default() }
    }

    fn app(auth: Auth) -> Router {
        Router::new()
            .route("/me", get(|user: CurrentUser| async move { Json(user.0) }))
            .route("/maybe", get(|user: OptionalUser| async move { Json(user.0) }))
            .route("/admin", get(|admin: AdminUser, again: CurrentUser| async move { Json((admin.0, again.0)) }))
            .with_state(auth)
    }

    async fn call(app: &Router, path: &str, bearer: Option<&str>) -> (StatusCode, String, serde_json::Value) {
        let mut req = Request::get(path);
        if let Some(token) = bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let www = response.headers().get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned());
        if status.is_client_error() {
            assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
        }
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (status, www.unwrap_or_default(), serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn current_optional_and_admin_from_the_state() {
        let auth = auth(settings());
        let tokens = auth.tokens();
        let user = tokens.issue_pair(&UserIdentity::new("u1", "ann"), None).unwrap();
        let admin = tokens.issue_access(&UserIdentity::new("a1", "root").with_role("admin")).unwrap().token;
        let app = app(auth.clone());

        let (status, www, body) = call(&app, "/me", Some(&user.access.token)).await;
        assert_eq!((status, www.as_str(), body["username"].as_str()), (StatusCode::OK, "", Some("ann")));

        let (status, www, body) = call(&app, "/me", None).await;
        assert_eq!(
            (status, www.as_str(), body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, "Bearer", Some("not_authenticated"))
        );

        let (status, _, body) = call(&app, "/me", Some("garbage")).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_token")));

        let (status, _, body) = call(&app, "/me", Some(&user.refresh.token)).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("wrong_token_type")));

        assert_eq!(call(&app, "/maybe", None).await.2, serde_json::Value::Null);
        assert_eq!(call(&app, "/maybe", Some(&user.access.token)).await.2["id"], "u1");
        assert_eq!(call(&app, "/maybe", Some("garbage")).await.0, StatusCode::UNAUTHORIZED);

        let (status, _, body) = call(&app, "/admin", Some(&user.access.token)).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("not_admin")));
        let (status, _, body) = call(&app, "/admin", Some(&admin)).await;
        assert_eq!((status, body[1]["id"].as_str()), (StatusCode::OK, Some("a1")));
        assert_eq!(call(&app, "/admin", None).await.0, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn disabled_auth_lets_everyone_in_as_the_dev_admin() {
        let app = app(auth(AuthSettings { enabled: false, ..settings() }));
        let (status, _, body) = call(&app, "/admin", None).await;
        assert_eq!((status, body[0]["id"].as_str()), (StatusCode::OK, Some("anonymous")));
    }
}
