//! The entity API seen over HTTP: a handler that hands a client's JSON object to
//! `save_entity` (the unsafe shape an author may still write) cannot break the table,
//! and every refusal is a 422 problem with the field names, logged and counted.

mod common;

use app_kernel::db::{Row, SchemaLimits, SchemaPolicy};
use app_kernel::settings::MetricsProtection;
use app_kernel::{ApiError, Db};
use axum::body::Body;
use axum::routing;
use axum::{Json, Router};
use common::{assert_problem, get, send};
use http::Request;
use serde_json::{json, Map, Value};

async fn save_as_sent(db: Db, Json(body): Json<Map<String, Value>>) -> Result<Json<Row>, ApiError> {
    Ok(Json(db.save_entity("notes", body).await?))
}

fn post(body: &Value) -> Request<Body> {
    Request::post("/api/v1/notes")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request")
}

async fn service(policy: SchemaPolicy) -> common::TestService {
    let notes = Router::new().route("/notes", routing::post(save_as_sent));
    common::service(vec![notes], |s| {
        s.database.schema = policy;
        s.features.protect_metrics = MetricsProtection::None;
    })
    .await
}

#[tokio::test]
async fn a_field_spray_over_http_gets_422s_and_a_counter_never_a_500() {
    let svc = service(SchemaPolicy::Additive(SchemaLimits::new(10, 4))).await;
    let router = svc.router();
    assert_eq!(send(&router, post(&json!({"title": "first"}))).await.status, 200);
    let spray: Map<String, Value> = (0..50).map(|i| (format!("f{i}"), json!(i))).collect();
    let body = assert_problem(&send(&router, post(&Value::Object(spray))).await, 422, "too_many_new_fields");
    assert_eq!(body["errors"].as_array().unwrap().len(), 50, "each offending field named: {body}");
    assert_eq!(body["errors"][0]["loc"], json!(["body", "f0"]));
    for round in 0..5 {
        let fields: Map<String, Value> = (0..4).map(|i| (format!("g{round}_{i}"), json!("x"))).collect();
        let reply = send(&router, post(&Value::Object(fields))).await;
        match round {
            0 => assert_eq!(reply.status, 200, "{}", reply.text()),
            _ => drop(assert_problem(&reply, 422, "too_many_columns")),
        }
    }
    let hostile = json!({ "a".repeat(64): 1, "x\"); DROP TABLE notes; --": 2 });
    let body = assert_problem(&send(&router, post(&hostile)).await, 422, "invalid_field_name");
    assert_eq!(body["errors"].as_array().unwrap().len(), 2);
    assert_eq!(send(&router, post(&json!({"title": "still works"}))).await.status, 200);
    let metrics = get(&router, "/metrics").await.text();
    let refusals: Vec<&str> =
        metrics.lines().filter(|l| l.starts_with("kernel_entity_schema_refusals_total{")).collect();
    for reason in ["too_many_new_fields", "too_many_columns", "invalid_field_name"] {
        assert!(refusals.iter().any(|l| l.contains(reason) && l.contains(r#"table="notes""#)), "{refusals:?}");
    }
}

#[tokio::test]
async fn the_default_policy_saves_only_into_declared_columns() {
    let svc = service(SchemaPolicy::default()).await;
    let router = svc.router();
    let reply = send(&router, post(&json!({"title": "t"}))).await;
    assert_problem(&reply, 500, "internal_error"); // no table: the app's mistake, not the caller's
    assert!(!reply.text().contains("notes"), "a 500 names nothing: {}", reply.text());
    svc.service.kernel().db().execute_schema(
        "CREATE TABLE IF NOT EXISTS [notes] ([id] TEXT PRIMARY KEY, [title] TEXT, [created_at] TEXT, [updated_at] TEXT)",
    )
    .await
    .unwrap();
    assert_eq!(send(&router, post(&json!({"title": "t"}))).await.status, 200);
    let body = assert_problem(&send(&router, post(&json!({"title": "t", "owner": "x"}))).await, 422, "unknown_fields");
    assert_eq!(
        body["errors"],
        json!([{"loc": ["body", "owner"], "msg": "not a field of this resource", "type": "extra_forbidden"}])
    );
}
