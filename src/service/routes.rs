//! The routes the kernel mounts by itself, per
//! [`FeatureSettings`](crate::settings::FeatureSettings): liveness, readiness,
//! metrics, the API index and the OpenAPI document with its Swagger UI.

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use http::{header, HeaderValue, StatusCode};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::api_doc::DocRoutes;
use crate::auth::AdminUser;
use crate::error::ApiError;
use crate::observability::health::{run_checks, CheckOutcome, HealthCheck, ReadinessReport};
use crate::observability::{metrics, names};
use crate::service::{Kernel, MetricsProtection};
use utoipa::openapi::OpenApi;
use utoipa_axum::routes;

/// The kernel's routes, at the root, before the stack wraps them; their
/// operations go into `doc`.
pub(crate) fn kernel_routes(kernel: &Kernel, doc: &mut OpenApi) -> Router<Kernel> {
    let f = &kernel.settings().features;
    let mut routes = DocRoutes::default().documented(routes!(api_index));
    if f.enable_health_routes {
        routes = routes.documented_at(&f.health_path, routes!(healthz)).documented_at(&f.ready_path, routes!(readyz));
    }
    if f.enable_metrics {
        routes = routes.documented_at(&f.metrics_path, routes!(metrics_text));
    }
    let mut router = routes.mount(Router::new(), "", doc);
    let prefix = &kernel.settings().server.api_prefix;
    if f.enable_auth_routes {
        let auth_prefix = format!("{prefix}{}", f.auth_prefix);
        let (auth, proxies) = (kernel.auth(), kernel.proxies().clone());
        router = router.merge(crate::auth::routes::router(auth, proxies, f.allow_self_signup, &auth_prefix, doc));
    }
    if f.enable_audit_routes {
        router = router.merge(super::audit_route::router(kernel.db(), kernel.auth().clone(), prefix, doc));
    }
    if f.enable_jobs_admin {
        router = crate::jobs::admin_routes::routes().mount(router, prefix, doc);
        router = router.merge(crate::jobs::admin_page::router(prefix));
    }
    router
}

/// Liveness body.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Liveness {
    /// Always `ok`.
    status: &'static str,
}

/// Liveness: the process answers. No dependency is called.
#[utoipa::path(get, path = "/healthz", tag = "kernel", responses((status = 200, description = "the process answers", body = Liveness)))]
pub(crate) async fn healthz() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
}

/// Readiness: the database and the app's checks, run concurrently, each with a timeout.
#[utoipa::path(get, path = "/readyz", tag = "kernel", responses(
    (status = 200, description = "every check passed"),
    (status = 503, description = "a check failed or timed out; same shape, status unhealthy")))]
pub(crate) async fn readyz(kernel: Kernel) -> Response {
    let mut checks = vec![database_check(&kernel)];
    checks.extend_from_slice(kernel.health_checks());
    let mut report: ReadinessReport = run_checks(&checks, kernel.settings().features.ready_check_timeout).await;
    if kernel.is_draining() {
        let outcome = CheckOutcome { healthy: false, message: "shutting down".into(), latency_ms: 0 };
        report.checks.insert("shutdown".into(), outcome);
        report.status = "unhealthy";
    }
    for (name, outcome) in &report.checks {
        if !outcome.healthy {
            ::metrics::counter!(names::READINESS_CHECK_FAILURES_TOTAL, "check" => name.clone()).increment(1);
        }
    }
    let status = if report.is_healthy() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(report)).into_response()
}

fn database_check(kernel: &Kernel) -> HealthCheck {
    let db = kernel.db().clone();
    HealthCheck::new("database", move || {
        let db = db.clone();
        async move {
            match db.ping().await {
                Ok(()) => Ok(format!("{:?} connected", db.kind()).to_lowercase()),
                Err(e) => Err(format!("database error: {e}")), // logged, not shown
            }
        }
    })
}

/// The API index.
#[utoipa::path(get, path = "/api", tag = "kernel", responses((status = 200, description = "service, version and the kernel's paths")))]
pub(crate) async fn api_index(kernel: Kernel) -> Json<serde_json::Value> {
    let f = &kernel.settings().features;
    Json(json!({
        "service": kernel.name(),
        "version": kernel.version(),
        "docs": f.docs_path,
        "health": f.health_path,
        "ready": f.ready_path,
    }))
}

/// Prometheus metrics, protected per `protect_metrics`.
#[utoipa::path(get, path = "/metrics", tag = "kernel", security(("bearer" = [])), responses(
    (status = 200, description = "Prometheus text format"), (status = 401, description = "no or bad token (admin protection)"), (status = 403, description = "not an admin, or not an internal address")))]
pub(crate) async fn metrics_text(kernel: Kernel, mut parts: Parts) -> Result<Response, ApiError> {
    authorize_metrics(&kernel, &mut parts).await?;
    sample(&kernel).await;
    let body = metrics::prometheus().render();
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// Brings the sampled families up to date before a render: `process_*`, the pool's
/// connections, the queue depth (asked of the engine at most every few seconds). Only
/// scrapes pay for them; requests never do.
async fn sample(kernel: &Kernel) {
    crate::observability::process::record();
    kernel.db().sample_pool();
    kernel.jobs().sample_queue_depth().await;
}

async fn authorize_metrics(kernel: &Kernel, parts: &mut Parts) -> Result<(), ApiError> {
    match kernel.settings().features.protect_metrics {
        MetricsProtection::None => Ok(()),
        MetricsProtection::Internal => match crate::client_addr::client_ip(parts, kernel.proxies()) {
            Some(ip) if is_internal(ip) => Ok(()),
            _ => Err(ApiError::forbidden("not_internal", "Metrics are served to internal addresses only")),
        },
        MetricsProtection::Admin => AdminUser::from_request_parts(parts, kernel).await.map(|_| ()),
    }
}

/// Loopback, private (RFC 1918), link-local, or IPv6 unique-local.
pub(crate) fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00 || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}
