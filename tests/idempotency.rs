//! `Idempotency-Key`: the store contract on every store (in process; Redis when
//! `KERNEL_TEST_REDIS_URL` is set), then the HTTP behaviour of CONTRACT.md.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use app_kernel::reliability::{Begin, IdempotencyStore, MemoryIdempotencyStore, Record, StoredResponse};
use axum::body::Body;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use common::{assert_problem, send, service, Reply, TestService};
use http::{Request, StatusCode};
use serde_json::{json, Value};

async fn stores(test: &str) -> Vec<(&'static str, Arc<dyn IdempotencyStore>)> {
    #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
    let mut out: Vec<(&'static str, Arc<dyn IdempotencyStore>)> =
        vec![("memory", Arc::new(MemoryIdempotencyStore::default()))];
    #[cfg(feature = "redis")]
    if let Some(url) = common::service_url("KERNEL_TEST_REDIS_URL", test) {
        let prefix = format!("{}:", common::unique_name("idem"));
        let store = app_kernel::reliability::RedisIdempotencyStore::connect(&url, &prefix).await.expect("redis");
        out.push(("redis", Arc::new(store)));
    }
    #[cfg(not(feature = "redis"))]
    let _ = test;
    out
}

#[tokio::test]
async fn a_store_starts_once_then_answers_running_done_or_other() {
    let (short, day) = (Duration::from_millis(300), Duration::from_secs(86_400));
    for (name, store) in stores("a_store_starts_once").await {
        assert_eq!(store.begin("u:k", "fp1", day).await.unwrap(), Begin::Started, "{name}");
        assert_eq!(store.begin("u:k", "fp1", day).await.unwrap(), Begin::Running, "{name}");
        assert_eq!(store.begin("u:k", "fp2", day).await.unwrap(), Begin::OtherRequest, "{name}");
        let response = StoredResponse {
            status: 201,
            headers: vec![("content-type".into(), "application/json".into())],
            body: b"{\"n\":1}".to_vec(),
        };
        let record = Record { fingerprint: "fp1".into(), response: Some(response.clone()) };
        store.finish("u:k", record, day).await.unwrap();
        assert_eq!(store.begin("u:k", "fp1", day).await.unwrap(), Begin::Done(response), "{name}");
        assert_eq!(store.begin("u:k", "fp2", day).await.unwrap(), Begin::OtherRequest, "{name}");
        store.forget("u:k").await.unwrap();
        assert_eq!(store.begin("u:k", "fp2", short).await.unwrap(), Begin::Started, "{name}: forgotten");
        // A running record of an instance that died lets the key go after its ttl.
        tokio::time::sleep(short + Duration::from_millis(100)).await;
        assert_eq!(store.begin("u:k", "fp1", day).await.unwrap(), Begin::Started, "{name}: expired");
    }
}

/// How many orders the handler finished (`.0`) and began (`.1`).
#[derive(Clone, Default)]
struct Calls(Arc<AtomicUsize>, Arc<AtomicUsize>);

/// Whether a `fail` order has failed once already (it fails the first time only).
static FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

async fn create(State(calls): State<Calls>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    calls.1.fetch_add(1, Ordering::SeqCst);
    if body["slow"] == true {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let n = calls.0.fetch_add(1, Ordering::SeqCst) + 1;
    if body["fail"] == true && !FAILED.swap(true, Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"n": n})));
    }
    (StatusCode::CREATED, Json(json!({"n": n, "name": body["name"]})))
}

async fn svc(calls: &Calls, edit: impl FnOnce(&mut app_kernel::settings::KernelSettings)) -> TestService {
    let app = Router::new().route("/orders", post(create)).with_state(calls.clone());
    service(vec![app], edit).await
}

async fn order(svc: &TestService, key: Option<&str>, body: Value) -> Reply {
    let mut req = Request::post("/api/v1/orders").header("content-type", "application/json");
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    send(&svc.router(), req.body(Body::from(body.to_string())).unwrap()).await
}

