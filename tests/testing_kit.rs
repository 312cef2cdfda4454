//! The test kit (`app_kernel::testing`): two apps at once each see only their own
//! database, on SQLite, PostgreSQL and MariaDB (ignored when its `KERNEL_TEST_*_URL`
//! is unset); the schema or database is gone after `cleanup` and after a drop; users,
//! admins, jobs and the audit trail work as the kit says.

mod common;

use app_kernel::auth::CurrentUser;
use app_kernel::db::{ColumnKind, DatabaseKind, DatabaseSettings, EntityTable, Find, Row};
use app_kernel::jobs::{EnqueueOptions, JobClient, JobContext, TaskError, TaskOptions};
use app_kernel::testing::TestApp;
use app_kernel::{ApiError, Db, Routes, Service};
use axum::routing::get;
use axum::Json;
use common::trials::{self, test, Server};
use serde_json::{json, Value};

/// A small app: notes anyone signed in can list (so a note of another app would
/// show), and tasks that chain and fail.
fn notes_app() -> app_kernel::service::ServiceBuilder {
    async fn list(_: CurrentUser, db: Db) -> Result<Json<Vec<Row>>, ApiError> {
        Ok(Json(db.find_entities("notes", Find::new().sort("created_at", false)).await?))
    }
    async fn create(
        user: CurrentUser,
        db: Db,
        jobs: JobClient,
        Json(body): Json<Value>,
    ) -> Result<Json<Row>, ApiError> {
        let note = db.save_entity("notes", json!({"owner": user.id, "text": body["text"]})).await?;
        jobs.enqueue("stamp", json!({"id": note["id"]}), EnqueueOptions::new()).await?;
        Ok(Json(note))
    }
    async fn stamp(payload: Value, ctx: JobContext) -> Result<Value, TaskError> {
        let id = payload["id"].as_str().ok_or_else(|| TaskError::new("no id"))?;
        let mut note = ctx.db().get_entity("notes", id).await?.ok_or_else(|| TaskError::new("no note"))?;
        note.insert("stamped".into(), json!(true));
        ctx.db().save_entity("notes", note).await?;
        ctx.jobs().enqueue("count", json!({}), EnqueueOptions::new()).await?; // a job that enqueues a job
        Ok(json!({}))
    }
    let table = EntityTable::new("notes")
        .field("owner", ColumnKind::Text)
        .field("text", ColumnKind::Text)
        .field("stamped", ColumnKind::Bool);
    let fail_once = TaskOptions::new().max_attempts(1);
    let registry = app_kernel::jobs::JobRegistry::new()
        .task("stamp", stamp)
        .task("count", |_: Value, _| async { Ok::<_, TaskError>(json!({})) })
        .task_with("fail", fail_once, |_: Value, _| async { Err::<Value, _>(TaskError::new("boom")) });
    Service::builder("notes").table(table).routes(Routes::new().route("/notes", get(list).post(create))).tasks(registry)
}

async fn start(url: Option<&str>) -> TestApp {
    let builder = TestApp::builder(notes_app());
    match url {
        Some(url) => builder.database_url(url).build().await,
        None => builder.build().await,
    }
}

/// Whether the scratch `name` exists: the SQLite file, or the schema or database on the
/// server `url` reaches.
async fn exists(url: Option<&str>, name: &str) -> bool {
    let Some(url) = url else { return std::path::Path::new(name).exists() };
    let mut settings = DatabaseSettings::default();
    settings.kind = DatabaseKind::from_url(url).unwrap();
    settings.url = Some(url.to_owned().into());
    settings.pool_size = 1;
    let db = Db::connect(&settings, "kit-test").await.unwrap();
    let sql = "SELECT schema_name FROM information_schema.schemata WHERE schema_name = ?";
    let found = db.fetch_optional(sql, &[json!(name)]).await.unwrap().is_some();
    db.close().await;
    found
}

async fn two_apps_are_isolated_and_cleaned_up(url: Option<&str>) {
    let (a, b) = (start(url).await, start(url).await);
    assert_ne!(a.database_name(), b.database_name());
    assert!(exists(url, a.database_name()).await && exists(url, b.database_name()).await);

    // The same username in both: each app has its own accounts.
    let (ann_a, ann_b) = (a.user("ann").await, b.user("ann").await);
    a.post("/api/v1/notes").bearer(&ann_a.access_token).json(&json!({"text": "in a"})).send().await.assert_status(200);
    let in_a: Vec<Value> = a.get("/api/v1/notes").bearer(&ann_a.access_token).send().await.json();
    let in_b: Vec<Value> = b.get("/api/v1/notes").bearer(&ann_b.access_token).send().await.json();
    assert_eq!((in_a.len(), in_b.len()), (1, 0), "b sees none of a's notes");
    assert_eq!(in_a[0]["owner"], ann_a.id.as_str());
    // A's token is refused by b: that user id does not exist there.
    b.get("/api/v1/notes").bearer(&ann_a.access_token).send().await.assert_status(401);
    assert_eq!(b.run_jobs().await.ran(), 0, "b has none of a's jobs");
    assert_eq!(a.run_jobs().await.completed.len(), 2, "stamp, then the count it enqueued");

    let (name_a, name_b) = (a.database_name().to_owned(), b.database_name().to_owned());
    a.cleanup().await;
    assert!(!exists(url, &name_a).await, "cleanup dropped {name_a}");
    assert!(exists(url, &name_b).await, "b's is untouched");
    drop(b);
    assert!(!exists(url, &name_b).await, "dropping the app dropped {name_b}");
}

