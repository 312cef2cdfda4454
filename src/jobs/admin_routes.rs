//! The admins' jobs routes, under the API prefix (docs/CONTRACT.md):
//!
//! - `GET /admin/jobs?status=&task=&limit=&cursor=`: jobs newest first, paged with an
//!   opaque cursor (`limit` 1..=200, default 50);
//! - `GET /admin/jobs/{id}`: one job, every field;
//! - `POST /admin/jobs/{id}/retry`: a `retry` or `dead` job is `pending` again, due now;
//! - `POST /admin/jobs/{id}/cancel`: a `pending` or `retry` job is `cancelled`;
//! - `DELETE /admin/jobs?before=<RFC 3339>`: deletes jobs finished (done, dead,
//!   cancelled) before then, and says how many.
//!
//! Every route requires an admin (401 without a token, 403 for another role): it is
//! the first thing each handler extracts. A job a worker holds (`running`) is never
//! changed: retry and cancel answer 409. Bad input is a 422 naming the parameter.
//! Each change is written to the audit trail (`jobs.retry`, `jobs.cancel`,
//! `jobs.purge`, the admin as actor); the change is made first, so a trail that
//! cannot be written is logged as a warning and the answer still says what was done.

use axum::extract::{FromRef, Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::admin::{JobChange, JobFilter, DEFAULT_PAGE, MAX_PAGE};
use super::backend::{now_ms, JobRecord, JobStatus, Priority};
use super::routes::rfc3339;
use super::JobClient;
use crate::auth::{AdminUser, Auth};
use crate::db::{AuditLog, Db};
use crate::error::{ApiError, FieldError};
use crate::observability::names;

/// A job as an admin sees it: every stored field, times in RFC 3339.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AdminJob {
    id: String,
    task: String,
    status: JobStatus,
    priority: Priority,
    attempts: u32,
    max_attempts: u32,
    timeout_ms: u64,
    user_id: Option<String>,
    #[schema(value_type = Object)]
    payload: Value,
    #[schema(value_type = Option<Object>)]
    result: Option<Value>,
    error: Option<String>,
    run_at: String,
    created_at: String,
    updated_at: String,
    /// The W3C `traceparent` the job was enqueued under, when it was.
    trace_parent: Option<String>,
}

impl From<JobRecord> for AdminJob {
    fn from(j: JobRecord) -> Self {
        Self {
            id: j.id,
            task: j.task,
            status: j.status,
            priority: j.priority,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            timeout_ms: j.timeout_ms,
            user_id: j.user_id,
            payload: j.payload,
            result: j.result,
            error: j.error,
            run_at: rfc3339(j.run_at),
            created_at: rfc3339(j.created_at),
            updated_at: rfc3339(j.updated_at),
            trace_parent: j.trace_parent,
        }
    }
}

/// One page of jobs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AdminJobPage {
    /// The jobs, newest first.
    items: Vec<AdminJob>,
    /// The next page's `cursor`; null on the last page. A page may hold fewer jobs
    /// than `limit` and still have a next one.
    next_cursor: Option<String>,
}

/// How many jobs a purge deleted.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Purged {
    deleted: u64,
}

/// The list's filters and page.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only jobs in this status.
    #[param(value_type = Option<JobStatus>)]
    status: Option<String>,
    /// Only jobs of this task.
    task: Option<String>,
    /// Jobs per page, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The purge's bound.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PurgeQuery {
    /// Delete jobs finished before this RFC 3339 time (required).
    #[param(value_type = String, format = DateTime, required = true)]
    before: Option<String>,
}

fn invalid(field: &str, msg: impl Into<String>) -> ApiError {
    ApiError::validation(vec![FieldError {
        loc: vec!["query".into(), field.into()],
        msg: msg.into(),
        kind: "value_error".into(),
    }])
}

/// The filter a query names, or a 422 for its first bad parameter.
fn filter_of(q: ListQuery) -> Result<JobFilter, ApiError> {
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            JobStatus::parse(s)
                .ok_or_else(|| invalid("status", "must be one of pending, running, retry, done, dead, cancelled"))?,
        ),
    };
    let limit = match q.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => return Err(invalid("limit", format!("must be an integer from 1 to {MAX_PAGE}"))),
        },
    };
    let before = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(decode_cursor(c).ok_or_else(|| invalid("cursor", "not a cursor from a previous page"))?),
    };
    Ok(JobFilter { status, task: q.task.filter(|t| !t.is_empty()), before, limit })
}

/// Cursors are the last id of a page, base64url-encoded: opaque to clients.
fn encode_cursor(id: &str) -> String {
    data_encoding::BASE64URL_NOPAD.encode(format!("j1:{id}").as_bytes())
}

fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = data_encoding::BASE64URL_NOPAD.decode(cursor.as_bytes()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let id = text.strip_prefix("j1:")?;
    (!id.is_empty() && id.len() <= 64).then(|| id.to_owned())
}

#[utoipa::path(get, path = "/admin/jobs", tag = "jobs-admin", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, description = "jobs, newest first, and the next page's cursor", body = AdminJobPage),
    (status = 401, description = "no or bad token"), (status = 403, description = "admin role required"),
    (status = 422, description = "a bad status, limit or cursor")))]
async fn list(_admin: AdminUser, jobs: JobClient, Query(q): Query<ListQuery>) -> Result<Json<AdminJobPage>, ApiError> {
    let filter = filter_of(q)?;
    let page = jobs.backend().list_jobs(&filter).await?;
    let items = page.jobs.into_iter().map(AdminJob::from).collect();
    Ok(Json(AdminJobPage { items, next_cursor: page.next.as_deref().map(encode_cursor) }))
}

