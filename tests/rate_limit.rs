//! The API rate limit: the store contract on every store (in process; on Redis as
//! `redis::NAME`, ignored when `KERNEL_TEST_REDIS_URL` is unset), then the HTTP
//! behaviour of docs/CONTRACT.md, and what the reliability layers do while their store
//! is down.

mod common;

use std::sync::Arc;
use std::time::Duration;

use app_kernel::auth::NewUser;
use app_kernel::reliability::{
    IdempotencyLayer, IdempotencyStore, MemoryRateLimitStore, RateLimitLayer, RateLimitStore, RateLimiter,
    ReliabilityError,
};
use axum::body::Body;
use axum::routing::get;
use axum::Router;
use common::trials::{self, test, Engine, Server};
use common::{assert_problem, send, service, Reply, TestService};
use http::Request;

/// The store of `on`, by name: in process, or on Redis with a key prefix of its own.
async fn stores(on: Engine) -> Vec<(&'static str, Arc<dyn RateLimitStore>)> {
    match on {
        Engine::Local => vec![("memory", Arc::new(MemoryRateLimitStore::default()))],
        #[cfg(feature = "redis")]
        Engine::Redis(url) => {
            let prefix = format!("{}:", common::unique_name("rl"));
            let store = app_kernel::reliability::RedisRateLimitStore::connect(&url, &prefix).await.expect("redis");
            vec![("redis", Arc::new(store))]
        }
        other => panic!("no rate limit store on {other:?}"),
    }
}

async fn a_store_counts_each_key_in_its_own_window(on: Engine) {
    for (name, store) in stores(on).await {
        let window = Duration::from_secs(1);
        let counts: Vec<u64> =
            [store.hit("a", window).await, store.hit("a", window).await, store.hit("b", window).await]
                .into_iter()
                .map(|r| r.unwrap().count)
                .collect();
        assert_eq!(counts, [1, 2, 1], "{name}");
        let third = store.hit("a", window).await.unwrap();
        assert_eq!(third.count, 3, "{name}");
        assert!(third.resets_in <= window && third.resets_in > Duration::ZERO, "{name}: {:?}", third.resets_in);
        tokio::time::sleep(window + Duration::from_millis(200)).await;
        assert_eq!(store.hit("a", window).await.unwrap().count, 1, "{name}: a new window");
    }
}

async fn a_store_loses_no_count_under_concurrent_hits(on: Engine) {
    for (name, store) in stores(on).await {
        let hits: Vec<_> = (0..100)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.hit("busy", Duration::from_secs(60)).await.unwrap().count })
            })
            .collect();
        let mut counts = Vec::new();
        for hit in hits {
            counts.push(hit.await.unwrap());
        }
        counts.sort_unstable();
        assert_eq!(counts, (1..=100).collect::<Vec<u64>>(), "{name}: each hit got its own count");
    }
}

fn app() -> Router<app_kernel::Kernel> {
    Router::new().route("/things", get(|| async { "things" }))
}

/// The same route with no kernel, for the layers alone.
fn plain() -> Router {
    Router::new().route("/things", get(|| async { "things" }))
}

async fn limited(edit: impl FnOnce(&mut app_kernel::settings::KernelSettings)) -> TestService {
    service(vec![app()], |s| {
        s.reliability.rate_limit_requests = 3;
        s.reliability.rate_limit_window_seconds = 60;
        edit(s);
    })
    .await
}