async fn sqlite_apps_are_isolated_and_cleaned_up() {
    two_apps_are_isolated_and_cleaned_up(None).await;
}

async fn postgres_apps_are_isolated_and_cleaned_up(url: String) {
    two_apps_are_isolated_and_cleaned_up(Some(&url)).await;
}

async fn mysql_apps_are_isolated_and_cleaned_up(url: String) {
    two_apps_are_isolated_and_cleaned_up(Some(&url)).await;
}

/// A test that panics still drops its app, and with it the database.
fn a_failed_test_drops_its_database() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let name = std::sync::Mutex::new(String::new());
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async {
            let app = start(None).await;
            *name.lock().unwrap() = app.database_name().to_owned();
            panic!("the test fails while its app is alive");
        })
    }));
    assert!(failed.is_err());
    let name = name.into_inner().unwrap();
    assert!(!name.is_empty() && !std::path::Path::new(&name).exists(), "{name} removed while unwinding");
}

async fn users_admins_jobs_and_the_audit_trail() {
    let app = TestApp::builder(notes_app()).settings(|s| s.features.enable_audit_routes = true).build().await;
    let (ann, root) = (app.user("ann").await, app.admin("root").await);
    assert_eq!((ann.role.as_str(), root.role.as_str()), ("user", "admin"));
    let me: Value = app.get("/api/v1/auth/me").bearer(&ann.access_token).send().await.json();
    assert_eq!((me["id"].as_str(), me["username"].as_str()), (Some(ann.id.as_str()), Some("ann")));
    app.get("/metrics").bearer(&ann.access_token).send().await.assert_status(403);
    app.get("/metrics").bearer(&root.access_token).send().await.assert_status(200);
    let refreshed = app.post("/api/v1/auth/refresh").json(&json!({"refresh_token": ann.refresh_token})).send().await;
    assert!(refreshed.assert_status(200).json::<Value>()["access_token"].is_string());

    // The kit's password logs in, and the login is in the trail.
    let login = json!({"username": ann.username, "password": ann.password});
    app.post("/api/v1/auth/login").json(&login).send().await.assert_status(200);
    let trail = app.audit().await;
    assert!(trail.iter().any(|e| e.action == "auth.login" && e.actor.as_deref() == Some(&ann.id)), "{trail:?}");
    let listed: Value = app.get("/api/v1/audit").bearer(&root.access_token).send().await.assert_status(200).json();
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(trail.len()), "the same trail as the route's");

    let failing = app.kernel().jobs().enqueue("fail", json!({}), EnqueueOptions::new()).await.unwrap();
    let report = app.run_jobs().await;
    assert_eq!((report.dead, report.completed.len()), (vec![failing.job_id], 0));
    assert_eq!(app.run_jobs().await.ran(), 0, "idle afterwards");
}

async fn the_apps_own_settings_are_kept_under_the_test_ones() {
    let mut settings = app_kernel::KernelSettings::default();
    settings.server.api_prefix = "/v2".into();
    settings.auth.token_secret = Some("the-apps-production-secret-of-32-bytes!".to_owned().into());
    let app = TestApp::new(notes_app().settings(settings)).await;
    let ann = app.user("ann").await;
    app.get("/v2/notes").bearer(&ann.access_token).send().await.assert_status(200);
    app.get("/api/v1/notes").bearer(&ann.access_token).send().await.assert_status(404);
    let claims = app_kernel::auth::decode_token(&ann.access_token, &app_kernel::testing::TEST_JWT_SECRET.into());
    assert!(claims.is_ok(), "signed with the test secret, not the app's");
}

fn main() {
    trials::run(vec![
        test("sqlite_apps_are_isolated_and_cleaned_up").run(|_| sqlite_apps_are_isolated_and_cleaned_up()),
        test("postgres_apps_are_isolated_and_cleaned_up")
            .needs(Server::Postgres)
            .run(|urls| postgres_apps_are_isolated_and_cleaned_up(urls.get(Server::Postgres))),
        test("mysql_apps_are_isolated_and_cleaned_up")
            .needs(Server::Mysql)
            .run(|urls| mysql_apps_are_isolated_and_cleaned_up(urls.get(Server::Mysql))),
        test("a_failed_test_drops_its_database").run_sync(|_| a_failed_test_drops_its_database()),
        test("users_admins_jobs_and_the_audit_trail").run(|_| users_admins_jobs_and_the_audit_trail()),
        test("the_apps_own_settings_are_kept_under_the_test_ones")
            .run(|_| the_apps_own_settings_are_kept_under_the_test_ones()),
    ]);
}
