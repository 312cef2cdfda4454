//! Run: cargo run --example widget_service
//!
//! The Quick Start: a widget service on the embedded defaults (SQLite under
//! `./data/`), with every kernel route and middleware.

use app_kernel::{BootError, Service, ServiceConfig};
use axum::routing::get;
use axum::Router;

fn widgets() -> Router {
    Router::new().route("/widgets", get(|| async { axum::Json(Vec::<serde_json::Value>::new()) }))
}

#[tokio::main]
async fn main() -> Result<(), BootError> {
    Service::builder("widget_service").config(ServiceConfig::from_env()?).router(widgets()).run().await
}
