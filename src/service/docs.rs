//! The OpenAPI 3.1 document of kernel and app routes, with the bearer scheme, and
//! the Swagger UI that renders it from assets compiled into the binary (so `/docs`
//! works with no network).

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use super::routes;
use crate::service::Kernel;

#[derive(OpenApi)]
#[openapi(paths(routes::healthz, routes::readyz, routes::api_index, routes::metrics_text))]
struct KernelApi;

/// The document: the kernel's routes, then each app document merged in.
pub(crate) fn document(kernel: &Kernel, app_docs: Vec<Document>) -> Document {
    let mut doc = KernelApi::openapi();
    doc.paths.paths.extend(super::openapi_paths::paths(kernel).paths);
    for app in app_docs {
        doc.merge(app);
    }
    doc.info.title = kernel.name().to_owned();
    doc.info.version = kernel.version().to_owned();
    if !kernel.description().is_empty() {
        doc.info.description = Some(kernel.description().to_owned());
    }
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
    );
    doc
}

/// `/openapi.json` and `/docs`.
pub(crate) fn routes(kernel: &Kernel, doc: Document) -> Router<Kernel> {
    let f = &kernel.settings().features;
    Router::from(SwaggerUi::new(f.docs_path.clone()).url(f.openapi_path.clone(), doc))
}
