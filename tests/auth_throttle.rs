//! The login throttle's contract, run on every backend: in process, and on Redis as
//! `redis::NAME` (ignored when `KERNEL_TEST_REDIS_URL` is unset). With Redis, two
//! throttles (two instances of a service) see each other's failures. Then through HTTP: parallel
//! wrong passwords are verified no more often than the limit, a stranger from
//! elsewhere cannot lock a user out, and tokens do not lift an address's limit.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use app_kernel::auth::{AuthError, LoginThrottle, LoginThrottleBackend, LoginThrottleSettings, MemoryLoginThrottle};
use axum::body::Body;
use common::trials::{self, test, Engine, Server};
use http::Request;

fn settings(window: Duration) -> LoginThrottleSettings {
    let mut s = LoginThrottleSettings::default();
    s.max_failures_per_username = 2;
    s.max_failures_per_ip = 3;
    s.window = window;
    s
}

/// The backend of `on`, fresh (its own key prefix on Redis).
async fn backends(on: Engine) -> Vec<(&'static str, Arc<dyn LoginThrottleBackend>)> {
    match on {
        Engine::Local => vec![("memory", Arc::new(MemoryLoginThrottle::new(1000)))],
        #[cfg(feature = "redis")]
        Engine::Redis(url) => {
            let prefix = format!("{}:", common::unique_name("throttle"));
            let redis = app_kernel::auth::RedisLoginThrottle::connect(&url, &prefix).await.expect("redis throttle");
            vec![("redis", Arc::new(redis))]
        }
        other => panic!("no login throttle on {other:?}"),
    }
}

fn retry_after<T: std::fmt::Debug>(result: Result<T, AuthError>) -> u64 {
    match result {
        Err(AuthError::Throttled { retry_after }) => retry_after,
        other => panic!("expected 429 throttled, got {other:?}"),
    }
}

async fn username_limit_per_address_retry_after_and_success_reset(on: Engine) {
    for (name, backend) in backends(on).await {
        let throttle = LoginThrottle::with_backend(settings(Duration::from_secs(900)), backend);
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        drop(throttle.begin(Some(ip), "Ann").await.unwrap());
        drop(throttle.begin(Some(ip), " ａｎｎ ").await.unwrap());
        let wait = retry_after(throttle.begin(Some(ip), "ANN").await);
        assert!((898..=900).contains(&wait), "{name}: retry after {wait}");
        let other: IpAddr = "198.51.100.200".parse().unwrap();
        let attempt = throttle.begin(Some(other), "ann").await.expect("a stranger elsewhere locks nobody out");
        throttle.succeeded(attempt).await.unwrap();
        for _ in 0..3 {
            let attempt = throttle.begin(Some(other), "ann").await.expect("successes are not failures");
            throttle.succeeded(attempt).await.unwrap();
        }
    }
}

async fn address_limit_is_not_reset_by_a_success(on: Engine) {
    for (name, backend) in backends(on).await {
        let throttle = LoginThrottle::with_backend(settings(Duration::from_secs(900)), backend);
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let ok = throttle.begin(Some(ip), "d").await.unwrap();
        for user in ["a", "b"] {
            drop(throttle.begin(Some(ip), user).await.unwrap());
        }
        throttle.succeeded(ok).await.unwrap();
        drop(throttle.begin(Some(ip), "c").await.unwrap());
        retry_after(throttle.begin(Some(ip), "d").await);
        let other: IpAddr = "198.51.100.8".parse().unwrap();
        assert!(throttle.begin(Some(other), "d").await.is_ok(), "{name}: another address is free");
    }
}

async fn failures_expire_with_the_window(on: Engine) {
    for (name, backend) in backends(on).await {
        let throttle = LoginThrottle::with_backend(settings(Duration::from_millis(400)), backend);
        drop(throttle.begin(None, "eve").await.unwrap());
        drop(throttle.begin(None, "eve").await.unwrap());
        retry_after(throttle.begin(None, "eve").await);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(throttle.begin(None, "eve").await.is_ok(), "{name}: the window slid past both failures");
    }
}

