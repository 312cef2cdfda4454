//! `GET {api_prefix}/audit`: the audit trail for admins, newest first, filtered by
//! `actor`, `action` and `since`, paged with an opaque `cursor`. Mounted only when
//! `enable_audit_routes` is on.

use axum::extract::{FromRef, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::auth::{AdminUser, Auth};
use crate::db::{AuditFilter, AuditLog, AuditPage, Db};
use crate::error::ApiError;

#[derive(Debug, Deserialize)]
struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    since: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The audit route's state: the trail, and who is an admin.
#[derive(Clone)]
struct AuditRoute {
    audit: AuditLog,
    auth: Auth,
}

impl FromRef<AuditRoute> for Auth {
    fn from_ref(state: &AuditRoute) -> Self {
        state.auth.clone()
    }
}

impl FromRef<AuditRoute> for AuditLog {
    fn from_ref(state: &AuditRoute) -> Self {
        state.audit.clone()
    }
}

/// The audit route at `{api_prefix}/audit`.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(db: &Db, auth: Auth, api_prefix: &str) -> Router<S> {
    let state = AuditRoute { audit: AuditLog::new(db.clone()), auth };
    Router::new().route(&format!("{api_prefix}/audit"), get(list)).with_state(state)
}

async fn list(
    State(audit): State<AuditLog>,
    _admin: AdminUser,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let filter = AuditFilter { actor: q.actor, action: q.action, since: q.since, limit: q.limit };
    Ok(Json(audit.query(&filter, q.cursor.as_deref()).await?))
}
