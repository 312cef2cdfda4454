//! Run: cargo run --example order_service
//! Worker: cargo run --example order_service -- worker
//!
//! The spec's order service: `POST /api/v1/orders` saves an order and enqueues
//! `process_order`; the worker (the same binary, `worker` command) marks it processed
//! and counts the run (`runs`: an order whose job ran twice shows 2).
//! `GET /api/v1/jobs/{id}` shows the job to its user.

use app_kernel::auth::CurrentUser;
use app_kernel::db::{ColumnKind, EntityTable};
use app_kernel::jobs::{EnqueueOptions, JobClient, JobContext, TaskError};
use app_kernel::service::ServiceBuilder;
use app_kernel::{ApiError, BootError, Db, Routes, Service, ServiceConfig};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::routes;

/// What a client may send; unknown fields (an `id`, a `status`, ...) are refused with 422.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewOrder {
    /// What is ordered.
    item: String,
    /// How many (default 1).
    #[serde(default = "one")]
    quantity: i64,
}

fn one() -> i64 {
    1
}

/// The orders table and the index a user's orders would be listed by.
fn orders_table() -> EntityTable {
    EntityTable::new("orders")
        .field("user_id", ColumnKind::Text)
        .field("item", ColumnKind::Text)
        .field("quantity", ColumnKind::Integer)
        .field("status", ColumnKind::Text)
        .field("runs", ColumnKind::Integer)
        .index(["user_id", "created_at"])
}

/// Marks the order processed. The run is counted in the same transaction (the `UPDATE`
/// holds the row until the commit), so `runs` is how many times the effect happened.
async fn process_order(payload: Value, ctx: JobContext) -> Result<Value, TaskError> {
    let order_id = payload["order_id"].as_str().ok_or_else(|| TaskError::new("payload has no order_id"))?;
    let mut tx = ctx.db().transaction().await?;
    let counted = "UPDATE [orders] SET [runs] = COALESCE([runs], 0) + 1 WHERE [id] = ?";
    if tx.execute(counted, &[json!(order_id)]).await? == 0 {
        return Err(TaskError::new("no such order"));
    }
    let mut order = tx.get_entity("orders", order_id).await?.ok_or_else(|| TaskError::new("no such order"))?;
    order.insert("status".into(), json!("processed"));
    tx.save_entity("orders", order).await?;
    tx.commit().await?;
    Ok(json!({"status": "done"}))
}

/// The answer to an order: its id, and the job that processes it
/// (`GET /api/v1/jobs/{job_id}` tells how far it is).
#[derive(ToSchema)]
#[allow(dead_code)] // documents the answer built with json! below
struct OrderCreated {
    order_id: String,
    job_id: String,
}

/// Stores an order and enqueues its processing.
#[utoipa::path(post, path = "/orders", tag = "orders", security(("bearer" = [])), request_body = NewOrder, responses(
    (status = 200, description = "the order and its job", body = OrderCreated), (status = 401, description = "no or bad token"),
    (status = 422, description = "an unknown or invalid field")))]
async fn create_order(
    user: CurrentUser,
    db: Db,
    jobs: JobClient,
    Json(data): Json<NewOrder>,
) -> Result<Json<Value>, ApiError> {
    let order =
        json!({"user_id": user.id, "item": data.item, "quantity": data.quantity, "status": "pending", "runs": 0});
    let order = db.save_entity("orders", order).await?;
    let order_id = order["id"].clone();
    let job =
        jobs.enqueue("process_order", json!({"order_id": order_id}), EnqueueOptions::new().user_id(&user.id)).await?;
    Ok(Json(json!({"order_id": order_id, "job_id": job.job_id})))
}

fn orders() -> Routes {
    Routes::new().documented(routes!(create_order))
}

/// The app without its configuration: what `main` serves and what a test builds.
pub(crate) fn service() -> ServiceBuilder {
    Service::builder("order_service").table(orders_table()).routes(orders()).task("process_order", process_order)
}

#[tokio::main]
async fn main() -> Result<(), BootError> {
    service().config(ServiceConfig::from_env()?).run().await
}
