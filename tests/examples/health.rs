//! The `health_checks` example as a process: `/readyz` reports its own checks beside
//! the database's, healthy and unhealthy, without their private messages.

use serde_json::{json, Value};

/// A check's `healthy` and `message` in a `/readyz` body.
fn check(body: &Value, name: &str) -> (bool, String) {
    let check = &body["checks"][name];
    let healthy = check["healthy"].as_bool().unwrap_or_else(|| panic!("no check {name}: {body}"));
    (healthy, check["message"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn readyz_reports_the_apps_checks_healthy_and_unhealthy() {
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_addr = upstream.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let drain = dir.path().join("drain");
    let env = [("UPSTREAM_ADDR", upstream_addr.as_str()), ("DRAIN_FILE", drain.to_str().unwrap())];
    let svc = super::start_in("health_checks", dir, &env);
    let client = crate::common::http_client();
    let ready = || async {
        let r = client.get(svc.url("/readyz")).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };

    let (status, body) = ready().await;
    assert_eq!((status, &body["status"]), (200, &json!("healthy")), "{body}");
    assert_eq!(check(&body, "upstream"), (true, format!("{upstream_addr} reachable")));
    assert_eq!(check(&body, "drain"), (true, "serving".to_owned()));
    assert_eq!(body["checks"]["database"]["healthy"], true);

    std::fs::write(&drain, b"").unwrap();
    let (status, body) = ready().await;
    assert_eq!((status, &body["status"]), (503, &json!("unhealthy")), "{body}");
    assert_eq!(check(&body, "drain"), (false, "check failed".to_owned()), "its own message goes to the log");
    assert_eq!(body["checks"]["upstream"]["healthy"], true);
    let logged = svc.log_line(|v| v["check"] == "drain").expect("the failed check is logged with its name");
    assert!(logged["error"].as_str().is_some_and(|e| e.starts_with("draining")), "{logged}");
    assert_eq!(client.get(svc.url("/healthz")).send().await.unwrap().status(), 200, "still alive");

    std::fs::remove_file(&drain).unwrap();
    drop(upstream); // the upstream goes away: connections to its port are refused
    let (status, body) = ready().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(check(&body, "upstream"), (false, "check failed".to_owned()));
    assert_eq!(body["checks"]["drain"]["healthy"], true);
    svc.stop();
}
