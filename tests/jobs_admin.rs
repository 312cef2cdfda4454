//! The admins' jobs view per docs/CONTRACT.md: the JSON routes under
//! `/api/v1/admin/jobs` (admins only), and the page at `/admin/jobs` in a real
//! browser (`browser.rs`).

#[path = "jobs_admin/browser.rs"]
mod browser;
mod common;

use app_kernel::jobs::{EnqueueOptions, JobContext, TaskError};
use app_kernel::testing::{TestApp, TestResponse};
use app_kernel::Service;
use http::Method;
use serde_json::{json, Value};

async fn echo(payload: Value, _: JobContext) -> Result<Value, TaskError> {
    Ok(json!({"echo": payload}))
}

async fn boom(_: Value, _: JobContext) -> Result<Value, TaskError> {
    Err(TaskError::new("payment gateway said <b>no</b>"))
}

async fn app() -> TestApp {
    TestApp::new(Service::builder("jobs_admin").task("echo", echo).task("boom", boom)).await
}

/// Enqueues `task` once; its id.
async fn enqueue(app: &TestApp, task: &str, payload: Value) -> String {
    let opts = EnqueueOptions::new().max_attempts(1);
    app.kernel().jobs().enqueue(task, payload, opts).await.unwrap().job_id
}

#[track_caller]
fn problem(res: &TestResponse, status: u16, code: &str) -> Value {
    res.assert_status(status);
    assert_eq!(res.header("content-type"), Some("application/problem+json"), "{}", res.text());
    let body: Value = res.json();
    assert_eq!(body["code"], code, "{body}");
    body
}

#[tokio::test]
async fn every_route_answers_401_without_a_token_and_403_to_a_user() {
    let app = app().await;
    let job = enqueue(&app, "echo", json!({})).await;
    let user = app.user("plain").await;
    let routes = [
        (Method::GET, "/api/v1/admin/jobs".to_owned()),
        (Method::GET, "/api/v1/admin/jobs?status=pending".to_owned()),
        (Method::DELETE, "/api/v1/admin/jobs?before=2999-01-01T00:00:00Z".to_owned()),
        (Method::GET, format!("/api/v1/admin/jobs/{job}")),
        (Method::POST, format!("/api/v1/admin/jobs/{job}/retry")),
        (Method::POST, format!("/api/v1/admin/jobs/{job}/cancel")),
        // Bad input is not looked at before the caller is known to be an admin.
        (Method::GET, "/api/v1/admin/jobs?limit=100000&cursor=junk".to_owned()),
    ];
    for (method, path) in routes {
        let anonymous = app.request(method.clone(), &path).send().await;
        problem(&anonymous, 401, "not_authenticated");
        let plain = app.request(method.clone(), &path).bearer(&user.access_token).send().await;
        problem(&plain, 403, "not_admin");
        assert!(!plain.text().contains(&job), "{method} {path}: nothing about the job leaks");
    }
    let status = app.kernel().jobs().status(&job).await.unwrap().unwrap();
    assert_eq!(status.status.as_str(), "pending", "no refused request changed the job");
}

#[tokio::test]
async fn admins_list_filter_and_page_through_jobs() {
    let app = app().await;
    let admin = app.admin("root").await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(enqueue(&app, "echo", json!({"n": n})).await);
    }
    for n in 0..2 {
        ids.push(enqueue(&app, "boom", json!({"card": n})).await);
    }
    app.run_jobs().await;
    ids.reverse(); // newest first
    let get = |path: String| app.get(&path).bearer(&admin.access_token).send();
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for round in 0.. {
        assert!(round < 10, "pages never end");
        let res = get(format!("/api/v1/admin/jobs?limit=2&cursor={cursor}")).await;
        let body: Value = res.assert_status(200).json();
        let items = body["items"].as_array().unwrap();
        assert!(items.len() <= 2, "{body}");
        seen.extend(items.iter().map(|j| j["id"].as_str().unwrap().to_owned()));
        match body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every job once, newest first");
    let dead: Value = get("/api/v1/admin/jobs?status=dead".into()).await.assert_status(200).json();
    let dead = dead["items"].as_array().unwrap().clone();
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0]["id"], json!(ids[0]));
    assert_eq!(dead[0]["error"], "payment gateway said <b>no</b>");
    assert_eq!(dead[0]["payload"], json!({"card": 1}));
    assert_eq!(dead[0]["attempts"], 1);
    assert!(dead[0]["created_at"].as_str().unwrap().ends_with('Z'));
    let echoes: Value = get("/api/v1/admin/jobs?task=echo&status=done".into()).await.assert_status(200).json();
    let echoes: Vec<&str> = echoes["items"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(echoes, ids[2..].iter().map(String::as_str).collect::<Vec<_>>());
    let one: Value = get(format!("/api/v1/admin/jobs/{}", ids[4])).await.assert_status(200).json();
    assert_eq!(one["result"], json!({"echo": {"n": 0}}));
    assert_eq!(one["status"], "done");
    for key in ["payload", "max_attempts", "timeout_ms", "priority", "run_at", "updated_at", "user_id", "trace_parent"]
    {
        assert!(one.get(key).is_some(), "{key} missing from {one}");
    }
    problem(&get("/api/v1/admin/jobs/no-such-job".into()).await, 404, "not_found");
}

