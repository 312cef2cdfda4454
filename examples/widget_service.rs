//! Run: cargo run --example widget_service
//!
//! The Quick Start: a widget service on the embedded defaults (SQLite under
//! `./data/`), with every kernel route and middleware. Widgets belong to the
//! caller: the body is a typed struct that refuses unknown fields, so a client can
//! neither choose another owner, nor send an `id` to overwrite someone else's
//! widget, nor add columns to the table.

use app_kernel::auth::CurrentUser;
use app_kernel::db::{ColumnKind, EntityList, EntityTable, Find, Row};
use app_kernel::service::ServiceBuilder;
use app_kernel::{ApiError, BootError, Db, Routes, Service, ServiceConfig};
use axum::extract::Query;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

/// What a client may send. Anything else (an `owner`, an `id`, a field the app does
/// not know) is refused with 422 before it reaches the database.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewWidget {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<String>>,
}

/// A widget as stored: the client's fields and the owner the server sets.
#[derive(Serialize)]
struct Widget<'a> {
    #[serde(flatten)]
    body: NewWidget,
    owner: &'a str,
}

/// The table, its fields, and the index the list below needs (a user's widgets,
/// newest first): without it every list scans every user's rows.
fn widgets_table() -> EntityTable {
    EntityTable::new("widgets")
        .field("owner", ColumnKind::Text)
        .field("name", ColumnKind::Text)
        .field("size", ColumnKind::Integer)
        .field("tags", ColumnKind::Json)
        .index(["owner", "created_at"])
}

/// A stored widget, as the routes answer it (the entity API's row: the client's
/// fields, the owner, and the columns the kernel keeps).
#[derive(ToSchema)]
#[allow(dead_code)] // documents the answer; the handlers return the rows themselves
struct StoredWidget {
    id: String,
    name: String,
    size: Option<i64>,
    tags: Option<Vec<String>>,
    owner: String,
    created_at: String,
    updated_at: String,
}

/// Creates a widget owned by the caller.
#[utoipa::path(post, path = "/widgets", tag = "widgets", security(("bearer" = [])), request_body = NewWidget,
    responses((status = 200, description = "the stored widget", body = StoredWidget), (status = 401, description = "no or bad token"), (status = 422, description = "an unknown or invalid field")))]
async fn create_widget(user: CurrentUser, db: Db, Json(body): Json<NewWidget>) -> Result<Json<Row>, ApiError> {
    Ok(Json(db.save_entity("widgets", Widget { body, owner: &user.id }).await?))
}

/// A page of a list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Page {
    /// At most this many (default 100, at most 1000).
    limit: Option<u64>,
    /// Skip this many.
    offset: Option<u64>,
}

/// The caller's widgets, newest first.
#[utoipa::path(get, path = "/widgets", tag = "widgets", security(("bearer" = [])), params(Page),
    responses((status = 200, description = "the widgets", body = [StoredWidget]), (status = 401, description = "no or bad token")))]
async fn list_widgets(user: CurrentUser, db: Db, Query(page): Query<Page>) -> Result<EntityList, ApiError> {
    let find = Find::new()
        .eq("owner", user.id.as_str())
        .sort("created_at", true)
        .limit(page.limit.unwrap_or(100).min(1000))
        .offset(page.offset.unwrap_or(0));
    // The rows go straight to JSON bytes (the same bytes as `Json(db.find_entities(..))`).
    Ok(db.find_entities_json("widgets", find).await?)
}

/// The routes with their OpenAPI operations (`/docs` shows the bodies above).
fn widgets() -> Routes {
    Routes::new().documented(routes!(list_widgets, create_widget))
}

/// The app without its configuration: what `main` serves and what a test builds
/// (`app_kernel::testing::TestApp::new(service())`).
pub(crate) fn service() -> ServiceBuilder {
    Service::builder("widget_service")
        .table(widgets_table()) // created at start-up, with its index
        .routes(widgets()) // served at /api/v1/widgets
}

#[tokio::main]
async fn main() -> Result<(), BootError> {
    service()
        .config(ServiceConfig::from_env()?) // JWT_SECRET, DATABASE_*, REDIS_URL, ...
        .run()
        .await
}
