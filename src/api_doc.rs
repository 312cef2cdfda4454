//! Routes that carry their OpenAPI operations: every route the kernel mounts (its
//! own and an app's) appears in `/openapi.json`, documented where it is declared.
//!
//! - A handler annotated with `#[utoipa::path]` and given as utoipa-axum's
//!   `routes!(handler, ..)` ([`DocRoutes::documented`]) brings its operation: method,
//!   parameters, request and response schemas, security. Its annotation's `path` is
//!   relative to where the routes are mounted (the API prefix for an app), so a
//!   prefix set in the environment moves route and document together.
//! - A route given as a plain axum `MethodRouter` ([`DocRoutes::route`]) is listed
//!   with the methods it serves and its path parameters (as strings); what its
//!   handler reads and answers is only known from an annotation.
//! - [`DocRoutes::hidden`] serves a route and leaves it out of the document.
//!
//! The methods of a plain `MethodRouter` are read from its `Debug` output (axum
//! has no other way to ask); `tests/openapi.rs` checks the result on every route of
//! the examples, so a change of that format in axum fails a test instead of
//! silently dropping operations.

use axum::routing::MethodRouter;
use axum::Router;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem, Paths};
use utoipa::openapi::schema::{Object, Schema, Type};
use utoipa::openapi::{ComponentsBuilder, OpenApi, RefOr, Required, ResponseBuilder};
use utoipa_axum::router::UtoipaMethodRouter;

/// How one route is documented.
enum Doc {
    /// Its annotated operations, keyed by the annotation's path.
    Annotated(Paths),
    /// Described from the methods it serves.
    Plain,
    /// Left out.
    Hidden,
}

/// Routes with their documentation, registered at their full paths by
/// [`mount`](Self::mount) once the prefix is known.
#[must_use]
pub struct DocRoutes<S> {
    entries: Vec<(String, MethodRouter<S>, Doc)>,
    schemas: Vec<(String, RefOr<Schema>)>,
}

impl<S> Default for DocRoutes<S> {
    fn default() -> Self {
        Self { entries: Vec::new(), schemas: Vec::new() }
    }
}

impl<S> std::fmt::Debug for DocRoutes<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries.iter().map(|(p, _, _)| p)).finish()
    }
}

impl<S: Clone + Send + Sync + 'static> DocRoutes<S> {
    /// No routes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `method_router` at `path`, documented from the methods it serves.
    pub fn route(mut self, path: &str, method_router: MethodRouter<S>) -> Self {
        self.entries.push((path.to_owned(), method_router, Doc::Plain));
        self
    }

    /// Serves annotated handlers (utoipa-axum's `routes!(a, b)`, all on one path)
    /// with their operations and schemas.
    pub fn documented(self, (schemas, paths, method_router): UtoipaMethodRouter<S>) -> Self {
        let path = paths.paths.keys().next().cloned().unwrap_or_default();
        self.documented_at(&path, (schemas, paths, method_router))
    }

    /// As [`documented`](Self::documented), served at `path` instead of the
    /// annotation's (a path that comes from settings).
    pub fn documented_at(mut self, path: &str, (schemas, paths, method_router): UtoipaMethodRouter<S>) -> Self {
        let mut items = Paths::new();
        for item in paths.paths.into_values() {
            merge_item(&mut items, path, item);
        }
        self.schemas.extend(schemas);
        self.entries.push((path.to_owned(), method_router, Doc::Annotated(items)));
        self
    }

    /// Serves `method_router` at `path` and leaves it out of the document.
    pub fn hidden(mut self, path: &str, method_router: MethodRouter<S>) -> Self {
        self.entries.push((path.to_owned(), method_router, Doc::Hidden));
        self
    }

    /// Adds every route of `other`.
    pub fn merge(mut self, other: Self) -> Self {
        self.entries.extend(other.entries);
        self.schemas.extend(other.schemas);
        self
    }

    /// The paths, as given (without the prefix).
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(p, _, _)| p.as_str())
    }

    /// Registers every route on `router` at `{prefix}{path}` (`/` is the prefix
    /// itself, as axum's `nest` would have it) and adds its operations to `doc`.
    pub(crate) fn mount(self, mut router: Router<S>, prefix: &str, doc: &mut OpenApi) -> Router<S> {
        for (path, method_router, how) in self.entries {
            let full = if path == "/" && !prefix.is_empty() { prefix.to_owned() } else { format!("{prefix}{path}") };
            match how {
                Doc::Annotated(paths) => {
                    for item in paths.paths.into_values() {
                        merge_item(&mut doc.paths, &full, item);
                    }
                }
                Doc::Plain => merge_item(&mut doc.paths, &full, describe(&full, &method_router)),
                Doc::Hidden => {}
            }
            router = router.route(&full, method_router);
        }
        if !self.schemas.is_empty() {
            let components = doc.components.get_or_insert_with(|| ComponentsBuilder::new().build());
            components.schemas.extend(self.schemas);
        }
        router
    }
}

