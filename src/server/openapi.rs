//! `GET /openapi.json`: the OpenAPI 3 document, derived from the handlers' own request and
//! response types and their `#[utoipa::path]` attributes, plus what every authenticated route
//! can answer (the gate's 401 and 429) and this server's own limits. It is the contract:
//! tests/api-fuzz.sh holds the live server to it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{AppState, inline, metrics, routes, sessions};

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
        sessions::list_files,
        sessions::download,
        sessions::upload,
        sessions::delete_file,
    ),
    components(schemas(super::stream::Chunk)),
    modifiers(&BearerAuth, &GateResponses, &NodeHeader),
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

/// What the gate in front of every route answers before a handler runs: 401 without a valid
/// key and 429 past the rate limit, on every operation that is not public (`security(())`).
struct GateResponses;

impl Modify for GateResponses {
    fn modify(&self, doc: &mut Document) {
        let error = || ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
        let header = |description: &str, kind: Type| {
            HeaderBuilder::new().schema(Object::with_type(kind)).description(Some(description)).build()
        };
        let unauthorized = ResponseBuilder::new()
            .description("No key, a malformed `Authorization` header, or an unknown key (`unauthorized`)")
            .content("application/json", error())
            .header("WWW-Authenticate", header("`Bearer`", Type::String))
            .build();
        let limited = ResponseBuilder::new()
            .description("Past the per-key (or per-address) rate limit (`rate_limited`)")
            .content("application/json", error())
            .header("Retry-After", header("Seconds to wait", Type::Integer))
            .build();
        for item in doc.paths.paths.values_mut() {
            let ops = [&mut item.get, &mut item.post, &mut item.delete, &mut item.put, &mut item.patch];
            for op in ops.into_iter().flatten() {
                // `security(())` is one empty requirement: a public route.
                let public = op.security.as_ref().is_some_and(|s| s.iter().all(|r| r == &Default::default()));
                if public {
                    continue;
                }
                let responses = &mut op.responses.responses;
                responses.entry("401".into()).or_insert_with(|| unauthorized.clone().into());
                responses.entry("429".into()).or_insert_with(|| limited.clone().into());
            }
        }
    }
}

/// With `--node-name`, the gate names the server in `X-Ignite-Node` on every response; without
/// it the header is absent, so it is documented as optional (OpenAPI headers are).
struct NodeHeader;

impl Modify for NodeHeader {
    fn modify(&self, doc: &mut Document) {
        let header = HeaderBuilder::new()
            .schema(Object::with_type(Type::String))
            .description(Some(
                "The name of the server that answered (`ignite serve --node-name`); absent without it. \
                 Session ids of such a server start with it: `<node>.<32 hex digits>`",
            ))
            .build();
        for item in doc.paths.paths.values_mut() {
            let ops = [&mut item.get, &mut item.post, &mut item.delete, &mut item.put, &mut item.patch];
            for op in ops.into_iter().flatten() {
                for response in op.responses.responses.values_mut() {
                    if let utoipa::openapi::RefOr::T(r) = response {
                        r.headers.insert("X-Ignite-Node".into(), header.clone());
                    }
                }
            }
        }
    }
}

/// The document as this server serves it: the static part, with what depends on the server's
/// flags and what utoipa's derive cannot say filled in.
pub(super) fn served(max_ttl_secs: u64) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
    let schemas = &mut doc["components"]["schemas"];
    // --session-max-ttl bounds `ttlSeconds`.
    if let Some(ttl) = schemas["CreateRequest"]["properties"].get_mut("ttlSeconds") {
        ttl["maximum"] = json!(max_ttl_secs);
    }
    // Exactly one of `files` and `code` (a null one counts as absent, as the handler reads it).
    if let Some(inline) = schemas.get_mut("InlineRequest").and_then(Value::as_object_mut) {
        inline.insert(
            "oneOf".into(),
            json!([
                {"required": ["files"], "properties": {"files": {"type": "object"}}},
                {"required": ["code"], "properties": {"code": {"type": "string"}}},
            ]),
        );
    }
    // Files travel as raw bytes, which utoipa would describe as an array of integers.
    let binary = json!({"type": "string", "format": "binary"});
    for pointer in [
        "/paths/~1v1~1sessions~1{id}~1files~1{path}/get/responses/200/content/application~1octet-stream",
        "/paths/~1v1~1sessions~1{id}~1files~1{path}/put/requestBody/content/application~1octet-stream",
    ] {
        if let Some(raw) = doc.pointer_mut(pointer) {
            raw["schema"] = binary.clone();
        }
    }
    doc
}