#[tokio::test]
async fn admins_retry_cancel_and_purge_jobs() {
    let app = app().await;
    let admin = app.admin("root").await;
    let owner = app.user("owner").await;
    let send = |method: Method, path: String| app.request(method, &path).bearer(&admin.access_token).send();
    let dead = enqueue(&app, "boom", json!({})).await;
    app.run_jobs().await;
    let retried = send(Method::POST, format!("/api/v1/admin/jobs/{dead}/retry")).await;
    let body: Value = retried.assert_status(200).json();
    assert_eq!(body["status"], "pending");
    assert_eq!((body["attempts"].clone(), body["max_attempts"].clone()), (json!(1), json!(2)));
    let again = send(Method::POST, format!("/api/v1/admin/jobs/{dead}/retry")).await;
    let conflict = problem(&again, 409, "job_status_conflict");
    assert!(conflict["detail"].as_str().unwrap().contains("pending"), "{conflict}");
    let report = app.run_jobs().await;
    assert_eq!(report.dead, vec![dead.clone()], "the retried job ran once more");

    let opts = EnqueueOptions::new().user_id(owner.id.clone()).delay(std::time::Duration::from_secs(600));
    let waiting = app.kernel().jobs().enqueue("echo", json!({}), opts).await.unwrap().job_id;
    let cancelled = send(Method::POST, format!("/api/v1/admin/jobs/{waiting}/cancel")).await;
    assert_eq!(cancelled.assert_status(200).json::<Value>()["status"], "cancelled");
    problem(&send(Method::POST, format!("/api/v1/admin/jobs/{waiting}/cancel")).await, 409, "job_status_conflict");
    problem(&send(Method::POST, format!("/api/v1/admin/jobs/{dead}/cancel")).await, 409, "job_status_conflict");
    let seen_by_owner = app.get(&format!("/api/v1/jobs/{waiting}")).bearer(&owner.access_token).send().await;
    assert_eq!(seen_by_owner.assert_status(200).json::<Value>()["status"], "cancelled", "the owner route");
    for verb in ["retry", "cancel"] {
        problem(&send(Method::POST, format!("/api/v1/admin/jobs/nope/{verb}")).await, 404, "not_found");
    }

    let pending = enqueue(&app, "echo", json!({})).await;
    let past = send(Method::DELETE, "/api/v1/admin/jobs?before=2000-01-01T00:00:00Z".into()).await;
    assert_eq!(past.assert_status(200).json::<Value>(), json!({"deleted": 0}));
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(5)).to_rfc3339();
    let purged = send(Method::DELETE, format!("/api/v1/admin/jobs?before={}", soon.replace('+', "%2B"))).await;
    assert_eq!(purged.assert_status(200).json::<Value>(), json!({"deleted": 2}), "the dead and the cancelled job");
    problem(&send(Method::GET, format!("/api/v1/admin/jobs/{dead}")).await, 404, "not_found");
    send(Method::GET, format!("/api/v1/admin/jobs/{pending}")).await.assert_status(200);

    let trail: Vec<(String, Option<String>, Option<String>)> = app
        .audit()
        .await
        .into_iter()
        .filter(|e| e.action.starts_with("jobs."))
        .map(|e| (e.action, e.actor, e.resource))
        .collect();
    let root = Some(admin.id.clone());
    for expected in [
        ("jobs.retry".to_owned(), root.clone(), Some(format!("jobs/{dead}"))),
        ("jobs.cancel".to_owned(), root.clone(), Some(format!("jobs/{waiting}"))),
        ("jobs.purge".to_owned(), root.clone(), None),
    ] {
        assert!(trail.contains(&expected), "{expected:?} not in the audit trail {trail:?}");
    }
    assert_eq!(trail.len(), 4, "refused changes are not audited (two purges): {trail:?}");
}

