//! The admins' API-key routes (`POST`/`GET {auth}/api-keys`, `DELETE
//! {auth}/api-keys/{id}`), mounted by [`super::routes::router`] in `local` and
//! `apikey` mode. A key is shown once, at creation; every change is audited.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::routes::{invalid, Store};
use super::AdminUser;
use crate::error::ApiError;
use crate::observability::names;

#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct NewKeyBody {
    name: String,
    #[serde(default)]
    user_id: Option<String>,
}

#[utoipa::path(post, path = "/api-keys", tag = "auth", security(("bearer" = [])), request_body = NewKeyBody, responses(
    (status = 201, description = "the key (shown once) and its record"), (status = 403, description = "admin role required")))]
pub(super) async fn create_key(
    State(store): Store,
    admin: AdminUser,
    Json(body): Json<NewKeyBody>,
) -> Result<Response, ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 255 {
        return Err(ApiError::validation(vec![invalid("name", "Name must be 1 to 255 characters", "string_length")]));
    }
    let owner = body.user_id.unwrap_or_else(|| admin.id.clone());
    if store.get_user(&owner).await?.is_none() {
        return Err(ApiError::validation(vec![invalid("user_id", "No such user", "value_error")]));
    }
    let (key, info) = store.create_api_key(name, &owner).await?;
    let resource = format!("api_keys/{}", info.id);
    let details = json!({"name": info.name, "prefix": info.prefix, "user_id": info.user_id});
    store.audit().record(Some(&admin.id), names::AUDIT_API_KEY_CREATE, Some(&resource), details).await?;
    let mut body = serde_json::to_value(&info).map_err(ApiError::internal)?;
    body["key"] = Value::String(key.expose().to_owned());
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[utoipa::path(get, path = "/api-keys", tag = "auth", security(("bearer" = [])), responses(
    (status = 200, description = "the keys, without secrets: {\"items\": [ApiKeyInfo]}"), (status = 403, description = "admin role required")))]
pub(super) async fn list_keys(State(store): Store, _admin: AdminUser) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"items": store.list_api_keys().await?})))
}

#[utoipa::path(delete, path = "/api-keys/{id}", tag = "auth", security(("bearer" = [])), params(("id" = String, Path, description = "the key's id")), responses(
    (status = 204, description = "revoked"), (status = 404, description = "no such key"), (status = 403, description = "admin role required")))]
pub(super) async fn revoke_key(
    State(store): Store,
    admin: AdminUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !store.revoke_api_key(&id).await? {
        return Err(ApiError::not_found("No live API key with this id"));
    }
    let resource = format!("api_keys/{id}");
    store.audit().record(Some(&admin.id), names::AUDIT_API_KEY_REVOKE, Some(&resource), json!({})).await?;
    Ok(StatusCode::NO_CONTENT)
}
