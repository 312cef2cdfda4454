//! `GET {api_prefix}/audit`: the audit trail for admins, newest first, filtered by
//! `actor`, `action` and `since`, paged with an opaque `cursor`. Mounted only when
//! `enable_audit_routes` is on.

use axum::extract::{FromRef, Query, State};
use axum::{Json, Router};
use serde::Deserialize;

use crate::auth::{AdminUser, Auth};
use crate::db::{AuditFilter, AuditLog, AuditPage, Db};
use crate::error::ApiError;

/// The filters and the page.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Only events by this user id.
    actor: Option<String>,
    /// Only events of this action (`auth.login`, ...).
    action: Option<String>,
    /// Only events at or after this RFC 3339 time.
    since: Option<String>,
    /// Events per page (default 50, at most 500).
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The audit route's state: the trail, and who is an admin.
#[derive(Clone, FromRef)]
struct AuditRoute {
    audit: AuditLog,
    auth: Auth,
}

/// The audit route at `{api_prefix}/audit`; its operation goes into `doc`.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(
    db: &Db,
    auth: Auth,
    api_prefix: &str,
    doc: &mut utoipa::openapi::OpenApi,
) -> Router<S> {
    let state = AuditRoute { audit: AuditLog::new(db.clone()), auth };
    let routes = crate::api_doc::DocRoutes::default().documented(utoipa_axum::routes!(list));
    routes.mount(Router::new(), api_prefix, doc).with_state(state)
}

#[utoipa::path(get, path = "/audit", tag = "audit", security(("bearer" = [])), params(AuditQuery), responses(
    (status = 200, description = "events, newest first, and the next page's cursor"), (status = 401, description = "no or bad token"),
    (status = 403, description = "admin role required")))]
async fn list(
    State(audit): State<AuditLog>,
    _admin: AdminUser,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let filter = AuditFilter { actor: q.actor, action: q.action, since: q.since, limit: q.limit };
    Ok(Json(audit.query(&filter, q.cursor.as_deref()).await?))
}