/// Adds `item`'s operations to the item at `path` (two routes may share a path).
fn merge_item(paths: &mut Paths, path: &str, item: PathItem) {
    match paths.paths.get_mut(path) {
        Some(existing) => existing.merge_operations(item),
        None => {
            paths.paths.insert(path.to_owned(), item);
        }
    }
}

/// The methods a plain `MethodRouter` serves, from its `Debug` output: each field
/// is the method's endpoint, `None` when it has none.
fn methods<S>(method_router: &MethodRouter<S>) -> Vec<HttpMethod> {
    let text = format!("{method_router:?}");
    let served =
        |name: &str| text.find(&format!("{name}: ")).is_some_and(|at| !text[at + name.len() + 2..].starts_with("None"));
    let all = [
        ("get", HttpMethod::Get),
        ("post", HttpMethod::Post),
        ("put", HttpMethod::Put),
        ("patch", HttpMethod::Patch),
        ("delete", HttpMethod::Delete),
        ("options", HttpMethod::Options),
        ("trace", HttpMethod::Trace),
    ];
    let mut out: Vec<HttpMethod> = all.into_iter().filter(|(name, _)| served(name)).map(|(_, m)| m).collect();
    if out.is_empty() && served("head") {
        out.push(HttpMethod::Head);
    }
    out
}

/// An operation per method `method_router` serves, with `path`'s parameters.
fn describe<S>(path: &str, method_router: &MethodRouter<S>) -> PathItem {
    let tag = path.split('/').find(|s| !s.is_empty() && !s.starts_with('{')).unwrap_or("app");
    let mut item: Option<PathItem> = None;
    for method in methods(method_router) {
        let mut op = OperationBuilder::new()
            .tag(tag)
            .response("default", ResponseBuilder::new().description("see the handler: it has no OpenAPI annotation"));
        for name in path_params(path) {
            let schema = Object::with_type(Type::String);
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(schema)),
            );
        }
        let next = PathItem::new(method, op.build());
        match &mut item {
            Some(existing) => existing.merge_operations(next),
            None => item = Some(next),
        }
    }
    item.unwrap_or_default()
}

/// The names of `{name}` and `{*name}` segments of an axum path.
fn path_params(path: &str) -> Vec<&str> {
    path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).map(|s| s.trim_start_matches('*')).collect()
}

#[cfg(test)]
mod tests {
    use axum::routing::{get, post};

    use super::*;

    #[test]
    fn a_plain_route_is_described_by_its_methods_and_path_parameters() {
        let routes = DocRoutes::<()>::default()
            .route("/things/{id}", get(|| async {}).delete(|| async {}))
            .route("/things", post(|| async {}))
            .hidden("/secret", get(|| async {}));
        let mut doc = OpenApi::default();
        let _ = routes.mount(Router::new(), "/api/v1", &mut doc);
        let json = serde_json::to_value(&doc).unwrap();
        let one = &json["paths"]["/api/v1/things/{id}"];
        assert!(one["get"].is_object() && one["delete"].is_object() && one["post"].is_null(), "{one}");
        assert_eq!(one["get"]["parameters"][0]["name"], "id");
        assert_eq!(one["get"]["parameters"][0]["schema"]["type"], "string");
        assert!(json["paths"]["/api/v1/things"]["post"].is_object());
        assert!(json["paths"]["/api/v1/secret"].is_null(), "hidden");
    }
}