#[tokio::test]
async fn a_repeat_gets_the_first_answer_and_the_handler_runs_once() {
    let calls = Calls::default();
    let svc = svc(&calls, |_| {}).await;
    let first = order(&svc, Some("order-1"), json!({"name": "a"})).await;
    assert_eq!(first.status, 201);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = order(&svc, Some("order-1"), json!({"name": "a"})).await;
    assert_eq!((again.status, again.json()), (StatusCode::CREATED, first.json()));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.header("content-type"), Some("application/json"));
    assert_ne!(again.header("x-request-id"), first.header("x-request-id"), "the replay is a request of its own");
    assert_eq!(calls.0.load(Ordering::SeqCst), 1);
    // The same key with another body is refused; without a key every request runs.
    assert_problem(&order(&svc, Some("order-1"), json!({"name": "b"})).await, 422, "idempotency_key_reused");
    assert_eq!(order(&svc, None, json!({"name": "a"})).await.json()["n"], 2);
    assert_eq!(order(&svc, None, json!({"name": "a"})).await.json()["n"], 3);
    // A bad key is a clear 400.
    assert_problem(&order(&svc, Some(&"k".repeat(256)), json!({})).await, 400, "invalid_idempotency_key");
    assert_problem(&order(&svc, Some("has space"), json!({})).await, 400, "invalid_idempotency_key");
}

#[tokio::test]
async fn a_repeat_while_the_first_runs_gets_409_and_a_5xx_is_not_kept() {
    let calls = Calls::default();
    let svc = svc(&calls, |_| {}).await;
    let slow = json!({"name": "s", "slow": true});
    let (first, second) = tokio::join!(order(&svc, Some("slow-1"), slow.clone()), async {
        // Once the first is in its handler, its key is held.
        while calls.1.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        order(&svc, Some("slow-1"), slow.clone()).await
    });
    assert_eq!(first.status, 201);
    assert_problem(&second, 409, "idempotency_in_progress");
    // A failure is not kept: the repeat runs again, and its success is.
    let failing = json!({"name": "f", "fail": true});
    let before = calls.0.load(Ordering::SeqCst);
    assert_eq!(order(&svc, Some("f-1"), failing.clone()).await.status, 500);
    assert_eq!(order(&svc, Some("f-1"), failing.clone()).await.status, 201);
    assert_eq!(order(&svc, Some("f-1"), failing).await.header("idempotent-replayed"), Some("true"));
    assert_eq!(calls.0.load(Ordering::SeqCst), before + 2);
}

#[tokio::test]
async fn an_oversize_body_with_a_key_is_413_and_keeps_nothing() {
    let calls = Calls::default();
    let svc = svc(&calls, |s| s.server.max_body_bytes = 64).await;
    let big = json!({"name": "x".repeat(100)});
    assert_problem(&order(&svc, Some("big-1"), big).await, 413, "payload_too_large");
    assert_eq!(order(&svc, Some("big-1"), json!({"name": "small"})).await.status, 201, "the key is still free");
    assert_eq!(calls.0.load(Ordering::SeqCst), 1);
}

/// Two instances on one Redis replay each other's answers.
#[cfg(feature = "redis")]
#[tokio::test]
async fn instances_sharing_redis_replay_each_others_answers() {
    let Some(url) = common::service_url("KERNEL_TEST_REDIS_URL", "instances_sharing_redis_replay") else { return };
    let prefix = format!("{}:", common::unique_name("idem"));
    let calls = Calls::default();
    let edit = |s: &mut app_kernel::settings::KernelSettings| {
        s.redis.url = Some(url.clone().into());
        s.redis.key_prefix = prefix.clone();
    };
    let (one, two) = (svc(&calls, edit).await, svc(&calls, edit).await);
    let first = order(&one, Some("shared-1"), json!({"name": "x"})).await;
    let again = order(&two, Some("shared-1"), json!({"name": "x"})).await;
    assert_eq!((first.status.as_u16(), again.header("idempotent-replayed")), (201, Some("true")));
    assert_eq!(again.json(), first.json());
    assert_eq!(calls.0.load(Ordering::SeqCst), 1);
}
