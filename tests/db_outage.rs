//! A PostgreSQL outage degrades instead of stalling: while the server is down every
//! request that needs the database gets a 503 `database_unavailable` problem with
//! `Retry-After` within the acquire timeout (never a 500, never a hang), and once the
//! server is back the same process serves again within about a second.
//!
//! Each test runs a server of its own on a spare port, in a temp dir: a PostgreSQL
//! cluster (`initdb` + `pg_ctl`, stopped with `-m immediate`) and a MariaDB server
//! (`mariadb-install-db` + `mariadbd`, killed with SIGKILL); the machine's shared
//! servers are never stopped. Without those programs the test is ignored.
#![cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code, unused_imports, unused_mut))]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use app_kernel::db::{DatabaseKind, Find, SchemaPolicy};
use app_kernel::jobs::{EnqueueOptions, JobClient, JobContext, TaskError};
use app_kernel::{ApiError, Db, Service};
use axum::body::Body;
use axum::routing;
use axum::{Json, Router};
use common::own_server::{is_root, spare_port, OwnPostgres};
use common::trials::{self, test, Program};
use common::{assert_problem, call, get, send};
use http::Request;
use serde_json::{json, Map, Value};

/// A database server of the test's own that the scenario stops and starts again.
trait OwnServer {
    fn kind(&self) -> DatabaseKind;
    fn url(&self) -> String;
    /// Stops it at once, with no clean goodbye to its clients.
    fn stop_server(&mut self);
    fn start_server(&mut self);
}

impl OwnServer for OwnPostgres {
    fn kind(&self) -> DatabaseKind {
        DatabaseKind::Postgres
    }

    fn url(&self) -> String {
        OwnPostgres::url(self)
    }

    fn stop_server(&mut self) {
        OwnPostgres::stop_server(self);
    }

    fn start_server(&mut self) {
        OwnPostgres::start_server(self);
    }
}

/// A MariaDB server of the test's own (`--skip-grant-tables`: any user, no
/// password), killed and removed when dropped.
struct OwnMariaDb {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl OwnMariaDb {
    /// Starts a server (the trial needs [`Program::MariadbServer`]).
    fn launch() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = format!("--datadir={}", dir.path().join("data").display());
        let installed = Command::new("mariadb-install-db")
            .args(["--no-defaults", &data, "--skip-test-db", "--auth-root-authentication-method=normal"])
            .args(is_root().then_some("--user=root"))
            .output();
        assert!(installed.as_ref().is_ok_and(|out| out.status.success()), "mariadb-install-db failed: {installed:?}");
        let mut db = Self { dir, port: spare_port(), child: None };
        db.start_server();
        let out = Command::new("mariadb")
            .args(["-h", "127.0.0.1", "-P", &db.port.to_string(), "-u", "root", "-e", "CREATE DATABASE outage"])
            .output()
            .expect("the mariadb client");
        assert!(out.status.success(), "CREATE DATABASE: {}", String::from_utf8_lossy(&out.stderr));
        db
    }
}

impl OwnServer for OwnMariaDb {
    fn kind(&self) -> DatabaseKind {
        DatabaseKind::Mysql
    }

    fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/outage", self.port)
    }

    fn stop_server(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn start_server(&mut self) {
        let dir = self.dir.path();
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--socket={}", dir.join("sock").display()))
            .args([&format!("--port={}", self.port), "--bind-address=127.0.0.1", "--skip-grant-tables"])
            .args(["--skip-log-bin", "--innodb-buffer-pool-size=16M"])
            .args(is_root().then_some("--user=root"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mariadbd did not start on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for OwnMariaDb {
    fn drop(&mut self) {
        self.stop_server();
    }
}

async fn save(db: Db, Json(body): Json<Map<String, Value>>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(db.save_entity("notes", body).await?)))
}

async fn count(db: Db) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "count": db.count_entities("notes", Find::new()).await? })))
}

async fn noop(_: Value, _: JobContext) -> Result<Value, TaskError> {
    Ok(json!({}))
}

async fn enqueue(jobs: JobClient) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "job_id": jobs.enqueue("noop", json!({}), EnqueueOptions::new()).await?.job_id })))
}

fn post_note(title: &str) -> Request<Body> {
    Request::post("/api/v1/notes")
        .header("content-type", "application/json")
        .body(Body::from(json!({ "title": title }).to_string()))
        .expect("request")
}

/// Answers `send` within `bound`, and how long it took.
async fn timed<F: std::future::Future<Output = common::Reply>>(bound: Duration, send: F) -> common::Reply {
    let started = Instant::now();
    let reply = tokio::time::timeout(bound, send).await.unwrap_or_else(|_| panic!("no answer within {bound:?}"));
    assert!(started.elapsed() < bound, "answered in {:?}", started.elapsed());
    reply
}

