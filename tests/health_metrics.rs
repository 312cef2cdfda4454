//! Readiness checks, the metrics endpoint's protection and its labels.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use app_kernel::auth::{create_access_token, NewUser, ADMIN_ROLE, USER_ROLE};
use app_kernel::settings::MetricsProtection;
use app_kernel::Service;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use common::{assert_problem, get as get_path, send, test_settings};
use http::Request;
use serde_json::json;

async fn with_checks(
    builder: impl FnOnce(app_kernel::service::ServiceBuilder) -> app_kernel::service::ServiceBuilder,
) -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.features.ready_check_timeout = Duration::from_millis(200);
    let svc = builder(Service::builder("checks").settings(settings)).build().await.unwrap();
    (svc.router(), dir)
}

#[tokio::test]
async fn readyz_is_healthy_with_the_database_and_app_checks() {
    let (router, _dir) = with_checks(|b| b.health_check("cache", || async { Ok("cache warm".to_owned()) })).await;
    let r = get_path(&router, "/readyz").await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["checks"]["database"]["healthy"], true);
    assert_eq!(
        (&body["checks"]["cache"]["healthy"], &body["checks"]["cache"]["message"]),
        (&json!(true), &json!("cache warm"))
    );
    assert!(body["checks"]["database"]["latency_ms"].is_u64(), "each check says how long it took: {body}");
}

#[tokio::test]
async fn readyz_is_503_when_a_check_fails_or_hangs_and_says_which() {
    let (router, _dir) = with_checks(|b| {
        b.health_check("redis", || async { Err("redis error: connection refused".to_owned()) })
            .health_check("upstream", || async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok("never".to_owned())
            })
            .health_check("fine", || async { Ok("ok".to_owned()) })
    })
    .await;
    let started = std::time::Instant::now();
    let r = get_path(&router, "/readyz").await;
    assert!(started.elapsed() < Duration::from_secs(5), "a hanging check is cut off by its timeout");
    assert_eq!(r.status, 503);
    let body = r.json();
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["checks"]["redis"]["healthy"], false);
    let message = body["checks"]["redis"]["message"].as_str().unwrap();
    assert!(!message.contains("connection refused"), "a check's error text is not shown: {message}");
    assert_eq!(body["checks"]["upstream"]["healthy"], false);
    assert!(body["checks"]["upstream"]["message"].as_str().unwrap().contains("timed out"));
    assert_eq!(body["checks"]["fine"]["healthy"], true);
    assert_eq!(body["checks"]["database"]["healthy"], true);
}

/// The public readiness report names a failing database but not its error (that
/// goes to the log).
#[tokio::test]
async fn readyz_with_the_database_down_shows_no_error_text() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::builder("down").settings(test_settings(dir.path())).build().await.unwrap();
    svc.kernel().db().close().await;
    let error = svc.kernel().db().ping().await.expect_err("a closed database fails its ping").to_string();
    let r = get_path(&svc.router(), "/readyz").await;
    assert_eq!(r.status, 503);
    let body = r.json();
    assert_eq!(
        (body["status"].as_str(), body["checks"]["database"]["healthy"].as_bool()),
        (Some("unhealthy"), Some(false))
    );
    assert!(!r.text().contains(&error), "{error:?} shown in {}", r.text());
    assert!(!r.text().to_lowercase().contains("closed"), "{}", r.text());
}

fn metrics_request(peer: Option<&str>, auth: Option<&str>) -> Request<Body> {
    let mut req = Request::get("/metrics");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let mut req = req.body(Body::empty()).unwrap();
    if let Some(p) = peer {
        req.extensions_mut().insert(ConnectInfo(p.parse::<SocketAddr>().unwrap()));
    }
    req
}

/// A bearer header of a new user with `role` in the service's user store.
async fn bearer_of(svc: &common::TestService, role: &str) -> String {
    let store = svc.service.kernel().auth().users().unwrap().clone();
    let new = NewUser { username: role, email: None, password: "password-1", role };
    let user = store.create_user(&new).await.unwrap();
    let secret: secrecy::SecretString = common::TEST_SECRET.to_owned().into();
    format!("Bearer {}", create_access_token(&user, &secret, Duration::from_secs(300)).unwrap())
}

#[tokio::test]
async fn metrics_protection_matrix() {
    let loopback = Some("127.0.0.1:5000");
    let private = Some("10.1.2.3:5000");
    let public = Some("203.0.113.9:5000");
    let cases: &[(MetricsProtection, Option<&str>, Option<&str>, u16)] = &[
        (MetricsProtection::None, public, None, 200),
        (MetricsProtection::Internal, loopback, None, 200),
        (MetricsProtection::Internal, private, None, 200),
        (MetricsProtection::Internal, Some("[::1]:5000"), None, 200),
        (MetricsProtection::Internal, public, None, 403),
        (MetricsProtection::Internal, None, None, 403),
        (MetricsProtection::Admin, loopback, None, 401),
        (MetricsProtection::Admin, public, None, 401),
    ];
    let mut cases = cases.to_vec();
    // Bearer tokens of users that exist in each service's user store.
    cases.extend([
        (MetricsProtection::Admin, public, Some("Bearer not-a-valid-token"), 401),
        (MetricsProtection::Admin, public, Some("@user"), 403),
        (MetricsProtection::Admin, public, Some("@admin"), 200),
    ]);
    for (mode, peer, auth, want) in &cases {
        let svc = common::service(vec![], |s| s.features.protect_metrics = *mode).await;
        let auth = match *auth {
            Some("@user") => Some(bearer_of(&svc, USER_ROLE).await),
            Some("@admin") => Some(bearer_of(&svc, ADMIN_ROLE).await),
            other => other.map(str::to_owned),
        };
        let auth = auth.as_deref();
        let r = send(&svc.router(), metrics_request(*peer, auth)).await;
        assert_eq!(r.status.as_u16(), *want, "{mode:?} peer={peer:?} auth={auth:?}: {}", r.text());
        if *want == 200 {
            assert!(r.header("content-type").unwrap().starts_with("text/plain"));
        } else {
            let body = r.json();
            assert_eq!(body["status"], *want);
        }
        if *want == 401 {
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        }
    }
}

#[tokio::test]
async fn metrics_are_labelled_by_route_template_never_the_raw_path() {
    let widgets = Router::new().route("/widgets/{id}", get(|| async { "w" }));
    let svc = common::service(vec![widgets], |s| s.features.protect_metrics = MetricsProtection::None).await;
    let router = svc.router();
    for id in ["a1", "b2", "c3"] {
        assert_eq!(get_path(&router, &format!("/api/v1/widgets/{id}")).await.status, 200);
    }
    assert_problem(&get_path(&router, "/scanner/probe-7f3a").await, 404, "not_found");
    let text = get_path(&router, "/metrics").await.text();
    let line = text
        .lines()
        .find(|l| l.starts_with("http_requests_total{") && l.contains(r#"route="/api/v1/widgets/{id}""#))
        .unwrap_or_else(|| panic!("no templated series in:\n{text}"));
    assert!(line.contains(r#"method="GET""#) && line.contains(r#"status="200""#), "{line}");
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 3.0, "{line}");
    assert!(!text.contains("widgets/a1") && !text.contains("probe-7f3a"), "raw paths leaked");
    assert!(text.contains(r#"route="unmatched""#));
    assert!(text.contains("http_request_duration_seconds_bucket{"));
    assert!(text.contains("http_requests_in_flight"));
}
