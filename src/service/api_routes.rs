//! [`Routes`]: an app's routes, each registered under `api_prefix` at its full path.
//!
//! An axum [`Router`](axum::Router) given to [`ServiceBuilder::router`](super::ServiceBuilder::router)
//! is nested under the prefix, and axum serves a nested route through two more
//! layers on every request: it rewrites the URI to strip the prefix and records the
//! nested path, inside one more boxed service. `Routes` (the shape of Loco's
//! `Routes::new().add(..)`) keeps each path and its [`MethodRouter`] apart until
//! the kernel knows the prefix, then registers `"{api_prefix}{path}"` directly:
//! the same URLs, about 5,000 instructions fewer per request (`bench/instructions.sh`).

use axum::routing::MethodRouter;

use super::Kernel;

/// An app's routes, mounted under `api_prefix` (default `/api/v1`) with no nesting.
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
#[derive(Default)]
#[must_use]
pub struct Routes {
    routes: Vec<(String, MethodRouter<Kernel>)>,
}

impl Routes {
    /// No routes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `method_router` at `path` (which starts with `/`), below the API prefix.
    /// Two entries for one path merge their methods, as axum's `Router::route` does.
    pub fn route(mut self, path: &str, method_router: MethodRouter<Kernel>) -> Self {
        self.routes.push((path.to_owned(), method_router));
        self
    }

    /// Adds every route of `other`.
    pub fn merge(mut self, other: Routes) -> Self {
        self.routes.extend(other.routes);
        self
    }

    /// The paths, as given (without the prefix).
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|(p, _)| p.as_str())
    }

    /// Registers every route on `router` under `prefix`: `/widgets` becomes
    /// `{prefix}/widgets`, and `/` the prefix itself (as axum's `nest` would).
    pub(crate) fn register(self, mut router: axum::Router<Kernel>, prefix: &str) -> axum::Router<Kernel> {
        for (path, method_router) in self.routes {
            let full = if path == "/" && !prefix.is_empty() { prefix.to_owned() } else { format!("{prefix}{path}") };
            router = router.route(&full, method_router);
        }
        router
    }
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.paths()).finish()
    }
}
