//! The OpenAPI 3.1 document of kernel and app routes, with the bearer scheme, and
//! the Swagger UI that renders it from assets compiled into the binary (so `/docs`
//! works with no network).

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::docs_response::DocsResponses;
use crate::service::Kernel;

/// The document: `doc` (the operations of every mounted route, each documented
/// where its route is declared), then each document the app gave the builder
/// merged in, titled with the service's name, version and description.
pub(crate) fn document(kernel: &Kernel, mut doc: Document, app_docs: Vec<Document>) -> Document {
    doc.openapi = utoipa::openapi::OpenApiVersion::Version31;
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

/// `/openapi.json` and `/docs`: the page loads nothing from elsewhere (its CSP
/// allows this origin only) and validates nothing against a third party
/// (Swagger UI's validator badge is off: it would send the document's URL to
/// validator.swagger.io), its assets are cached a day and gzip-compressed when the
/// client accepts it (1.84 MB per visit uncompressed).
pub(crate) fn routes(kernel: &Kernel, doc: Document) -> Router<Kernel> {
    let f = &kernel.settings().features;
    let config = Config::default().validator_url("none");
    let ui = SwaggerUi::new(f.docs_path.clone()).url(f.openapi_path.clone(), doc).config(config);
    let answer = axum::middleware::from_fn_with_state(DocsResponses::default(), super::docs_response::layer);
    Router::from(ui).layer(answer)
}
