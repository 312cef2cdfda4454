//! `Idempotency-Key`: the store contract on every store (`idempotency/stores.rs`: in
//! process, and on PostgreSQL, MariaDB and Redis, each ignored when its URL is unset),
//! then the HTTP behaviour of docs/CONTRACT.md.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use common::trials::{self, test, Engine, Server};
use common::{assert_problem, send, service, Reply, TestService};
use http::{Request, StatusCode};
use serde_json::{json, Value};

#[path = "idempotency/stores.rs"]
mod stores;

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
    let pad = "p".repeat(body["pad"].as_u64().unwrap_or(0) as usize);
    (StatusCode::CREATED, Json(json!({"n": n, "name": body["name"], "pad": pad})))
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

async fn an_oversize_body_with_a_key_is_413_and_keeps_nothing() {
    let calls = Calls::default();
    let svc = svc(&calls, |s| s.server.max_body_bytes = 64).await;
    let big = json!({"name": "x".repeat(100)});
    assert_problem(&order(&svc, Some("big-1"), big).await, 413, "payload_too_large");
    assert_eq!(order(&svc, Some("big-1"), json!({"name": "small"})).await.status, 201, "the key is still free");
    assert_eq!(calls.0.load(Ordering::SeqCst), 1);
}

async fn a_response_too_large_to_keep_is_answered_whole_and_a_repeat_does_not_run_again() {
    let calls = Calls::default();
    let svc = svc(&calls, |_| {}).await;
    // 100 KiB: over the default cap of a kept record (64 KiB).
    let big = json!({"name": "big", "pad": 100 * 1024});
    let first = order(&svc, Some("big-answer"), big.clone()).await;
    assert_eq!(first.status, 201);
    assert_eq!(first.json()["pad"].as_str().map(str::len), Some(100 * 1024), "answered whole");
    let again = order(&svc, Some("big-answer"), big).await;
    assert_problem(&again, 409, "idempotency_response_not_kept");
    assert_eq!(calls.0.load(Ordering::SeqCst), 1, "the repeat did not run the handler again");
}

async fn a_caller_keeps_a_bounded_number_of_keys_and_its_newest_replay() {
    let calls = Calls::default();
    let svc = svc(&calls, |s| s.reliability.rate_limit_enabled = false).await;
    // One more key than the default cap per caller (1000): the oldest goes.
    for i in 0..=1000 {
        assert_eq!(order(&svc, Some(&format!("k-{i}")), json!({"name": i})).await.status, 201);
    }
    let newest = order(&svc, Some("k-1000"), json!({"name": 1000})).await;
    assert_eq!(newest.header("idempotent-replayed"), Some("true"));
    let oldest = order(&svc, Some("k-0"), json!({"name": 0})).await;
    assert_eq!(
        (oldest.status, oldest.header("idempotent-replayed")),
        (StatusCode::CREATED, None),
        "evicted: runs again"
    );
    assert_eq!(calls.0.load(Ordering::SeqCst), 1002);
}

async fn a_keyed_body_is_read_no_further_than_max_body_bytes_even_without_the_body_limit_part() {
    let calls = Calls::default();
    let svc = svc(&calls, |s| {
        s.stack.body_limit = false;
        s.server.max_body_bytes = 1024;
    })
    .await;
    // Chunked (no Content-Length): the layer must stop reading at the limit.
    let chunks = futures::stream::iter((0..64).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 1024]))));
    let req = Request::post("/api/v1/orders")
        .header("content-type", "application/json")
        .header("idempotency-key", "huge-1")
        .body(Body::from_stream(chunks))
        .unwrap();
    assert_problem(&send(&svc.router(), req).await, 413, "payload_too_large");
    assert_eq!(calls.1.load(Ordering::SeqCst), 0);
}

/// Keys are scoped per caller: user B sending the key (and body) user A used gets
/// an answer of its own, not A's; each user's repeat replays their own answer, and
/// an anonymous caller with the same key is another caller again.
async fn one_key_from_two_users_makes_two_effects_and_never_replays_across_them() {
    let calls = Calls::default();
    let svc = svc(&calls, |_| {}).await;
    let kernel = svc.service.kernel().clone();
    let users = kernel.auth().users().expect("a user store").clone();
    let token = |name: &'static str| {
        let (users, kernel) = (users.clone(), kernel.clone());
        async move {
            let new = app_kernel::auth::NewUser { username: name, email: None, password: "password-1", role: "user" };
            let user = users.create_user(&new).await.unwrap();
            kernel.auth().tokens().issue_access(&user).unwrap().token
        }
    };
    let (alice, bob) = (token("alice").await, token("bob").await);
    let router = svc.router();
    let as_user = |bearer: Option<&str>| {
        let mut req = Request::post("/api/v1/orders")
            .header("content-type", "application/json")
            .header("idempotency-key", "same-key");
        if let Some(bearer) = bearer {
            req = req.header("authorization", format!("Bearer {bearer}"));
        }
        send(&router, req.body(Body::from(json!({"name": "a"}).to_string())).unwrap())
    };
    let a = as_user(Some(&alice)).await;
    let b = as_user(Some(&bob)).await;
    assert_eq!((a.status, a.json()["n"].clone()), (StatusCode::CREATED, json!(1)), "{}", a.text());
    assert_eq!((b.status, b.header("idempotent-replayed")), (StatusCode::CREATED, None), "bob got alice's answer");
    assert_eq!(b.json()["n"], 2, "bob's request ran: {}", b.text());
    let (a_again, b_again) = (as_user(Some(&alice)).await, as_user(Some(&bob)).await);
    assert_eq!((a_again.header("idempotent-replayed"), a_again.json()["n"].clone()), (Some("true"), json!(1)));
    assert_eq!((b_again.header("idempotent-replayed"), b_again.json()["n"].clone()), (Some("true"), json!(2)));
    let anonymous = as_user(None).await;
    assert_eq!((anonymous.header("idempotent-replayed"), anonymous.json()["n"].clone()), (None, json!(3)));
    assert_eq!(calls.0.load(Ordering::SeqCst), 3, "one effect per caller");
}

