//! Run: cargo run --example widget_service
//!
//! The Quick Start: a widget service on the embedded defaults (SQLite under
//! `./data/`), with every kernel route and middleware. Widgets belong to the
//! caller: the body is a typed struct that refuses unknown fields, so a client can
//! neither choose another owner, nor send an `id` to overwrite someone else's
//! widget, nor add columns to the table.

use app_kernel::auth::CurrentUser;
use app_kernel::db::{ColumnKind, EntityTable, Find, Row};
use app_kernel::service::ServiceBuilder;
use app_kernel::{ApiError, BootError, Db, Routes, Service, ServiceConfig};
use axum::extract::Query;
use axum::routing::get;
use axum::Json;
use serde::{Deserialize, Serialize};

/// What a client may send. Anything else (an `owner`, an `id`, a field the app does
/// not know) is refused with 422 before it reaches the database.
#[derive(Deserialize, Serialize)]
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

async fn create_widget(user: CurrentUser, db: Db, Json(body): Json<NewWidget>) -> Result<Json<Row>, ApiError> {
    Ok(Json(db.save_entity("widgets", Widget { body, owner: &user.id }).await?))
}

#[derive(Deserialize)]
struct Page {
    limit: Option<u64>,
    offset: Option<u64>,
}

async fn list_widgets(user: CurrentUser, db: Db, Query(page): Query<Page>) -> Result<Json<Vec<Row>>, ApiError> {
    let find = Find::new()
        .eq("owner", user.id.as_str())
        .sort("created_at", true)
        .limit(page.limit.unwrap_or(100).min(1000))
        .offset(page.offset.unwrap_or(0));
    Ok(Json(db.find_entities("widgets", find).await?))
}

fn widgets() -> Routes {
    Routes::new().route("/widgets", get(list_widgets).post(create_widget))
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
