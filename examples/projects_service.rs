//! Run: cargo run --example projects_service
//! Worker: cargo run --example projects_service -- worker
//!
//! The spec's "Complete Example": a schema created at start-up, a background task,
//! and routes that list, create and read projects of the caller's workspace.

use app_kernel::auth::CurrentUser;
use app_kernel::db::{Find, Row};
use app_kernel::jobs::{EnqueueOptions, JobClient, JobContext, TaskError};
use app_kernel::service::HookResult;
use app_kernel::{ApiError, BootError, Db, Routes, Service, ServiceConfig};
use axum::extract::Path;
use axum::routing::get;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// Every instance runs it at start-up, several at once: `execute_schema` makes the
/// concurrent `CREATE ... IF NOT EXISTS` safe on every engine.
async fn init_schema(db: Db) -> HookResult {
    db.execute_schema(
        "CREATE TABLE IF NOT EXISTS projects (
            id VARCHAR(64) PRIMARY KEY,
            workspace_id VARCHAR(64),
            name TEXT NOT NULL,
            processed BOOLEAN,
            created_at VARCHAR(40),
            updated_at VARCHAR(40),
            deleted_at VARCHAR(40)
        )",
    )
    .await?;
    if let Err(e) = db.execute("CREATE INDEX idx_projects_workspace ON projects(workspace_id)", &[]).await {
        tracing::debug!(error = %e, "index exists"); // no portable IF NOT EXISTS for indexes
    }
    Ok(())
}

async fn process_project(payload: Value, ctx: JobContext) -> Result<Value, TaskError> {
    let id = payload["project_id"].as_str().ok_or_else(|| TaskError::new("payload has no project_id"))?;
    let mut project = ctx.db().get_entity("projects", id).await?.ok_or_else(|| TaskError::new("no such project"))?;
    project.insert("processed".into(), json!(true));
    ctx.db().save_entity("projects", project).await?;
    Ok(json!({"status": "done"}))
}

async fn list_projects(user: CurrentUser, db: Db) -> Result<Json<Vec<Row>>, ApiError> {
    let find = Find::new().filter("[workspace_id] = ?", [user.id.clone()]).order_by("[created_at] DESC");
    Ok(Json(db.find_entities("projects", find).await?))
}

#[derive(Deserialize)]
struct NewProject {
    name: String,
}

async fn create_project(
    user: CurrentUser,
    db: Db,
    jobs: JobClient,
    Json(data): Json<NewProject>,
) -> Result<Json<Row>, ApiError> {
    let project = db.save_entity("projects", json!({"workspace_id": user.id, "name": data.name})).await?;
    jobs.enqueue("process_project", json!({"project_id": project["id"]}), EnqueueOptions::new().user_id(&user.id))
        .await?;
    Ok(Json(project))
}

async fn get_project(user: CurrentUser, db: Db, Path(id): Path<String>) -> Result<Json<Row>, ApiError> {
    match db.get_entity("projects", &id).await? {
        Some(p) if p.get("workspace_id") == Some(&json!(user.id)) => Ok(Json(p)),
        _ => Err(ApiError::not_found(format!("no project {id}"))),
    }
}

fn projects() -> Routes {
    Routes::new()
        .route("/projects", get(list_projects).post(create_project))
        .route("/projects/{project_id}", get(get_project))
}

#[tokio::main]
async fn main() -> Result<(), BootError> {
    Service::builder("my_service")
        .config(ServiceConfig::from_env()?)
        .routes(projects())
        .task("process_project", process_project)
        .schema_init(init_schema)
        .run()
        .await
}