async fn call(svc: &TestService, path: &str, bearer: Option<&str>) -> Reply {
    let mut req = Request::get(path);
    if let Some(token) = bearer {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    send(&svc.router(), req.body(Body::empty()).unwrap()).await
}

fn limit_headers(r: &Reply) -> (Option<&str>, Option<&str>, Option<&str>) {
    (r.header("ratelimit-limit"), r.header("ratelimit-remaining"), r.header("ratelimit-reset"))
}

/// A user in `svc`'s store, and an access token for it.
async fn token(svc: &TestService, username: &str) -> String {
    let kernel = svc.service.kernel();
    let users = kernel.auth().users().unwrap().clone();
    let new = NewUser { username, email: None, password: "correct horse battery", role: "user" };
    let user = users.create_user(&new).await.expect("user");
    kernel.auth().tokens().issue_access(&user).expect("token").token
}

async fn api_routes_count_down_then_answer_429_with_retry_after() {
    let svc = limited(|_| {}).await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let r = call(&svc, "/api/v1/things", None).await;
        assert_eq!(r.status, 200);
        let (limit, left, reset) = limit_headers(&r);
        assert_eq!(limit, Some("3"));
        let reset: u64 = reset.unwrap().parse().unwrap();
        assert!((1..=60).contains(&reset), "{reset}");
        remaining.push(left.unwrap().to_owned());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let refused = call(&svc, "/api/v1/things", None).await;
    let body = assert_problem(&refused, 429, "rate_limited");
    assert!(body["detail"].as_str().unwrap().contains("3 requests per 60 seconds"), "{body}");
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(limit_headers(&refused).1, Some("0"));
    // The refusal carries the stack's headers like any other error.
    assert_eq!(refused.header("x-content-type-options"), Some("nosniff"));
    // Routes outside the API prefix are not counted.
    for _ in 0..5 {
        let health = call(&svc, "/healthz", None).await;
        assert_eq!(health.status, 200);
        assert_eq!(limit_headers(&health), (None, None, None));
    }
}

async fn authenticated_callers_are_counted_by_user() {
    let svc = limited(|_| {}).await;
    let (ann, bob) = (token(&svc, "ann").await, token(&svc, "bob").await);
    for _ in 0..3 {
        assert_eq!(call(&svc, "/api/v1/things", Some(&ann)).await.status, 200);
    }
    assert_eq!(call(&svc, "/api/v1/things", Some(&ann)).await.status, 429);
    // Bob, from the same address, has a window of his own; so do anonymous callers.
    assert_eq!(limit_headers(&call(&svc, "/api/v1/things", Some(&bob)).await).1, Some("2"));
    assert_eq!(limit_headers(&call(&svc, "/api/v1/things", None).await).1, Some("2"));
    // A bad token counts against the address, and the route still refuses it.
    let bad = call(&svc, "/api/v1/auth/me", Some("not-a-token")).await;
    assert_eq!(bad.status, 401);
    assert_eq!(limit_headers(&bad).1, Some("1"));
}

async fn the_limit_can_be_turned_off() {
    let svc = limited(|s| s.reliability.rate_limit_enabled = false).await;
    for _ in 0..10 {
        let r = call(&svc, "/api/v1/things", None).await;
        assert_eq!(r.status, 200);
        assert_eq!(limit_headers(&r), (None, None, None));
    }
}

/// Two instances of a service on one Redis count each caller together.
#[cfg(feature = "redis")]
async fn instances_sharing_redis_share_each_callers_count(url: String) {
    let prefix = format!("{}:", common::unique_name("rl"));
    let instance = || {
        let (url, prefix) = (url.clone(), prefix.clone());
        limited(move |s| {
            s.redis.url = Some(url.into());
            s.redis.key_prefix = prefix;
        })
    };
    let (one, two) = (instance().await, instance().await);
    let statuses = [
        call(&one, "/api/v1/things", None).await.status,
        call(&two, "/api/v1/things", None).await.status,
        call(&one, "/api/v1/things", None).await.status,
        call(&two, "/api/v1/things", None).await.status,
    ];
    assert_eq!(statuses.map(|s| s.as_u16()), [200, 200, 200, 429]);
}

/// A request from `peer` saying it forwards for `forwarded_for`.
async fn call_from(svc: &TestService, peer: &str, forwarded_for: &str) -> Reply {
    let mut req = Request::get("/api/v1/things").header("x-forwarded-for", forwarded_for).body(Body::empty()).unwrap();
    let peer: std::net::SocketAddr = peer.parse().unwrap();
    req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
    send(&svc.router(), req).await
}

async fn behind_a_trusted_proxy_each_client_counts_apart_and_others_cannot_pose_as_one() {
    let svc = limited(|s| s.server.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()]).await;
    let left = |r: &Reply| r.header("ratelimit-remaining").map(str::to_owned);
    // Two clients through the proxy at 10.0.0.1: a window each.
    for expected in ["2", "1"] {
        assert_eq!(left(&call_from(&svc, "10.0.0.1:5000", "203.0.113.1").await).as_deref(), Some(expected));
    }
    assert_eq!(left(&call_from(&svc, "10.0.0.1:5000", "spoofed, 203.0.113.2").await).as_deref(), Some("2"));
    // A client that is not a proxy counts as itself, whatever it forwards for.
    assert_eq!(left(&call_from(&svc, "198.51.100.9:5000", "203.0.113.1").await).as_deref(), Some("2"));
    assert_eq!(left(&call_from(&svc, "198.51.100.9:5000", "203.0.113.2").await).as_deref(), Some("1"));
}

