//! Run: cargo run --example projects_service
//! Worker: cargo run --example projects_service -- worker
//! Migrations: cargo run --example projects_service -- migrate status (or `migrate`)
//!
//! The spec's "Complete Example": a schema in versioned migrations
//! (`examples/migrations/projects/`, applied at start-up), a background task, and routes
//! that list, create and read projects of the caller's workspace.

use app_kernel::auth::CurrentUser;
use app_kernel::db::{Find, Row};
use app_kernel::jobs::{EnqueueOptions, JobClient, JobContext, TaskError};
use app_kernel::service::ServiceBuilder;
use app_kernel::{ApiError, BootError, Db, Routes, Service, ServiceConfig};
use axum::extract::Path;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::routes;

async fn process_project(payload: Value, ctx: JobContext) -> Result<Value, TaskError> {
    let id = payload["project_id"].as_str().ok_or_else(|| TaskError::new("payload has no project_id"))?;
    let mut project = ctx.db().get_entity("projects", id).await?.ok_or_else(|| TaskError::new("no such project"))?;
    project.insert("processed".into(), json!(true));
    ctx.db().save_entity("projects", project).await?;
    Ok(json!({"status": "done"}))
}

/// A project as the routes answer it (the entity API's row).
#[derive(ToSchema)]
#[allow(dead_code)] // documents the answer; the handlers return the row itself
struct Project {
    id: String,
    workspace_id: String,
    name: String,
    description: Option<String>,
    processed: Option<bool>,
    created_at: String,
    updated_at: String,
}

/// The projects of the caller's workspace, newest first.
#[utoipa::path(get, path = "/projects", tag = "projects", security(("bearer" = [])), responses(
    (status = 200, description = "the projects", body = [Project]), (status = 401, description = "no or bad token")))]
async fn list_projects(user: CurrentUser, db: Db) -> Result<Json<Vec<Row>>, ApiError> {
    let find = Find::new().eq("workspace_id", user.id.as_str()).sort("created_at", true);
    Ok(Json(db.find_entities("projects", find).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewProject {
    /// The project's name.
    name: String,
    /// Added by the second migration.
    description: Option<String>,
}

/// Creates a project in the caller's workspace and enqueues its processing.
#[utoipa::path(post, path = "/projects", tag = "projects", security(("bearer" = [])), request_body = NewProject, responses(
    (status = 200, description = "the project", body = Project), (status = 401, description = "no or bad token"),
    (status = 422, description = "an unknown or invalid field")))]
async fn create_project(
    user: CurrentUser,
    db: Db,
    jobs: JobClient,
    Json(data): Json<NewProject>,
) -> Result<Json<Row>, ApiError> {
    let project = db
        .save_entity("projects", json!({"workspace_id": user.id, "name": data.name, "description": data.description}))
        .await?;
    jobs.enqueue("process_project", json!({"project_id": project["id"]}), EnqueueOptions::new().user_id(&user.id))
        .await?;
    Ok(Json(project))
}

/// One project of the caller's workspace.
#[utoipa::path(get, path = "/projects/{project_id}", tag = "projects", security(("bearer" = [])),
    params(("project_id" = String, Path, description = "the project's id")), responses(
    (status = 200, description = "the project", body = Project), (status = 401, description = "no or bad token"),
    (status = 404, description = "no such project in the caller's workspace")))]
async fn get_project(user: CurrentUser, db: Db, Path(id): Path<String>) -> Result<Json<Row>, ApiError> {
    match db.get_entity("projects", &id).await? {
        Some(p) if p.get("workspace_id") == Some(&json!(user.id)) => Ok(Json(p)),
        _ => Err(ApiError::not_found(format!("no project {id}"))),
    }
}

fn projects() -> Routes {
    Routes::new().documented(routes!(list_projects, create_project)).documented(routes!(get_project))
}

/// The app without its configuration: what `main` serves and what a test builds.
pub(crate) fn service() -> ServiceBuilder {
    Service::builder("my_service")
        .routes(projects())
        .task("process_project", process_project)
        // The schema: pending files applied at start-up, one instance at a time.
        .migrations(app_kernel::migrations!("examples/migrations/projects"))
}

#[tokio::main]
async fn main() -> Result<(), BootError> {
    service().config(ServiceConfig::from_env()?).run().await
}