async fn parallel_attempts_reserve_no_more_than_the_limit(on: Engine) {
    for (name, backend) in backends(on).await {
        let throttle = LoginThrottle::with_backend(settings(Duration::from_secs(60)), backend);
        let ip: IpAddr = "192.0.2.50".parse().unwrap();
        let tries = (0..40).map(|_| throttle.begin(Some(ip), "ann"));
        let passed = futures::future::join_all(tries).await.into_iter().filter(Result::is_ok).count();
        assert_eq!(passed, 2, "{name}: one username from one address");
        let other: IpAddr = "192.0.2.51".parse().unwrap();
        let names: Vec<String> = (0..40).map(|i| format!("user{i}")).collect();
        let tries = names.iter().map(|name| throttle.begin(Some(other), name));
        let passed = futures::future::join_all(tries).await.into_iter().filter(Result::is_ok).count();
        assert_eq!(passed, 3, "{name}: one address");
    }
}

#[cfg(feature = "redis")]
async fn instances_sharing_redis_see_each_others_failures(url: String) {
    let prefix = format!("{}:", common::unique_name("throttle"));
    let connect = || app_kernel::auth::RedisLoginThrottle::connect(&url, &prefix);
    let one = LoginThrottle::with_backend(settings(Duration::from_secs(60)), Arc::new(connect().await.unwrap()));
    let two = LoginThrottle::with_backend(settings(Duration::from_secs(60)), Arc::new(connect().await.unwrap()));
    drop(one.begin(None, "mallory").await.unwrap());
    drop(two.begin(None, "mallory").await.unwrap());
    retry_after(one.begin(None, "mallory").await);
    retry_after(two.begin(None, "mallory").await);
}

#[cfg(feature = "redis")]
async fn an_unreachable_redis_is_a_clear_error() {
    let err = app_kernel::auth::RedisLoginThrottle::connect("redis://127.0.0.1:1", "x:").await.unwrap_err();
    assert!(err.to_string().contains("redis"), "{err}");
    let err = app_kernel::auth::RedisLoginThrottle::connect("not a url", "x:").await.unwrap_err();
    assert!(matches!(err, AuthError::Config(_)), "{err}");
}

#[cfg(feature = "redis")]
async fn two_services_with_one_redis_url_share_the_login_throttle(url: String) {
    let prefix = format!("{}:", common::unique_name("svc"));
    let with_redis = |s: &mut app_kernel::settings::KernelSettings| {
        s.redis.url = Some(url.clone().into());
        s.redis.key_prefix = prefix.clone();
    };
    let one = common::service(vec![], with_redis).await;
    let two = common::service(vec![], with_redis).await;
    let login = |router: axum::Router| async move {
        let body = r#"{"username":"nobody@example.com","password":"wrong-password"}"#;
        let req = Request::post("/api/v1/auth/login")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        common::send(&router, req).await
    };
    for _ in 0..5 {
        common::assert_problem(&login(one.router()).await, 401, "invalid_credentials");
    }
    let reply = login(two.router()).await;
    common::assert_problem(&reply, 429, "login_throttled");
    assert!(reply.header("retry-after").is_some());
}

fn login_from(ip: Option<&str>, username: &str, password: &str, bearer: Option<&str>) -> Request<Body> {
    let body = serde_json::json!({"username": username, "password": password}).to_string();
    let mut req = Request::post("/api/v1/auth/login").header("content-type", "application/json");
    if let Some(token) = bearer {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let mut req = req.body(Body::from(body)).unwrap();
    if let Some(ip) = ip {
        let addr: std::net::SocketAddr = format!("{ip}:40000").parse().unwrap();
        req.extensions_mut().insert(axum::extract::ConnectInfo(addr));
    }
    req
}

async fn register(router: &axum::Router, username: &str) {
    let body = serde_json::json!({"username": username, "password": "correct horse"}).to_string();
    let req = Request::post("/api/v1/auth/register").header("content-type", "application/json");
    let reply = common::send(router, req.body(Body::from(body)).unwrap()).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
}

fn open(s: &mut app_kernel::settings::KernelSettings) {
    s.features.allow_self_signup = true;
}

async fn parallel_wrong_passwords_are_checked_no_more_often_than_the_limit() {
    let svc = common::service(vec![], open).await;
    let router = svc.router();
    register(&router, "ann").await;
    let tries = (0..40).map(|_| common::send(&router, login_from(Some("192.0.2.7"), "ann", "wrong horse", None)));
    let statuses: Vec<u16> = futures::future::join_all(tries).await.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 35, "{statuses:?}");

    let tries = (0..100)
        .map(|i| common::send(&router, login_from(Some("192.0.2.8"), &format!("user{i}"), "wrong horse", None)));
    let statuses: Vec<u16> = futures::future::join_all(tries).await.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 20, "one address: {statuses:?}");
}