/// A store that cannot be asked, as Redis is while it is down.
#[derive(Debug)]
struct Down;

#[async_trait::async_trait]
impl RateLimitStore for Down {
    async fn hit(&self, _: &str, _: Duration) -> Result<app_kernel::reliability::WindowCount, ReliabilityError> {
        Err(ReliabilityError::Store("connection refused".into()))
    }
}

#[async_trait::async_trait]
impl IdempotencyStore for Down {
    async fn begin(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: Duration,
    ) -> Result<app_kernel::reliability::Begin, ReliabilityError> {
        Err(ReliabilityError::Store("connection refused".into()))
    }
    async fn finish(
        &self,
        _: &str,
        _: &str,
        _: app_kernel::reliability::Record,
        _: Duration,
    ) -> Result<(), ReliabilityError> {
        Err(ReliabilityError::Store("connection refused".into()))
    }
    async fn forget(&self, _: &str, _: &str) -> Result<(), ReliabilityError> {
        Err(ReliabilityError::Store("connection refused".into()))
    }
}

async fn with_its_store_down_each_layer_lets_requests_through() {
    let limiter = RateLimiter::new(1, Duration::from_secs(60), Arc::new(Down));
    let limited = plain().layer(RateLimitLayer::new(limiter, "", Vec::new(), 60));
    for _ in 0..3 {
        let r = send(&limited, Request::get("/things").body(Body::empty()).unwrap()).await;
        assert_eq!((r.status.as_u16(), r.header("ratelimit-limit")), (200, None), "unlimited, not refused");
    }
    let counted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = counted.clone();
    let post = axum::routing::post(move || {
        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async { "made" }
    });
    let layer = IdempotencyLayer::new(Arc::new(Down), "", Duration::from_secs(60), Duration::from_secs(60));
    let keyed = Router::new().route("/orders", post).layer(layer);
    for _ in 0..2 {
        let req = Request::post("/orders").header("idempotency-key", "k1").body(Body::empty()).unwrap();
        let r = send(&keyed, req).await;
        assert_eq!((r.status.as_u16(), r.header("idempotent-replayed")), (200, None), "run as if it had no key");
    }
    assert_eq!(counted.load(std::sync::atomic::Ordering::SeqCst), 2);
}

fn main() {
    let mut all = Vec::new();
    all.extend(
        test("a_store_counts_each_key_in_its_own_window")
            .on_each(&[Server::Redis], a_store_counts_each_key_in_its_own_window),
    );
    all.extend(
        test("a_store_loses_no_count_under_concurrent_hits")
            .threads(4)
            .on_each(&[Server::Redis], a_store_loses_no_count_under_concurrent_hits),
    );
    all.push(
        test("api_routes_count_down_then_answer_429_with_retry_after")
            .run(|_| api_routes_count_down_then_answer_429_with_retry_after()),
    );
    all.push(test("authenticated_callers_are_counted_by_user").run(|_| authenticated_callers_are_counted_by_user()));
    all.push(test("the_limit_can_be_turned_off").run(|_| the_limit_can_be_turned_off()));
    #[cfg(feature = "redis")]
    all.push(
        test("instances_sharing_redis_share_each_callers_count")
            .needs(Server::Redis)
            .run(|urls| instances_sharing_redis_share_each_callers_count(urls.get(Server::Redis))),
    );
    all.push(
        test("behind_a_trusted_proxy_each_client_counts_apart_and_others_cannot_pose_as_one")
            .run(|_| behind_a_trusted_proxy_each_client_counts_apart_and_others_cannot_pose_as_one()),
    );
    all.push(
        test("with_its_store_down_each_layer_lets_requests_through")
            .run(|_| with_its_store_down_each_layer_lets_requests_through()),
    );
    trials::run(all);
}