/// The auth routes are never idempotent: a refresh token replayed with one key is
/// refused as reused (and its family revoked), never answered with the same pair;
/// a login's tokens are not kept, nor a new API key (shown once, in plaintext).
async fn auth_routes_are_excluded_from_idempotency() {
    let svc = service(vec![], |s| {
        s.features.allow_self_signup = true;
        s.auth.admin_email = Some("root@example.com".into());
        s.auth.admin_password = Some("admin password".to_owned().into());
    })
    .await;
    let router = svc.router();
    let auth = |path: &str, key: &str, body: Value| {
        let req = Request::post(format!("/api/v1/auth{path}"))
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(Body::from(body.to_string()))
            .unwrap();
        send(&router, req)
    };
    let creds = json!({"username": "ann", "password": "correct horse"});
    assert_eq!(auth("/register", "reg-1", creds.clone()).await.status, 201);
    let one = auth("/login", "login-1", creds.clone()).await;
    let two = auth("/login", "login-1", creds).await;
    assert_eq!((one.status, two.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(two.header("idempotent-replayed"), None);
    assert_ne!(one.json()["refresh_token"], two.json()["refresh_token"], "a login is not replayed");
    let refresh = json!({"refresh_token": one.json()["refresh_token"]});
    let rotated = auth("/refresh", "refresh-1", refresh.clone()).await;
    assert_eq!(rotated.status, 200);
    let replayed = auth("/refresh", "refresh-1", refresh).await;
    assert_problem(&replayed, 401, "token_revoked");
    let next = json!({"refresh_token": rotated.json()["refresh_token"]});
    assert_problem(&auth("/refresh", "refresh-2", next).await, 401, "token_revoked");

    // An admin's new API key (in plaintext, shown once) is not kept either.
    let admin = auth("/login", "admin-login", json!({"username": "root", "password": "admin password"})).await;
    let admin = admin.json()["access_token"].as_str().expect("the admin logs in").to_owned();
    let new_key = || {
        let req = Request::post("/api/v1/auth/api-keys")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {admin}"))
            .header("idempotency-key", "key-1")
            .body(Body::from(json!({"name": "ci"}).to_string()))
            .unwrap();
        send(&router, req)
    };
    let (first, again) = (new_key().await, new_key().await);
    assert_eq!((first.status, again.status), (StatusCode::CREATED, StatusCode::CREATED), "{}", again.text());
    assert_eq!(again.header("idempotent-replayed"), None, "an API key is not kept to be replayed");
    assert_ne!(first.json()["key"], again.json()["key"]);
}

/// Two instances on one Redis replay each other's answers.
#[cfg(feature = "redis")]
async fn instances_sharing_redis_replay_each_others_answers(url: String) {
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

/// Two instances on one PostgreSQL database and no Redis keep the promise through
/// the database: a burst of 20 requests with one key, half to each, runs the
/// handler once; every other answer is its replay or 409 while it runs.
async fn instances_sharing_postgres_without_redis_run_a_key_once(url: String) {
    let db = common::db::TestDb::new(&Engine::Postgres(url)).await;
    let calls = Calls::default();
    let edit = |s: &mut app_kernel::settings::KernelSettings| {
        s.database = db.settings().clone();
        s.redis.url = None;
    };
    let (one, two) = (svc(&calls, edit).await, svc(&calls, edit).await);
    let burst = (0..20).map(|i| {
        let svc = if i % 2 == 0 { &one } else { &two };
        order(svc, Some("burst-1"), json!({"name": "x"}))
    });
    let answers = futures::future::join_all(burst).await;
    assert_eq!(calls.0.load(Ordering::SeqCst), 1, "one effect");
    for a in &answers {
        let replayed = a.header("idempotent-replayed") == Some("true");
        assert!(a.status == 201 || a.status == 409, "{}: {:?}", a.status, a.json());
        assert!(a.status == 409 || replayed || a.json() == answers.iter().find(|r| r.status == 201).unwrap().json());
    }
    db.finish().await;
}

/// An idempotency store whose `forget` fails (as an unreachable database does) its
/// first `fails` times.
#[derive(Debug)]
struct ForgetFails {
    inner: app_kernel::reliability::MemoryIdempotencyStore,
    fails: AtomicUsize,
}

#[async_trait::async_trait]
impl app_kernel::reliability::IdempotencyStore for ForgetFails {
    async fn begin(
        &self,
        caller: &str,
        key: &str,
        fingerprint: &str,
        running_ttl: Duration,
    ) -> Result<app_kernel::reliability::Begin, app_kernel::reliability::ReliabilityError> {
        self.inner.begin(caller, key, fingerprint, running_ttl).await
    }
    async fn finish(
        &self,
        caller: &str,
        key: &str,
        record: app_kernel::reliability::Record,
        ttl: Duration,
    ) -> Result<(), app_kernel::reliability::ReliabilityError> {
        self.inner.finish(caller, key, record, ttl).await
    }
    async fn forget(&self, caller: &str, key: &str) -> Result<(), app_kernel::reliability::ReliabilityError> {
        if self.fails.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(app_kernel::reliability::ReliabilityError::Store("connection refused".into()));
        }
        self.inner.forget(caller, key).await
    }
}

/// A 5xx whose key cannot be forgotten at that moment (the store's database was
/// restarting) is answered at once, and the key is forgotten once the store answers
/// again: a retry then runs, instead of getting 409 `idempotency_in_progress` until
/// the running record expires (found by the PostgreSQL-restart fault scenario).
async fn a_key_the_store_could_not_forget_after_a_5xx_is_forgotten_once_it_answers() {
    let store = Arc::new(ForgetFails { inner: Default::default(), fails: AtomicUsize::new(2) });
    let calls = Arc::new(AtomicUsize::new(0));
    let handler = {
        let calls = calls.clone();
        move || async move {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::CREATED,
            }
        }
    };
    let layer = app_kernel::reliability::IdempotencyLayer::new(
        store.clone(),
        "/api/v1",
        Duration::from_secs(3600),
        Duration::from_secs(120),
    );
    let app = Router::new().route("/api/v1/orders", post(handler)).layer(layer);
    let post = || Request::post("/api/v1/orders").header("idempotency-key", "k-1").body(Body::from("{}")).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(send(&app, post()).await.status, 503);
    assert!(started.elapsed() < Duration::from_millis(500), "the 5xx waited for the store: {:?}", started.elapsed());
    // The store refused the forget twice; the key must be free again soon after.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let retried = loop {
        let reply = send(&app, post()).await;
        if reply.status != 409 || std::time::Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(retried.status, 201, "the retry ran: {:?}", retried.body);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the handler ran for the first request and the retry");
    assert_eq!(store.fails.load(Ordering::SeqCst), 0, "both refused forgets were tried again");
}

fn main() {
    let mut all = vec![
        test("a_repeat_gets_the_first_answer_and_the_handler_runs_once")
            .run(|_| a_repeat_gets_the_first_answer_and_the_handler_runs_once()),
        test("a_repeat_while_the_first_runs_gets_409_and_a_5xx_is_not_kept")
            .run(|_| a_repeat_while_the_first_runs_gets_409_and_a_5xx_is_not_kept()),
        test("an_oversize_body_with_a_key_is_413_and_keeps_nothing")
            .run(|_| an_oversize_body_with_a_key_is_413_and_keeps_nothing()),
        test("a_response_too_large_to_keep_is_answered_whole_and_a_repeat_does_not_run_again")
            .run(|_| a_response_too_large_to_keep_is_answered_whole_and_a_repeat_does_not_run_again()),
        test("a_caller_keeps_a_bounded_number_of_keys_and_its_newest_replay")
            .run(|_| a_caller_keeps_a_bounded_number_of_keys_and_its_newest_replay()),
        test("a_keyed_body_is_read_no_further_than_max_body_bytes_even_without_the_body_limit_part")
            .run(|_| a_keyed_body_is_read_no_further_than_max_body_bytes_even_without_the_body_limit_part()),
        test("one_key_from_two_users_makes_two_effects_and_never_replays_across_them")
            .run(|_| one_key_from_two_users_makes_two_effects_and_never_replays_across_them()),
        test("auth_routes_are_excluded_from_idempotency").run(|_| auth_routes_are_excluded_from_idempotency()),
    ];
    #[cfg(feature = "redis")]
    all.push(
        test("instances_sharing_redis_replay_each_others_answers")
            .needs(Server::Redis)
            .run(|urls| instances_sharing_redis_replay_each_others_answers(urls.get(Server::Redis))),
    );
    all.push(
        test("instances_sharing_postgres_without_redis_run_a_key_once")
            .needs(Server::Postgres)
            .run(|urls| instances_sharing_postgres_without_redis_run_a_key_once(urls.get(Server::Postgres))),
    );
    all.push(
        test("a_key_the_store_could_not_forget_after_a_5xx_is_forgotten_once_it_answers")
            .run(|_| a_key_the_store_could_not_forget_after_a_5xx_is_forgotten_once_it_answers()),
    );
    all.extend(stores::trials());
    trials::run(all);
}
