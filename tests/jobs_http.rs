//! `GET /api/v1/jobs/{id}` per docs/CONTRACT.md: the job's user or an admin; 404 otherwise.

mod common;

use app_kernel::auth::{NewUser, UserIdentity, UserStore};
use app_kernel::jobs::{EnqueueOptions, JobContext, TaskError};
use axum::body::Body;
use http::{header, Request};
use serde_json::{json, Value};

async fn noop(_: Value, _: JobContext) -> Result<Value, TaskError> {
    Ok(json!({"ok": true}))
}

#[tokio::test]
async fn job_status_is_shown_to_its_user_and_admins_only() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::test_settings(dir.path());
    let service =
        app_kernel::Service::builder("jobs_http").settings(settings).task("noop", noop).build().await.unwrap();
    let kernel = service.kernel().clone();
    let router = service.router();
    let store = UserStore::new(kernel.db().clone());
    let user = |name: &'static str, role: &'static str| {
        let store = store.clone();
        async move {
            store.create_user(&NewUser { username: name, email: None, password: "password-1", role }).await.unwrap()
        }
    };
    let (alice, bob, root) = (user("alice", "user").await, user("bob", "user").await, user("root", "admin").await);
    let job = kernel.jobs().enqueue("noop", json!({}), EnqueueOptions::new().user_id(alice.id.clone())).await.unwrap();
    let token = |user: UserIdentity| kernel.auth().tokens().issue_access(&user).unwrap().token;
    let get = |token: Option<String>| {
        let mut req = Request::get(format!("/api/v1/jobs/{}", job.job_id));
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        req.body(Body::empty()).unwrap()
    };
    let anonymous = common::send(&router, get(None)).await;
    common::assert_problem(&anonymous, 401, "not_authenticated");
    let owner = common::send(&router, get(Some(token(alice.clone())))).await;
    assert_eq!(owner.status, 200, "{}", owner.text());
    let body = owner.json();
    assert_eq!(body["id"], json!(job.job_id));
    assert_eq!(body["task"], "noop");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["attempts"], 0);
    assert_eq!(body["priority"], "normal");
    assert!(body["created_at"].is_string() && body["updated_at"].is_string());
    let other = common::send(&router, get(Some(token(bob.clone())))).await;
    common::assert_problem(&other, 404, "not_found");
    let admin = common::send(&router, get(Some(token(root.clone())))).await;
    assert_eq!(admin.status, 200);
    kernel.worker().run_once().await.unwrap();
    let done = common::send(&router, get(Some(token(alice.clone())))).await.json();
    assert_eq!(done["status"], "done");
    assert_eq!(done["result"], json!({"ok": true}));
    let unknown = kernel.jobs().enqueue("nope", json!({}), EnqueueOptions::new()).await.unwrap_err();
    assert_eq!(app_kernel::ApiError::from(unknown).code(), "unknown_task");
}

async fn leaky(_: Value, _: JobContext) -> Result<Value, TaskError> {
    let e = std::io::Error::other("relation \"billing_secrets\" does not exist at 10.0.0.7:5432");
    Err(e)?
}

async fn declined(_: Value, _: JobContext) -> Result<Value, TaskError> {
    Err(TaskError::new("card declined"))
}

/// A job's `error` as its owner sees it: a task's own message (`TaskError::new`)
/// as written, an error converted with `?` (a database's, say) as a generic
/// message; the detail is for admins and the log.
#[tokio::test]
async fn a_failed_jobs_owner_sees_no_internal_error_text() {
    let dir = tempfile::tempdir().unwrap();
    let service = app_kernel::Service::builder("jobs_errors")
        .settings(common::test_settings(dir.path()))
        .task("leaky", leaky)
        .task("declined", declined)
        .build()
        .await
        .unwrap();
    let kernel = service.kernel().clone();
    let store = UserStore::new(kernel.db().clone());
    let new = |username, role| NewUser { username, email: None, password: "password-1", role };
    let alice = store.create_user(&new("alice", "user")).await.unwrap();
    let root = store.create_user(&new("root", "admin")).await.unwrap();
    let once = || EnqueueOptions::new().user_id(alice.id.clone()).max_attempts(1);
    let leaked = kernel.jobs().enqueue("leaky", json!({}), once()).await.unwrap().job_id;
    let said = kernel.jobs().enqueue("declined", json!({}), once()).await.unwrap().job_id;
    kernel.worker().run_once().await.unwrap();
    let router = service.router();
    let view = |id: &str, user: &UserIdentity| {
        let token = kernel.auth().tokens().issue_access(user).unwrap().token;
        let req = Request::get(format!("/api/v1/jobs/{id}")).header(header::AUTHORIZATION, format!("Bearer {token}"));
        common::send(&router, req.body(Body::empty()).unwrap())
    };
    let owner = view(&leaked, &alice).await.json();
    assert_eq!(owner["status"], "dead", "{owner}");
    let error = owner["error"].as_str().expect("an error is shown");
    assert!(!error.contains("billing_secrets") && !error.contains("10.0.0.7"), "internal text shown: {error}");
    let admin = view(&leaked, &root).await.json();
    assert!(admin["error"].as_str().unwrap().contains("billing_secrets"), "admins see the detail: {admin}");
    assert_eq!(view(&said, &alice).await.json()["error"], "card declined");
}
