//! A PostgreSQL outage degrades instead of stalling: while the server is down every
//! request that needs the database gets a 503 `database_unavailable` problem with
//! `Retry-After` within the acquire timeout (never a 500, never a hang), and once the
//! server is back the same process serves again within about a second.
//!
//! The test runs a PostgreSQL cluster of its own (`initdb` + `pg_ctl` on a spare
//! port, in a temp dir); the machine's shared server is never stopped.
#![cfg(feature = "postgres")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use app_kernel::db::{DatabaseKind, Find, SchemaPolicy};
use app_kernel::jobs::{EnqueueOptions, JobClient, JobContext, TaskError};
use app_kernel::{ApiError, Db, Service};
use axum::body::Body;
use axum::routing;
use axum::{Json, Router};
use common::{assert_problem, call, get, send};
use http::Request;
use serde_json::{json, Map, Value};

/// A PostgreSQL cluster of the test's own, stopped (immediately) and removed when dropped.
struct OwnPostgres {
    dir: tempfile::TempDir,
    port: u16,
}

/// The directory of PostgreSQL's server programs (Debian: `/usr/lib/postgresql/N/bin`).
fn pg_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl OwnPostgres {
    /// Starts a cluster, or `None` (a reported skip) when PostgreSQL's server
    /// programs are not installed and services are not required.
    fn start() -> Option<Self> {
        if pg_bin().is_none() {
            assert!(!common::services_required(), "initdb/pg_ctl not found under /usr/lib/postgresql");
            common::skipped("db_outage (PostgreSQL server programs not installed)");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        if is_root() {
            // initdb refuses to run as root: the cluster belongs to `postgres`.
            let ok = Command::new("chown").args(["-R", "postgres"]).arg(dir.path()).status().unwrap().success();
            assert!(ok, "chown the cluster directory to postgres");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = Self { dir, port };
        let data = pg.data();
        pg.run("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"]);
        pg.start_server();
        Some(pg)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Runs one of PostgreSQL's programs (as `postgres` when the test runs as root).
    fn run(&self, program: &str, args: &[&str]) {
        let out = Self::command(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn command(program: &str) -> Command {
        let program = pg_bin().expect("pg bin").join(program);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        }
    }

    fn start_server(&self) {
        let dir = self.dir.path().display().to_string();
        let options = format!("-p {} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off", self.port);
        let log = Path::new(&dir).join("server.log").display().to_string();
        self.run("pg_ctl", &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "-t", "30", "start"]);
    }

    /// Stops the server at once (`-m immediate`: no clean disconnect of clients).
    fn stop_server(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        // Already stopped when the test failed during the outage: nothing to do.
        let _ = Self::command("pg_ctl").args(["-D", &self.data(), "-m", "immediate", "stop"]).output();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_gets_fast_503s_and_the_pool_serves_again_after_the_restart() {
    let Some(pg) = OwnPostgres::start() else { return };
    let api = Router::new().route("/notes", routing::post(save).get(count)).route("/jobs", routing::post(enqueue));
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::test_settings(dir.path());
    settings.database.kind = DatabaseKind::Postgres;
    settings.database.url = Some(pg.url().into());
    settings.database.pool_size = 4;
    settings.database.schema = SchemaPolicy::additive();
    let svc = Service::builder("db_outage").settings(settings).router(api).task("noop", noop).build().await.unwrap();
    let router = svc.router();
    assert_eq!(send(&router, post_note("before")).await.status, 200);
    assert_eq!(get(&router, "/api/v1/notes").await.json()["count"], 1);

    pg.stop_server();
    let bound = Duration::from_millis(1500);
    for round in 0..3 {
        let reply = timed(bound, get(&router, "/api/v1/notes")).await;
        assert_problem(&reply, 503, "database_unavailable");
        assert_eq!(reply.header("retry-after"), Some("1"), "round {round}");
        let reply = timed(bound, send(&router, post_note("during"))).await;
        assert_problem(&reply, 503, "database_unavailable");
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

    pg.start_server();
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