/// This document; public, like `/health`: it describes the API, not the services.
#[utoipa::path(get, path = "/openapi.json", security(()), responses((status = 200, description = "OpenAPI 3 document")))]
pub(super) async fn document(State(st): State<Arc<AppState>>) -> Json<Value> {
    // The title, version and license come from Cargo.toml.
    Json(served(st.sessions.config.max_ttl.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::service::{CPU_LIMIT_RANGE, MEMORY_MB_RANGE, TIMEOUT_MS_RANGE};

    const ERROR_REF: &str = "#/components/schemas/ErrorBody";

    /// Every operation of the document: (method, path, operation).
    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                out.push((method.clone(), path.clone(), op.clone()));
            }
        }
        out
    }

    fn is_public(op: &Value) -> bool {
        op["security"].as_array().is_some_and(|s| s.iter().all(|r| r.as_object().is_some_and(|o| o.is_empty())))
    }

    #[test]
    fn every_operation_lists_what_the_gate_and_the_body_can_answer() {
        let doc = served(3600);
        let ops = operations(&doc);
        assert_eq!(ops.len(), 17);
        let public: Vec<&str> = ops.iter().filter(|(_, _, op)| is_public(op)).map(|(_, p, _)| p.as_str()).collect();
        assert_eq!(public, ["/health", "/openapi.json"]);
        for (method, path, op) in &ops {
            let responses = op["responses"].as_object().expect("responses");
            let has = |s: &str| responses.contains_key(s);
            if !is_public(op) {
                for status in ["401", "429"] {
                    assert!(has(status), "{method} {path} does not list {status}: {:?}", responses.keys());
                }
                assert!(responses["401"]["headers"].get("WWW-Authenticate").is_some(), "{method} {path}");
                assert!(responses["429"]["headers"].get("Retry-After").is_some(), "{method} {path}");
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "415", "500", "503"] {
                    assert!(has(status), "{method} {path} takes a body but does not list {status}");
                }
            }
            if path.contains('{') {
                assert!(has("400") && has("404"), "{method} {path}: a path parameter can be invalid or unknown");
            }
            // Every error is the one JSON error body (the readiness document excepted: /ready
            // answers 503 with its own body).
            for (status, resp) in responses {
                if status.as_str() < "400" || (path == "/ready" && status == "503") {
                    continue;
                }
                let content = resp["content"].as_object().expect("content");
                assert_eq!(content.keys().collect::<Vec<_>>(), ["application/json"], "{method} {path} {status}");
                assert_eq!(content["application/json"]["schema"]["$ref"], ERROR_REF, "{method} {path} {status}");
            }
        }
    }

    #[test]
    fn request_schemas_carry_the_ranges_the_handlers_enforce() {
        let doc = served(1234);
        let schemas = &doc["components"]["schemas"];
        let range = |schema: &Value| (schema["minimum"].as_f64(), schema["maximum"].as_f64());
        let ints = |(lo, hi): (u64, u64)| (Some(lo as f64), Some(hi as f64));
        for (schema, limits) in
            [("ExecuteRequest", &schemas["ExecuteRequest"]), ("InlineLimits", &schemas["InlineLimits"])]
        {
            let props = &limits["properties"];
            assert_eq!(range(&props["timeoutMs"]), ints(TIMEOUT_MS_RANGE), "{schema}");
            assert_eq!(
                range(&props["memoryMb"]),
                ints((u64::from(MEMORY_MB_RANGE.0), u64::from(MEMORY_MB_RANGE.1))),
                "{schema}"
            );
            for field in ["timeoutMs", "memoryMb"] {
                assert_eq!(props[field]["type"], json!(["integer", "null"]), "{schema}.{field}");
            }
        }
        let cpu = &schemas["InlineLimits"]["properties"]["cpu"];
        assert_eq!(range(cpu), (Some(CPU_LIMIT_RANGE.0), Some(CPU_LIMIT_RANGE.1)));
        // The maximum is the server's --session-max-ttl.
        assert_eq!(range(&schemas["CreateRequest"]["properties"]["ttlSeconds"]), (Some(1.0), Some(1234.0)));
        let inline = &schemas["InlineRequest"];
        assert_eq!(inline["properties"]["runtime"]["minLength"], 1);
        assert_eq!(inline["properties"]["files"]["maxProperties"], inline::MAX_FILES);
        assert_eq!(inline["oneOf"].as_array().map(Vec::len), Some(2), "exactly one of files and code");
        for schema in ["ExecuteRequest", "InlineRequest", "InlineLimits", "CreateRequest"] {
            assert_eq!(schemas[schema]["additionalProperties"], false, "{schema}: unknown fields are refused");
        }
    }

    #[test]
    fn the_refusals_of_the_execution_gates_are_documented() {
        let doc = served(3600);
        let body = &doc["components"]["schemas"]["ErrorBody"];
        assert_eq!(body["required"], json!(["error"]), "the checks come only with preflight_failed");
        assert_eq!(body["properties"]["preflight"]["$ref"], "#/components/schemas/PreflightReport");
        let responses = |path: &str| doc["paths"][path]["post"]["responses"].clone();
        let drift = responses("/services/{name}/execute")["409"]["description"].clone();
        assert!(drift.as_str().is_some_and(|d| d.contains("lock_drift")), "{drift}");
        for path in ["/services/{name}/execute", "/v1/execute", "/v1/sessions/{id}/execute"] {
            let refused = responses(path)["422"]["description"].clone();
            assert!(refused.as_str().is_some_and(|d| d.contains("preflight_failed")), "{path}: {refused}");
        }
    }

    #[test]
    fn session_files_travel_as_raw_bytes() {
        let doc = served(3600);
        let files = &doc["paths"]["/v1/sessions/{id}/files/{path}"];
        let binary = json!({"type": "string", "format": "binary"});
        assert_eq!(files["get"]["responses"]["200"]["content"]["application/octet-stream"]["schema"], binary);
        assert_eq!(files["put"]["requestBody"]["content"]["application/octet-stream"]["schema"], binary);
        for status in ["200", "201"] {
            assert_eq!(
                files["put"]["responses"][status]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/FileInfo"
            );
        }
        assert_eq!(files["put"]["responses"]["507"]["content"]["application/json"]["schema"]["$ref"], ERROR_REF);
        let list = &doc["paths"]["/v1/sessions/{id}/files"]["get"]["responses"]["200"]["content"];
        assert_eq!(list["application/json"]["schema"]["$ref"], "#/components/schemas/FileList");
    }

    #[test]
    fn only_the_session_body_is_optional() {
        let doc = served(3600);
        for (method, path, op) in operations(&doc) {
            let Some(body) = op.get("requestBody") else { continue };
            let required = body["required"].as_bool().unwrap_or(false);
            // An upload's body is the file's bytes: none (HTTP cannot tell it from an empty
            // one) is an empty file.
            let optional = path == "/v1/sessions" || (method == "put" && path == "/v1/sessions/{id}/files/{path}");
            assert_eq!(required, !optional, "{method} {path}: {body}");
        }
    }
}
