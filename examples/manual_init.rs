//! Run: cargo run --example manual_init
//!
//! The spec's "Advanced: Manual Initialization": an app builds its own axum
//! `Router` and explicit `KernelSettings`, then attaches the kernel to it. The
//! app's routes stay where it put them; the kernel adds its routes and stack.

use app_kernel::service::init_app_kernel;
use app_kernel::settings::KernelSettings;
use app_kernel::BootError;
use axum::routing::get;
use axum::Router;

#[tokio::main]
async fn main() -> Result<(), BootError> {
    let app = Router::new().route("/documents/{id}", get(|| async { "a document" }));

    let mut settings = KernelSettings::default();
    settings.auth.token_secret = std::env::var("JWT_SECRET").ok().map(Into::into);
    settings.server.port = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8000);
    settings.database.name = std::env::var("DATABASE_NAME").ok();

    init_app_kernel("document_service", app, settings).await?.serve().await
}
