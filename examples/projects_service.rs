//! Run: cargo run --example projects_service
//! Worker: cargo run --example projects_service -- worker
//!
//! The spec's "Complete Example": a table declared at start-up, a background task,
//! and routes that list, create and read projects of the caller's workspace.

use app_kernel::auth::CurrentUser;
use app_kernel::db::{ColumnKind, EntityTable, Find, Row};
use app_kernel::jobs::{EnqueueOptions, JobClient, JobContext, TaskError};
use app_kernel::{ApiError, BootError, Db, Routes, Service, ServiceConfig};
use axum::extract::Path;
use axum::routing::get;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// The projects table, declared: created (or completed) at start-up by every
/// instance, several at once, with the index the list below needs.
fn projects_table() -> EntityTable {
    EntityTable::new("projects")
        .field("workspace_id", ColumnKind::Text)
        .field("name", ColumnKind::Text)
        .field("processed", ColumnKind::Bool)
        .soft_delete()
        .index(["workspace_id", "created_at"])
}

async fn process_project(payload: Value, ctx: JobContext) -> Result<Value, TaskError> {
    let id = payload["project_id"].as_str().ok_or_else(|| TaskError::new("payload has no project_id"))?;
    let mut project = ctx.db().get_entity("projects", id).await?.ok_or_else(|| TaskError::new("no such project"))?;
    project.insert("processed".into(), json!(true));
    ctx.db().save_entity("projects", project).await?;
    Ok(json!({"status": "done"}))
}

async fn list_projects(user: CurrentUser, db: Db) -> Result<Json<Vec<Row>>, ApiError> {
    let find = Find::new().eq("workspace_id", user.id.as_str()).sort("created_at", true);
    Ok(Json(db.find_entities("projects", find).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
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
        .table(projects_table()) // schema_init(..) remains for SQL a declaration does not cover
        .run()
        .await
}
