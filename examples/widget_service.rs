//! Run: cargo run --example widget_service
//!
//! The Quick Start: a widget service on the embedded defaults (SQLite under
//! `./data/`), with every kernel route and middleware. Widgets belong to the
//! caller: the server sets `owner`, and a client can neither choose another owner
//! nor overwrite someone else's widget by sending its `id`.

use app_kernel::auth::CurrentUser;
use app_kernel::db::{Find, Row};
use app_kernel::{ApiError, BootError, Db, Routes, Service, ServiceConfig};
use axum::extract::Query;
use axum::routing::get;
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Fields the server owns: a client's values for them are ignored.
const SERVER_FIELDS: [&str; 5] = ["id", "owner", "created_at", "updated_at", "deleted_at"];

async fn create_widget(
    user: CurrentUser,
    db: Db,
    Json(mut data): Json<Map<String, Value>>,
) -> Result<Json<Row>, ApiError> {
    data.retain(|k, _| !SERVER_FIELDS.contains(&k.as_str()));
    data.insert("owner".into(), user.id.clone().into());
    Ok(Json(db.save_entity("widgets", data).await?))
}

#[derive(Deserialize)]
struct Page {
    limit: Option<u64>,
    offset: Option<u64>,
}

async fn list_widgets(user: CurrentUser, db: Db, Query(page): Query<Page>) -> Result<Json<Vec<Row>>, ApiError> {
    let find = Find::new()
        .filter("[owner] = ?", [user.id.clone()])
        .order_by("[created_at] DESC")
        .limit(page.limit.unwrap_or(100).min(1000))
        .offset(page.offset.unwrap_or(0));
    Ok(Json(db.find_entities("widgets", find).await?))
}

fn widgets() -> Routes {
    Routes::new().route("/widgets", get(list_widgets).post(create_widget))
}

#[tokio::main]
async fn main() -> Result<(), BootError> {
    Service::builder("widget_service")
        .config(ServiceConfig::from_env()?) // JWT_SECRET, DATABASE_*, REDIS_URL, ...
        .routes(widgets()) // served at /api/v1/widgets
        .run()
        .await
}