async fn a_stranger_elsewhere_cannot_lock_a_user_out() {
    let svc = common::service(vec![], open).await;
    let router = svc.router();
    register(&router, "admin").await;
    for _ in 0..5 {
        let reply = common::send(&router, login_from(Some("203.0.113.66"), "Admin", "guess", None)).await;
        common::assert_problem(&reply, 401, "invalid_credentials");
    }
    let reply = common::send(&router, login_from(Some("203.0.113.66"), "admin", "correct horse", None)).await;
    common::assert_problem(&reply, 429, "login_throttled");
    let reply = common::send(&router, login_from(Some("198.51.100.2"), "admin", "correct horse", None)).await;
    assert_eq!(reply.status, 200, "the user, from their own address: {}", reply.text());
}

async fn tokens_of_throwaway_accounts_do_not_lift_the_login_limit_of_an_address() {
    let svc = common::service(vec![], |s| {
        open(s);
        s.reliability.rate_limit_requests = 3;
    })
    .await;
    let router = svc.router();
    let mut tokens = Vec::new();
    for (i, name) in ["throwaway1", "throwaway2"].iter().enumerate() {
        register(&router, name).await;
        let ip = format!("192.0.2.{}", 100 + i);
        let reply = common::send(&router, login_from(Some(&ip), name, "correct horse", None)).await;
        tokens.push(reply.json()["access_token"].as_str().unwrap().to_owned());
    }
    let attacker = Some("203.0.113.77");
    for _ in 0..3 {
        let reply = common::send(&router, login_from(attacker, "throwaway1", "correct horse", Some(&tokens[0]))).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let reply = common::send(&router, login_from(attacker, "throwaway2", "correct horse", Some(&tokens[1]))).await;
    common::assert_problem(&reply, 429, "rate_limited");
}

fn main() {
    let mut all = Vec::new();
    all.extend(
        test("username_limit_per_address_retry_after_and_success_reset")
            .on_each(&[Server::Redis], username_limit_per_address_retry_after_and_success_reset),
    );
    all.extend(
        test("address_limit_is_not_reset_by_a_success")
            .on_each(&[Server::Redis], address_limit_is_not_reset_by_a_success),
    );
    all.extend(test("failures_expire_with_the_window").on_each(&[Server::Redis], failures_expire_with_the_window));
    all.extend(
        test("parallel_attempts_reserve_no_more_than_the_limit")
            .on_each(&[Server::Redis], parallel_attempts_reserve_no_more_than_the_limit),
    );
    #[cfg(feature = "redis")]
    all.push(
        test("instances_sharing_redis_see_each_others_failures")
            .needs(Server::Redis)
            .run(|urls| instances_sharing_redis_see_each_others_failures(urls.get(Server::Redis))),
    );
    #[cfg(feature = "redis")]
    all.push(test("an_unreachable_redis_is_a_clear_error").run(|_| an_unreachable_redis_is_a_clear_error()));
    #[cfg(feature = "redis")]
    all.push(
        test("two_services_with_one_redis_url_share_the_login_throttle")
            .needs(Server::Redis)
            .run(|urls| two_services_with_one_redis_url_share_the_login_throttle(urls.get(Server::Redis))),
    );
    all.push(
        test("parallel_wrong_passwords_are_checked_no_more_often_than_the_limit")
            .run(|_| parallel_wrong_passwords_are_checked_no_more_often_than_the_limit()),
    );
    all.push(
        test("a_stranger_elsewhere_cannot_lock_a_user_out").run(|_| a_stranger_elsewhere_cannot_lock_a_user_out()),
    );
    all.push(
        test("tokens_of_throwaway_accounts_do_not_lift_the_login_limit_of_an_address")
            .run(|_| tokens_of_throwaway_accounts_do_not_lift_the_login_limit_of_an_address()),
    );
    trials::run(all);
}