#[tokio::test]
async fn hostile_input_gets_a_precise_4xx() {
    let app = app().await;
    let admin = app.admin("root").await;
    let forged = base64_url("j1:zzz' OR 1=1 --");
    let cases = [
        (Method::GET, "/api/v1/admin/jobs?cursor=not-a-cursor!".to_owned(), "cursor"),
        (Method::GET, "/api/v1/admin/jobs?cursor=AAAA".to_owned(), "cursor"),
        (Method::GET, "/api/v1/admin/jobs?limit=100000".to_owned(), "limit"),
        (Method::GET, "/api/v1/admin/jobs?limit=0".to_owned(), "limit"),
        (Method::GET, "/api/v1/admin/jobs?limit=-1".to_owned(), "limit"),
        (Method::GET, "/api/v1/admin/jobs?limit=ten".to_owned(), "limit"),
        (Method::GET, "/api/v1/admin/jobs?status=exploded".to_owned(), "status"),
        (Method::GET, "/api/v1/admin/jobs?status=DONE".to_owned(), "status"),
        (Method::DELETE, "/api/v1/admin/jobs".to_owned(), "before"),
        (Method::DELETE, "/api/v1/admin/jobs?before=yesterday".to_owned(), "before"),
        (Method::DELETE, "/api/v1/admin/jobs?before=2024-13-01T00:00:00Z".to_owned(), "before"),
    ];
    for (method, path, field) in cases {
        let res = app.request(method.clone(), &path).bearer(&admin.access_token).send().await;
        let body = problem(&res, 422, "validation_failed");
        assert_eq!(body["errors"][0]["loc"], json!(["query", field]), "{method} {path}: {body}");
    }
    let twice = app.get("/api/v1/admin/jobs?limit=1&limit=2").bearer(&admin.access_token).send().await;
    assert!(twice.status().is_client_error(), "{}", twice.text());
    assert_eq!(twice.header("content-type"), Some("application/problem+json"));
    // A well-formed cursor naming an id that does not exist is just a place in the order.
    let res = app.get(&format!("/api/v1/admin/jobs?cursor={forged}")).bearer(&admin.access_token).send().await;
    assert_eq!(res.assert_status(200).json::<Value>()["items"], json!([]));
    let long = "x".repeat(5000);
    let res = app.get(&format!("/api/v1/admin/jobs?task={long}")).bearer(&admin.access_token).send().await;
    assert_eq!(res.assert_status(200).json::<Value>()["items"], json!([]));
}

/// The page is served to anyone (it holds no data), compiled in, with a CSP that
/// allows this origin's script and styles only; the routes are in `/openapi.json`.
#[tokio::test]
async fn the_page_holds_no_data_and_the_routes_are_documented() {
    let app = app().await;
    let job = enqueue(&app, "echo", json!({"secret": "s3cr3t"})).await;
    let page = app.get("/admin/jobs").send().await;
    page.assert_status(200);
    let csp = page.header("content-security-policy").unwrap();
    for directive in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    let html = page.text();
    assert!(html.contains(r#"data-api="/api/v1""#), "{html}");
    assert!(!html.contains(&job) && !html.contains("s3cr3t"));
    for asset in ["/admin/jobs/app.js", "/admin/jobs/app.css"] {
        let res = app.get(asset).send().await;
        res.assert_status(200);
        assert!(res.header("content-security-policy").is_some(), "{asset}");
    }
    let doc: Value = app.get("/openapi.json").send().await.assert_status(200).json();
    for (path, method) in [
        ("/api/v1/admin/jobs", "get"),
        ("/api/v1/admin/jobs", "delete"),
        ("/api/v1/admin/jobs/{id}", "get"),
        ("/api/v1/admin/jobs/{id}/retry", "post"),
        ("/api/v1/admin/jobs/{id}/cancel", "post"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not documented");
        assert!(op["responses"]["403"].is_object(), "{method} {path}: 403 undocumented");
    }
    // What code generators check documents with (`.ci/run` installs it).
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&doc).unwrap()).unwrap();
    let check = std::process::Command::new("python3").args(["-m", "openapi_spec_validator"]).arg(file.path()).output();
    let check = check.unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
    assert!(check.status.success(), "openapi-spec-validator refused the document:\n{said}");
}

#[tokio::test]
async fn the_view_can_be_turned_off() {
    let app = TestApp::builder(Service::builder("jobs_admin_off").task("echo", echo))
        .settings(|s| s.features.enable_jobs_admin = false)
        .build()
        .await;
    let admin = app.admin("root").await;
    app.get("/api/v1/admin/jobs").bearer(&admin.access_token).send().await.assert_status(404);
    app.get("/admin/jobs").send().await.assert_status(404);
}

fn base64_url(text: &str) -> String {
    data_encoding::BASE64URL_NOPAD.encode(text.as_bytes())
}

/// With an empty API prefix the JSON list has `/admin/jobs`, and the page moves to
/// `/admin/jobs/page`.
#[tokio::test]
async fn with_an_empty_prefix_the_page_moves_aside() {
    let app = TestApp::builder(Service::builder("jobs_admin_root").task("echo", echo))
        .settings(|s| s.server.api_prefix = String::new())
        .build()
        .await;
    let admin = app.admin("root").await;
    let job = enqueue(&app, "echo", json!({})).await;
    let list: Value = app.get("/admin/jobs").bearer(&admin.access_token).send().await.assert_status(200).json();
    assert_eq!(list["items"][0]["id"], json!(job));
    let page = app.get("/admin/jobs/page").send().await;
    assert!(page.assert_status(200).text().contains(r#"<script src="/admin/jobs/page/app.js""#), "{}", page.text());
    app.get("/admin/jobs/page/app.js").send().await.assert_status(200);
    app.get(&format!("/admin/jobs/{job}")).bearer(&admin.access_token).send().await.assert_status(200);
}
