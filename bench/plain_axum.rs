//! Run: cargo run --release --example plain_axum
//!
//! The load harness's baseline: the same routes as the widget example, written
//! with plain axum and no kernel, so `bench/load.py` can print the kernel's cost
//! as a ratio measured in the same run.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

#[tokio::main]
async fn main() {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8001".into());
    let app = Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(|| async { Json(json!({"status": "healthy"})) }));
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
