//! `GET {api_prefix}/audit`: the audit trail for admins, newest first, filtered by
//! `actor`, `action` and `since`, paged with an opaque `cursor`. Mounted only when
//! `enable_audit_routes` is on.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::auth::AdminUser;
use crate::db::{AuditFilter, AuditLog, AuditPage};
use crate::error::ApiError;
use crate::service::Kernel;

#[derive(Debug, Deserialize)]
struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    since: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The audit route, with its full path, when the settings ask for it.
pub(crate) fn router(kernel: &Kernel) -> Router {
    let settings = kernel.settings();
    if !settings.features.enable_audit_routes {
        return Router::new();
    }
    let path = format!("{}/audit", settings.server.api_prefix);
    Router::new().route(&path, get(list)).with_state(AuditLog::new(kernel.db().clone()))
}

async fn list(
    State(audit): State<AuditLog>,
    _admin: AdminUser,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let filter = AuditFilter { actor: q.actor, action: q.action, since: q.since, limit: q.limit };
    Ok(Json(audit.query(&filter, q.cursor.as_deref()).await?))
}
