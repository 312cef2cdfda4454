//! [`Routes`]: an app's routes, each registered under `api_prefix` at its full path,
//! each with its OpenAPI operation (see [`crate::api_doc`]).
//!
//! An axum [`Router`](axum::Router) given to [`ServiceBuilder::router`](super::ServiceBuilder::router)
//! is nested under the prefix, and axum serves a nested route through two more
//! layers on every request: it rewrites the URI to strip the prefix and records the
//! nested path, inside one more boxed service. `Routes` (the shape of Loco's
//! `Routes::new().add(..)`) keeps each path and its method router apart until the
//! kernel knows the prefix, then registers `"{api_prefix}{path}"` directly: the
//! same URLs, about 5,000 instructions fewer per request (`bench/instructions.sh`).
//! A nested router's routes are not listed in `/openapi.json` (axum does not say
//! what a router holds); `Routes` are.

use super::Kernel;

/// An app's routes, mounted under `api_prefix` (default `/api/v1`) with no nesting,
/// and listed in `/openapi.json`.
///
/// ```
/// use app_kernel::service::Routes;
/// use axum::routing::get;
///
/// let widgets = Routes::new()
///     .route("/widgets", get(|| async { "[]" }))
///     .route("/widgets/{id}", get(|| async { "{}" }));
/// assert_eq!(widgets.paths().collect::<Vec<_>>(), ["/widgets", "/widgets/{id}"]);
/// ```
///
/// A handler annotated with `#[utoipa::path]` brings its schemas:
/// `.documented(utoipa_axum::routes!(create_widget, list_widgets))`.
pub type Routes = crate::api_doc::DocRoutes<Kernel>;
