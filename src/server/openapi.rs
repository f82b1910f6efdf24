//! `GET /openapi.json`: the OpenAPI 3 document, derived from the handlers' own request and
//! response types and their `#[utoipa::path]` attributes.

use axum::Json;
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{inline, metrics, routes, sessions};

#[derive(OpenApi)]
#[openapi(
    info(title = "ignite", description = "Run untrusted JavaScript/TypeScript in hardened sandboxes."),
    paths(
        routes::health,
        routes::ready,
        routes::list_services,
        routes::get_service,
        routes::preflight,
        routes::execute,
        metrics::scrape,
        document,
        inline::execute,
        sessions::create,
        sessions::show,
        sessions::delete,
        sessions::execute,
    ),
    components(schemas(super::stream::Chunk)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
struct ApiDoc;

/// Every route takes `Authorization: Bearer <key>` when the server has keys; those marked
/// `security(())` never do.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut Document) {
        let scheme = SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        doc.components.get_or_insert_with(Default::default).add_security_scheme("bearer", scheme);
    }
}

/// This document; public, like `/health`: it describes the API, not the services.
#[utoipa::path(get, path = "/openapi.json", security(()), responses((status = 200, description = "OpenAPI 3 document")))]
pub(super) async fn document() -> Json<Document> {
    // The title, version and license come from Cargo.toml.
    Json(ApiDoc::openapi())
}
