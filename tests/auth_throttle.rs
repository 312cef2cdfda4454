//! The login throttle's contract, run on every backend: in process, and Redis
//! when `KERNEL_TEST_REDIS_URL` is set (CI). With Redis, two throttles (two
//! instances of a service) see each other's failures.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use app_kernel::auth::{AuthError, LoginThrottle, LoginThrottleBackend, LoginThrottleSettings, MemoryLoginThrottle};

fn settings(window: Duration) -> LoginThrottleSettings {
    let mut s = LoginThrottleSettings::default();
    s.max_failures_per_username = 2;
    s.max_failures_per_ip = 3;
    s.window = window;
    s
}

/// Each backend, fresh (its own key prefix on Redis).
async fn backends(test: &str) -> Vec<(&'static str, Arc<dyn LoginThrottleBackend>)> {
    #[allow(unused_mut)] // only the redis feature adds a backend
    let mut out: Vec<(&'static str, Arc<dyn LoginThrottleBackend>)> =
        vec![("memory", Arc::new(MemoryLoginThrottle::new(1000)))];
    #[cfg(feature = "redis")]
    if let Some(url) = common::service_url("KERNEL_TEST_REDIS_URL", test) {
        let prefix = format!("{}:", common::unique_name("throttle"));
        let redis = app_kernel::auth::RedisLoginThrottle::connect(&url, &prefix).await.expect("redis throttle");
        out.push(("redis", Arc::new(redis)));
    }
    #[cfg(not(feature = "redis"))]
    let _ = test;
    out
}

fn retry_after(result: Result<(), AuthError>) -> u64 {
    match result {
        Err(AuthError::Throttled { retry_after }) => retry_after,
        other => panic!("expected 429 throttled, got {other:?}"),
    }
}

#[tokio::test]
async fn username_limit_retry_after_and_success_reset() {
    for (name, backend) in backends("username_limit").await {
        let throttle = LoginThrottle::with_backend(settings(Duration::from_secs(900)), backend);
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(throttle.check(Some(ip), "ann").await, Ok(()), "{name}");
        throttle.record_failure(Some(ip), "Ann").await.unwrap();
        assert_eq!(throttle.check(Some(ip), "ann").await, Ok(()), "{name}: one failure is allowed");
        throttle.record_failure(Some(ip), " ann ").await.unwrap();
        let wait = retry_after(throttle.check(Some(ip), "ANN").await);
        assert!((898..=900).contains(&wait), "{name}: retry after {wait}");
        throttle.record_success("ann").await.unwrap();
        assert_eq!(throttle.check(Some(ip), "ann").await, Ok(()), "{name}: a success clears the username");
    }
}

#[tokio::test]
async fn address_limit_is_not_reset_by_a_success() {
    for (name, backend) in backends("address_limit").await {
        let throttle = LoginThrottle::with_backend(settings(Duration::from_secs(900)), backend);
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        for user in ["a", "b", "c"] {
            throttle.record_failure(Some(ip), user).await.unwrap();
        }
        throttle.record_success("d").await.unwrap();
        retry_after(throttle.check(Some(ip), "d").await);
        let other: IpAddr = "198.51.100.8".parse().unwrap();
        assert_eq!(throttle.check(Some(other), "d").await, Ok(()), "{name}: another address is free");
    }
}

#[tokio::test]
async fn failures_expire_with_the_window() {
    for (name, backend) in backends("window_expiry").await {
        let throttle = LoginThrottle::with_backend(settings(Duration::from_millis(400)), backend);
        throttle.record_failure(None, "eve").await.unwrap();
        throttle.record_failure(None, "eve").await.unwrap();
        retry_after(throttle.check(None, "eve").await);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(throttle.check(None, "eve").await, Ok(()), "{name}: the window slid past both failures");
    }
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn instances_sharing_redis_see_each_others_failures() {
    let Some(url) = common::service_url("KERNEL_TEST_REDIS_URL", "shared_throttle") else { return };
    let prefix = format!("{}:", common::unique_name("throttle"));
    let connect = || app_kernel::auth::RedisLoginThrottle::connect(&url, &prefix);
    let one = LoginThrottle::with_backend(settings(Duration::from_secs(60)), Arc::new(connect().await.unwrap()));
    let two = LoginThrottle::with_backend(settings(Duration::from_secs(60)), Arc::new(connect().await.unwrap()));
    one.record_failure(None, "mallory").await.unwrap();
    two.record_failure(None, "mallory").await.unwrap();
    retry_after(one.check(None, "mallory").await);
    retry_after(two.check(None, "mallory").await);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn an_unreachable_redis_is_a_clear_error() {
    let err = app_kernel::auth::RedisLoginThrottle::connect("redis://127.0.0.1:1", "x:").await.unwrap_err();
    assert!(err.to_string().contains("redis"), "{err}");
    let err = app_kernel::auth::RedisLoginThrottle::connect("not a url", "x:").await.unwrap_err();
    assert!(matches!(err, AuthError::Config(_)), "{err}");
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn two_services_with_one_redis_url_share_the_login_throttle() {
    use axum::body::Body;
    use http::Request;
    let Some(url) = common::service_url("KERNEL_TEST_REDIS_URL", "services_share_throttle") else { return };
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