#[utoipa::path(delete, path = "/admin/jobs", tag = "jobs-admin", security(("bearer" = [])), params(PurgeQuery),
    responses((status = 200, description = "how many finished jobs were deleted", body = Purged),
    (status = 401, description = "no or bad token"), (status = 403, description = "admin role required"),
    (status = 422, description = "`before` missing or not an RFC 3339 time")))]
async fn purge(
    admin: AdminUser,
    jobs: JobClient,
    State(db): State<Db>,
    Query(q): Query<PurgeQuery>,
) -> Result<Json<Purged>, ApiError> {
    let before = q.before.as_deref().ok_or_else(|| invalid("before", "required: an RFC 3339 time"))?;
    let before = chrono::DateTime::parse_from_rfc3339(before)
        .map_err(|_| invalid("before", "must be an RFC 3339 time, such as 2024-01-31T00:00:00Z"))?;
    let deleted = jobs.backend().prune(before.timestamp_millis()).await?;
    let details = serde_json::json!({"before": before.to_rfc3339(), "deleted": deleted});
    audit(&db, &admin, names::AUDIT_JOBS_PURGE, None, details).await;
    Ok(Json(Purged { deleted }))
}

fn no_such_job() -> ApiError {
    ApiError::not_found("No such job")
}

#[utoipa::path(get, path = "/admin/jobs/{id}", tag = "jobs-admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "the job's id")),
    responses((status = 200, description = "the job, every field", body = AdminJob),
    (status = 401, description = "no or bad token"), (status = 403, description = "admin role required"),
    (status = 404, description = "no such job")))]
async fn one(_admin: AdminUser, jobs: JobClient, Path(id): Path<String>) -> Result<Json<AdminJob>, ApiError> {
    let job = jobs.status(&id).await?.ok_or_else(no_such_job)?;
    Ok(Json(job.into()))
}

/// The job after an admin's change, written to the audit trail as `action`, or a 404
/// or 409 saying why it was refused; `allowed` names the statuses the change applies to.
async fn changed(
    (admin, jobs, db): (&AdminUser, &JobClient, &Db),
    id: &str,
    change: JobChange,
    allowed: &str,
    action: &str,
) -> Result<Json<AdminJob>, ApiError> {
    let job: AdminJob = match change {
        JobChange::Changed => jobs.status(id).await?.ok_or_else(no_such_job)?.into(),
        JobChange::NotFound => return Err(no_such_job()),
        JobChange::Refused(status) => {
            return Err(ApiError::conflict(
                "job_status_conflict",
                format!("The job is {}; this applies to {allowed} jobs only", status.as_str()),
            ))
        }
    };
    audit(db, admin, action, Some(id), serde_json::json!({"task": job.task})).await;
    Ok(Json(job))
}

#[utoipa::path(post, path = "/admin/jobs/{id}/retry", tag = "jobs-admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "the job's id")),
    responses((status = 200, description = "the job, pending and due now", body = AdminJob),
    (status = 401, description = "no or bad token"), (status = 403, description = "admin role required"),
    (status = 404, description = "no such job"), (status = 409, description = "the job is not retry or dead")))]
async fn retry(
    admin: AdminUser,
    jobs: JobClient,
    State(db): State<Db>,
    Path(id): Path<String>,
) -> Result<Json<AdminJob>, ApiError> {
    let change = jobs.backend().retry_job(&id, now_ms()).await?;
    changed((&admin, &jobs, &db), &id, change, "retry or dead", names::AUDIT_JOB_RETRY).await
}

#[utoipa::path(post, path = "/admin/jobs/{id}/cancel", tag = "jobs-admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "the job's id")),
    responses((status = 200, description = "the job, cancelled", body = AdminJob),
    (status = 401, description = "no or bad token"), (status = 403, description = "admin role required"),
    (status = 404, description = "no such job"), (status = 409, description = "the job is not pending or retry")))]
async fn cancel(
    admin: AdminUser,
    jobs: JobClient,
    State(db): State<Db>,
    Path(id): Path<String>,
) -> Result<Json<AdminJob>, ApiError> {
    let change = jobs.backend().cancel_job(&id, now_ms()).await?;
    changed((&admin, &jobs, &db), &id, change, "pending or retry", names::AUDIT_JOB_CANCEL).await
}

/// Writes an admin's change to the audit trail (see the module docs).
async fn audit(db: &Db, admin: &AdminUser, action: &str, job: Option<&str>, details: Value) {
    let resource = job.map(|id| format!("jobs/{id}"));
    if let Err(e) = AuditLog::new(db.clone()).record(Some(&admin.0.id), action, resource.as_deref(), details).await {
        tracing::warn!(error = %e, action, "audit event not written");
    }
}

/// The admins' jobs routes, to mount under the API prefix.
pub(crate) fn routes<S>() -> crate::api_doc::DocRoutes<S>
where
    S: Clone + Send + Sync + 'static,
    JobClient: FromRef<S>,
    Auth: FromRef<S>,
    Db: FromRef<S>,
{
    crate::api_doc::DocRoutes::default()
        .documented(utoipa_axum::routes!(list, purge))
        .documented(utoipa_axum::routes!(one))
        .documented(utoipa_axum::routes!(retry))
        .documented(utoipa_axum::routes!(cancel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        assert_eq!(decode_cursor(&encode_cursor(id)).as_deref(), Some(id));
        assert_eq!(decode_cursor("!!"), None);
        assert_eq!(decode_cursor(&data_encoding::BASE64URL_NOPAD.encode(b"x")), None);
    }
}
