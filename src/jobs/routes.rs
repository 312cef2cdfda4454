//! `GET /api/v1/jobs/{id}`: a job's status, for its user or an admin. The user
//! sees an internal failure (an error a task converted with `?`) as `internal
//! error`; admins see the detail.

use axum::extract::FromRef;
use axum::extract::Path;
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::backend::{JobRecord, JobStatus, Priority};
use super::JobClient;
use crate::auth::{Auth, CurrentUser};
use crate::error::ApiError;

/// The job as docs/CONTRACT.md shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobView {
    id: String,
    task: String,
    status: JobStatus,
    attempts: u32,
    max_attempts: u32,
    priority: Priority,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    created_at: String,
    updated_at: String,
}

/// A stored time (Unix ms) as the routes show it: RFC 3339, UTC, milliseconds.
pub(super) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl From<JobRecord> for JobView {
    fn from(j: JobRecord) -> Self {
        Self {
            id: j.id,
            task: j.task,
            status: j.status,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            priority: j.priority,
            result: j.result,
            error: j.error,
            created_at: rfc3339(j.created_at),
            updated_at: rfc3339(j.updated_at),
        }
    }
}

#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs", security(("bearer" = [])),
    params(("id" = String, Path, description = "the job's id, as enqueue returned it")), responses(
    (status = 200, description = "the job", body = JobView), (status = 401, description = "no or bad token"),
    (status = 404, description = "no such job, or not the caller's")))]
async fn job_status(user: CurrentUser, jobs: JobClient, Path(id): Path<String>) -> Result<Json<JobView>, ApiError> {
    let not_found = || ApiError::not_found("No such job");
    let job = jobs.status(&id).await?.ok_or_else(not_found)?;
    if !user.is_admin() && job.user_id.as_deref() != Some(user.id.as_str()) {
        return Err(not_found());
    }
    let mut view = JobView::from(job);
    if !user.is_admin() {
        view.error = view.error.map(public_error);
    }
    Ok(Json(view))
}

/// A job's `error` as its user sees it: an internal failure's detail is for
/// admins and the log.
fn public_error(error: String) -> String {
    match error.starts_with(super::error::INTERNAL_PREFIX) {
        true => super::error::INTERNAL_ERROR.to_owned(),
        false => error,
    }
}

/// The job routes, to mount under the API prefix.
pub(crate) fn routes<S>() -> crate::api_doc::DocRoutes<S>
where
    S: Clone + Send + Sync + 'static,
    JobClient: FromRef<S>,
    Auth: FromRef<S>,
{
    crate::api_doc::DocRoutes::default().documented(utoipa_axum::routes!(job_status))
}