#[cfg(feature = "postgres")]
async fn postgres_down_gets_fast_503s_and_the_pool_serves_again_after_the_restart() {
    let mut pg = OwnPostgres::launch();
    outage_and_recovery(&mut pg).await;
}

#[cfg(feature = "mysql")]
async fn mariadb_down_gets_fast_503s_and_the_pool_serves_again_after_the_restart() {
    let mut db = OwnMariaDb::launch();
    outage_and_recovery(&mut db).await;
}

/// Serves a kernel on `server`, stops the server, checks the answers during the
/// outage, starts it again and checks the same process serves.
async fn outage_and_recovery(server: &mut impl OwnServer) {
    let api = Router::new().route("/notes", routing::post(save).get(count)).route("/jobs", routing::post(enqueue));
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::test_settings(dir.path());
    settings.database.kind = server.kind();
    settings.database.url = Some(server.url().into());
    settings.database.pool_size = 4;
    settings.database.schema = SchemaPolicy::additive();
    let svc = Service::builder("db_outage").settings(settings).router(api).task("noop", noop).build().await.unwrap();
    let router = svc.router();
    assert_eq!(send(&router, post_note("before")).await.status, 200);
    assert_eq!(get(&router, "/api/v1/notes").await.json()["count"], 1);

    server.stop_server();
    let bound = Duration::from_millis(1500);
    for round in 0..3 {
        let reply = timed(bound, get(&router, "/api/v1/notes")).await;
        assert_problem(&reply, 503, "database_unavailable");
        assert_eq!(reply.header("retry-after"), Some("1"), "round {round}");
        let reply = timed(bound, send(&router, post_note("during"))).await;
        assert_problem(&reply, 503, "database_unavailable");
        // With an Idempotency-Key (its records live in the same database): one wait
        // for the database, not one for the records and another for the handler.
        let mut keyed = post_note("keyed");
        keyed.headers_mut().insert("idempotency-key", format!("during-{round}").parse().unwrap());
        let reply = timed(bound, send(&router, keyed)).await;
        assert_problem(&reply, 503, "database_unavailable");
        assert_eq!(reply.header("retry-after"), Some("1"), "round {round}");
    }
    // Enqueueing a job (the queue lives in the database) and the auth routes (the
    // user store): the same answer, not a 500.
    let reply = timed(bound, call(&router, "POST", "/api/v1/jobs", None, None)).await;
    assert_problem(&reply, 503, "database_unavailable");
    let login = json!({ "username": "nobody", "password": "not-a-password" });
    let reply = timed(bound, call(&router, "POST", "/api/v1/auth/login", None, Some(login))).await;
    assert_problem(&reply, 503, "database_unavailable");
    let ready = timed(Duration::from_secs(3), get(&router, "/readyz")).await;
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(ready.json()["checks"]["database"]["healthy"], false, "the database is the check that failed");

    server.start_server();
    let back = Instant::now();
    loop {
        let reply = timed(bound, get(&router, "/api/v1/notes")).await;
        if reply.status == 200 {
            assert_eq!(reply.json()["count"], 1, "the note saved before the outage is there");
            break;
        }
        assert_problem(&reply, 503, "database_unavailable");
        assert!(back.elapsed() < Duration::from_secs(3), "still 503 {:?} after the restart", back.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // No broken connection is handed out again: every pool slot serves.
    for i in 0..8 {
        assert_eq!(send(&router, post_note(&format!("after {i}"))).await.status, 200);
    }
    assert_eq!(get(&router, "/api/v1/notes").await.json()["count"], 9);
    assert_eq!(call(&router, "POST", "/api/v1/jobs", None, None).await.status, 200);
    assert_eq!(get(&router, "/readyz").await.status, 200);
}

fn main() {
    trials::run(vec![
        #[cfg(feature = "postgres")]
        test("postgres_down_gets_fast_503s_and_the_pool_serves_again_after_the_restart")
            .threads(2)
            .needs_program(Program::PostgresServer)
            .run(|_| postgres_down_gets_fast_503s_and_the_pool_serves_again_after_the_restart()),
        #[cfg(feature = "mysql")]
        test("mariadb_down_gets_fast_503s_and_the_pool_serves_again_after_the_restart")
            .threads(2)
            .needs_program(Program::MariadbServer)
            .run(|_| mariadb_down_gets_fast_503s_and_the_pool_serves_again_after_the_restart()),
    ]);
}
