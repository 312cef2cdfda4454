//! The middleware stack every service gets, driven through the full router.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::routing::{get, post};
use axum::{Json, Router};
use common::{assert_problem, get as get_path, send, service};
use http::Request;
use serde_json::json;

fn app() -> Router<app_kernel::Kernel> {
    #[derive(serde::Deserialize)]
    struct NewWidget {
        #[allow(dead_code)]
        name: String,
    }
    Router::new()
        .route("/widgets", post(|Json(w): Json<NewWidget>| async move { Json(json!({"name": w.name})) }))
        .route("/widgets/{id}", get(|| async { "widget" }))
        .route(
            "/whoami",
            get(|id: app_kernel::observability::request_id::RequestId| async move { id.as_str().to_owned() }),
        )
        .route("/slow", get(|| async { tokio::time::sleep(Duration::from_secs(5)).await }))
        .route("/boom", get(|| async { panic!("secret internals: password=hunter2") as &str }))
}

fn post_json(path: &str, body: &str) -> Request<Body> {
    Request::post(path).header("content-type", "application/json").body(Body::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn request_id_is_kept_when_safe_and_replaced_otherwise() {
    let svc = service(vec![app()], |_| {}).await;
    let router = svc.router();
    let req = |id: &str| Request::get("/healthz").header("x-request-id", id).body(Body::empty()).unwrap();

    let kept = send(&router, req("client-abc_1.2:3")).await;
    assert_eq!(kept.header("x-request-id"), Some("client-abc_1.2:3"));

    for bad in ["has space", &"x".repeat(129), "semi;colon"] {
        let replaced = send(&router, req(bad)).await;
        let id = replaced.header("x-request-id").unwrap();
        assert_ne!(id, bad);
        assert!(uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version_num() == 7), "{id}");
    }
    let fresh = get_path(&router, "/healthz").await;
    assert!(uuid::Uuid::parse_str(fresh.header("x-request-id").unwrap()).is_ok());
    // A handler extracts the same id the response echoes.
    let r = get_path(&router, "/api/v1/whoami").await;
    assert_eq!(Some(r.text().as_str()), r.header("x-request-id"));
}

#[tokio::test]
async fn security_headers_on_success_and_on_errors() {
    let svc = service(vec![app()], |s| s.security_headers.hsts = true).await;
    let router = svc.router();
    for (path, api) in [("/healthz", false), ("/api/v1/widgets/1", true), ("/api/v1/nope", true), ("/nope", false)] {
        let r = get_path(&router, path).await;
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(r.header("referrer-policy"), Some("strict-origin-when-cross-origin"), "{path}");
        assert!(r.header("strict-transport-security").unwrap().starts_with("max-age="), "{path}");
        assert_eq!(r.header("cache-control").is_some(), api, "{path}");
        assert_eq!(r.header("content-security-policy").is_some(), api, "{path}");
    }
    let docs = get_path(&router, "/docs/").await;
    assert_eq!(docs.status, 200);
    let csp = docs.header("content-security-policy").expect("/docs has a CSP of its own");
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"), "its own scripts only: {csp}");

    let plain = service(vec![], |_| {}).await;
    assert!(get_path(&plain.router(), "/healthz").await.header("strict-transport-security").is_none());
}

#[tokio::test]
async fn wildcard_cors_never_allows_credentials() {
    let svc = service(vec![app()], |_| {}).await;
    let router = svc.router();
    for path in ["/api/v1/widgets/1", "/api/v1/missing"] {
        let req = Request::get(path).header("origin", "https://evil.example").body(Body::empty()).unwrap();
        let r = send(&router, req).await;
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{path}");
        let same_origin = send(&router, Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(same_origin.header("access-control-allow-origin"), None, "{path}: no Origin, not a CORS request");
        assert!(r.header("access-control-allow-credentials").is_none(), "{path}");
    }
    let preflight = Request::options("/api/v1/widgets")
        .header("origin", "https://a.example")
        .header("access-control-request-method", "POST")
        .body(Body::empty())
        .unwrap();
    let r = send(&router, preflight).await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r.header("access-control-allow-credentials").is_none());
}

#[tokio::test]
async fn listed_cors_origins_get_credentials_and_others_nothing() {
    let svc = service(vec![app()], |s| s.cors.origins = vec!["http://localhost:3000".into()]).await;
    let router = svc.router();
    for path in ["/api/v1/widgets/1", "/api/v1/missing"] {
        let req = Request::get(path).header("origin", "http://localhost:3000").body(Body::empty()).unwrap();
        let r = send(&router, req).await;
        assert_eq!(r.header("access-control-allow-origin"), Some("http://localhost:3000"), "{path}");
        assert_eq!(r.header("access-control-allow-credentials"), Some("true"), "{path}");

        let req = Request::get(path).header("origin", "https://evil.example").body(Body::empty()).unwrap();
        let r = send(&router, req).await;
        assert!(r.header("access-control-allow-origin").is_none(), "{path}");
        assert_eq!(r.header("vary"), Some("origin"), "caches must key listed-origin answers by origin");
    }
    let preflight = |origin: &str| {
        Request::options("/api/v1/widgets")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .body(Body::empty())
            .unwrap()
    };
    let r = send(&router, preflight("http://localhost:3000")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("http://localhost:3000"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert!(r.header("access-control-allow-methods").is_some_and(|m| m.contains("POST")));
    assert!(r.header("access-control-allow-headers").is_some_and(|h| h.contains("authorization")));
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    let r = send(&router, preflight("https://evil.example")).await;
    assert!(r.header("access-control-allow-origin").is_none(), "an unlisted origin's preflight allows nothing");
}

#[tokio::test]
async fn oversize_body_is_413_problem() {
    let svc = service(vec![app()], |s| s.server.max_body_bytes = 64).await;
    let body = format!(r#"{{"name":"{}"}}"#, "x".repeat(100));
    let r = send(&svc.router(), post_json("/api/v1/widgets", &body)).await;
    assert_problem(&r, 413, "payload_too_large");

    let chunked = Request::post("/api/v1/widgets")
        .header("content-type", "application/json")
        .body(Body::from_stream(futures::stream::iter(vec![Ok::<_, std::io::Error>(body.into_bytes())])))
        .unwrap();
    assert_problem(&send(&svc.router(), chunked).await, 413, "payload_too_large");
}

#[tokio::test]
async fn malformed_json_wrong_shape_and_wrong_type_each_get_their_status() {
    let svc = service(vec![app()], |_| {}).await;
    let router = svc.router();
    assert_problem(&send(&router, post_json("/api/v1/widgets", "{not json")).await, 400, "invalid_json");
    let body =
        assert_problem(&send(&router, post_json("/api/v1/widgets", r#"{"nom":1}"#)).await, 422, "validation_failed");
    assert_eq!(body["errors"][0]["loc"], json!(["body", "name"]));
    let req = Request::post("/api/v1/widgets").header("content-type", "text/plain").body(Body::from("x")).unwrap();
    assert_problem(&send(&router, req).await, 415, "unsupported_media_type");
    assert_eq!(send(&router, post_json("/api/v1/widgets", r#"{"name":"ok"}"#)).await.json(), json!({"name":"ok"}));
}

#[tokio::test]
async fn a_request_past_the_timeout_gets_503() {
    let svc = service(vec![app()], |s| s.server.request_timeout = Duration::from_millis(100)).await;
    let r = get_path(&svc.router(), "/api/v1/slow").await;
    assert_problem(&r, 503, "request_timeout");
}

#[tokio::test]
async fn a_panic_becomes_a_500_that_reveals_nothing() {
    let svc = service(vec![app()], |_| {}).await;
    let r = get_path(&svc.router(), "/api/v1/boom").await;
    let body = assert_problem(&r, 500, "internal_error");
    assert_eq!(body["detail"], "Internal server error");
    assert!(!r.text().contains("hunter2") && !r.text().contains("secret"), "{}", r.text());
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}

#[tokio::test]
async fn unknown_path_is_404_and_wrong_method_405_with_allow() {
    let svc = service(vec![app()], |_| {}).await;
    let router = svc.router();
    assert_problem(&get_path(&router, "/api/v1/nothing/here").await, 404, "not_found");
    assert_problem(&get_path(&router, "/nothing").await, 404, "not_found");
    let r = send(&router, Request::delete("/api/v1/widgets/1").body(Body::empty()).unwrap()).await;
    assert_problem(&r, 405, "method_not_allowed");
    assert!(r.header("allow").is_some_and(|a| a.contains("GET")), "{:?}", r.headers);
}

#[tokio::test]
async fn kernel_routes_answer_with_the_contract_shapes() {
    let svc = service(vec![], |_| {}).await;
    let router = svc.router();
    assert_eq!(get_path(&router, "/healthz").await.json(), json!({"status":"ok"}));
    let index = get_path(&router, "/api").await.json();
    assert_eq!(
        index,
        json!({"service":"test_service","version":"1.0.0","docs":"/docs","health":"/healthz","ready":"/readyz"})
    );
    let doc = get_path(&router, "/openapi.json").await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(doc["paths"]["/readyz"].is_object());
    let paths = &doc["paths"];
    assert!(paths["/api/v1/auth/login"]["post"]["requestBody"].is_object(), "auth routes are documented");
    assert!(paths["/api/v1/auth/me"]["get"]["security"].is_array(), "token routes carry the bearer scheme");
    let keys = &paths["/api/v1/auth/api-keys"];
    assert!(keys["get"].is_object() && keys["post"].is_object(), "two methods on one path are both kept");
    assert!(paths["/api/v1/jobs/{id}"]["get"]["parameters"][0]["name"] == "id");
    let docs = get_path(&router, "/docs/").await;
    assert!(docs.text().contains("swagger-ui"), "Swagger UI served from the binary");
}

#[tokio::test]
async fn features_switch_kernel_routes_off() {
    let svc = service(vec![], |s| {
        s.features.enable_health_routes = false;
        s.features.enable_metrics = false;
        s.features.enable_docs = false;
    })
    .await;
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert_problem(&get_path(&svc.router(), path).await, 404, "not_found");
    }
}

#[tokio::test]
async fn routes_are_registered_under_the_prefix_at_their_full_path() {
    use app_kernel::Routes;
    use axum::extract::MatchedPath;
    let route = |p: MatchedPath| async move { p.as_str().to_owned() };
    for (prefix, expect_root) in [("/api/v1", "/api/v1"), ("/v2", "/v2"), ("", "/")] {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = common::test_settings(dir.path());
        settings.server.api_prefix = prefix.to_owned();
        let listing = Routes::new().route("/", get(route)).route("/widgets/{id}", get(route));
        let writes = Routes::new().route("/widgets/{id}", post(|| async { "created" }));
        let svc = app_kernel::Service::builder("t").settings(settings).routes(listing).routes(writes);
        let router = svc.build().await.unwrap().router();
        let one = format!("{prefix}/widgets/7");
        assert_eq!(
            get_path(&router, &one).await.text(),
            format!("{prefix}/widgets/{{id}}"),
            "handler sees the full template"
        );
        assert_eq!(send(&router, post_json(&one, "{}")).await.text(), "created", "two entries for a path merge");
        assert_eq!(get_path(&router, expect_root).await.text(), expect_root);
        if !prefix.is_empty() {
            assert_problem(&get_path(&router, "/widgets/7").await, 404, "not_found");
        }
    }
}

/// The stack's order is written once (the list in `service/stack/mod.rs`): the
/// parts a service runs with everything on are the rows of the module's doc
/// table, in order, and switching a part off removes just that part.
#[tokio::test]
async fn the_stack_runs_the_documented_parts_in_the_documented_order() {
    let all_on = |s: &mut app_kernel::settings::KernelSettings| {
        s.reliability.rate_limit_enabled = true;
        s.reliability.idempotency_enabled = true;
    };
    let svc = service(vec![app()], all_on).await;
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/service/stack/mod.rs")).unwrap();
    let documented: Vec<&str> = doc
        .lines()
        .filter(|l| l.starts_with("//! | ") && !l.contains("| # |") && !l.contains("|---"))
        .flat_map(|row| row.split('|').nth(2).unwrap().split('`').skip(1).step_by(2))
        .collect();
    assert_eq!(svc.service.stack(), documented.as_slice());

    let svc = service(vec![app()], |s| {
        all_on(s);
        s.stack.cors = false;
    })
    .await;
    let without_cors: Vec<&str> = documented.iter().copied().filter(|p| *p != "cors").collect();
    assert_eq!(svc.service.stack(), without_cors.as_slice());
}
