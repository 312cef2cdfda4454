//! The examples are real programs: each is started as a process on a free port,
//! answers with the kernel's routes and headers, and stops cleanly on SIGTERM.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{http_client, output_within, wait_within};

mod common;

struct Running {
    child: Child,
    addr: String,
    lines: std::sync::mpsc::Receiver<String>,
    stopped: bool,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    /// A failed test does not leave its service running.
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The first JSON log line (within 5 s) that `matches`.
    fn log_line(&self, matches: impl Fn(&serde_json::Value) -> bool) -> Option<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) else { continue };
            match serde_json::from_str::<serde_json::Value>(&line) {
                Ok(v) if matches(&v) => return Some(v),
                _ => {}
            }
        }
        None
    }

    fn stop(mut self) {
        self.stopped = true;
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = wait_within(&mut self.child, Duration::from_secs(30), "the example after SIGTERM");
        assert!(status.success(), "exit after SIGTERM: {status}");
    }
}

fn start(name: &str) -> Running {
    start_in(name, tempfile::tempdir().unwrap(), &[])
}

/// The example `name`, run in `dir` (its database is `dir/example.db`) with the
/// usual test environment plus `env`, once it logged `listening`.
fn start_in(name: &str, dir: tempfile::TempDir, env: &[(&str, &str)]) -> Running {
    let mut child = common::example_command(name)
        .env("PORT", "0")
        .env("DATABASE_NAME", dir.path().join("example.db"))
        .env("JWT_SECRET", "example-secret-example-secret-example!")
        .env("ADMIN_EMAIL", "admin@example.com")
        .env("ADMIN_PASSWORD", "admin-password-1")
        .env("ALLOW_SELF_SIGNUP", "true")
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: {e} (examples are built by `cargo test`)"));
    let stdout = child.stdout.take().unwrap();
    let Some(log) = common::Listening::wait(stdout) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{name} never logged `listening` within 30 s");
    };
    Running { child, addr: log.address, lines: log.after, stopped: false, _dir: dir }
}

#[tokio::test]
async fn widget_service_serves_every_kernel_route_with_the_contract_headers() {
    let svc = start("widget_service");
    let client = http_client();
    for (path, status) in
        [("/healthz", 200), ("/readyz", 200), ("/metrics", 401), ("/openapi.json", 200), ("/docs/", 200), ("/api", 200)]
    {
        let r = client.get(svc.url(path)).header("origin", "http://localhost:3000").send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        let h = r.headers();
        assert!(h.contains_key("x-request-id"), "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin", "{path}");
        assert_eq!(h["access-control-allow-origin"], "*", "{path}");
    }
    let r = client.get(svc.url("/readyz")).send().await.unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["checks"]["database"]["healthy"], true);

    let r = client.get(svc.url("/api/v1/widgets?limit=5")).send().await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let line = svc.log_line(|v| v["request_id"] == id.as_str()).expect("an access log line with the request id");
    assert_eq!(line["target"], "http.access");
    assert_eq!(line["route"], "/api/v1/widgets", "labelled by route, not raw path and query");
    assert_eq!((line["method"].as_str(), line["status"].as_u64()), (Some("GET"), Some(401)));
    assert!(line["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    assert!(line.get("user_id").is_none(), "no user before authentication: {line}");

    let login = serde_json::json!({"username": "admin@example.com", "password": "admin-password-1"});
    let r = client.post(svc.url("/api/v1/auth/login")).json(&login).send().await.unwrap();
    let token = r.json::<serde_json::Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let r = client.get(svc.url("/api/v1/auth/me")).bearer_auth(&token).send().await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let me = r.json::<serde_json::Value>().await.unwrap();
    let line = svc.log_line(|v| v["request_id"] == id.as_str()).expect("the authenticated request's access line");
    assert!(me["id"].is_string(), "{me}");
    assert_eq!((line["status"].as_u64(), &line["user_id"]), (Some(200), &me["id"]), "{line}");
    svc.stop();
}

#[tokio::test]
async fn manual_init_keeps_the_apps_routes_and_adds_the_kernels() {
    let svc = start("manual_init");
    let client = http_client();
    let doc = client.get(svc.url("/documents/7")).send().await.unwrap();
    assert_eq!(doc.status(), 200);
    assert!(doc.headers().contains_key("x-request-id"));
    assert_eq!(doc.text().await.unwrap(), "a document");
    assert_eq!(client.get(svc.url("/healthz")).send().await.unwrap().status(), 200);
    svc.stop();
}

/// Sends the request and reads its JSON body.
async fn json_of(req: reqwest::RequestBuilder) -> serde_json::Value {
    req.send().await.unwrap().json().await.unwrap()
}

async fn login(client: &reqwest::Client, svc: &Running, username: &str, password: &str) -> String {
    let r = client
        .post(svc.url("/api/v1/auth/login"))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn widgets_belong_to_their_caller_whatever_the_client_sends() {
    use serde_json::{json, Value};
    let svc = start("widget_service");
    let client = http_client();
    assert_eq!(client.get(svc.url("/api/v1/widgets")).send().await.unwrap().status(), 401);

    let admin = login(&client, &svc, "admin@example.com", "admin-password-1").await;
    let me: Value = json_of(client.get(svc.url("/api/v1/auth/me")).bearer_auth(&admin)).await;
    let created: Value = json_of(
        client
            .post(svc.url("/api/v1/widgets"))
            .bearer_auth(&admin)
            .json(&json!({"name": "gear", "size": 3, "tags": ["a"]})),
    )
    .await;
    assert_eq!(created["owner"], me["id"], "the server sets the owner");
    assert_eq!(
        (created["name"].clone(), created["size"].clone(), created["tags"].clone()),
        (json!("gear"), json!(3), json!(["a"]))
    );

    // The typed body refuses what a client must not choose, and fields the app does not know.
    let reg = json!({"username": "bob", "email": "bob@example.com", "password": "bob-password-1"});
    assert_eq!(client.post(svc.url("/api/v1/auth/register")).json(&reg).send().await.unwrap().status(), 201);
    let bob = login(&client, &svc, "bob", "bob-password-1").await;
    let spray: serde_json::Map<String, Value> = (0..50).map(|i| (format!("f{i}"), json!(i))).collect();
    for (refused, field) in [
        (json!({"name": "x", "owner": "mallory"}), "owner"),
        (json!({"id": created["id"], "name": "stolen"}), "id"),
        (Value::Object(spray), "f"),
    ] {
        let r = client.post(svc.url("/api/v1/widgets")).bearer_auth(&bob).json(&refused).send().await.unwrap();
        assert_eq!(r.status(), 422, "{refused}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let body: Value = r.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().contains(&format!("unknown field `{field}")), "{body}");
    }
    let r: Value =
        json_of(client.post(svc.url("/api/v1/widgets")).bearer_auth(&bob).json(&json!({"name": "stolen"}))).await;
    assert_ne!(r["id"], created["id"]);

    let mine: Value = json_of(client.get(svc.url("/api/v1/widgets")).bearer_auth(&admin)).await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["name"], "gear");
    let bobs: Value = json_of(client.get(svc.url("/api/v1/widgets")).bearer_auth(&bob)).await;
    assert_eq!(bobs.as_array().unwrap().len(), 1);
    assert_eq!(bobs[0]["name"], "stolen");

    let bad = client.post(svc.url("/api/v1/widgets")).bearer_auth(&bob).json(&json!([1, 2])).send().await.unwrap();
    assert_eq!(bad.status(), 422, "a non-object body is a validation error");
    svc.stop();
}

#[tokio::test]
async fn projects_service_runs_its_task_in_a_separate_worker_process() {
    use serde_json::{json, Value};
    let svc = start("projects_service");
    let client = http_client();
    let admin = login(&client, &svc, "admin@example.com", "admin-password-1").await;
    let project: Value = json_of(
        client
            .post(svc.url("/api/v1/projects"))
            .bearer_auth(&admin)
            .json(&json!({"name": "apollo", "description": "to the moon"})),
    )
    .await;
    let id = project["id"].as_str().expect("project id").to_owned();
    assert_eq!(project["description"], "to the moon", "the column of the second migration");
    assert_ne!(project["processed"], json!(true), "nothing processes it before a worker runs");
    let foreign = json!({"name": "x", "workspace_id": "someone-else"});
    let r = client.post(svc.url("/api/v1/projects")).bearer_auth(&admin).json(&foreign).send().await.unwrap();
    assert_eq!(r.status(), 422, "the typed body refuses a workspace chosen by the client");

    // The worker is the same binary with the `worker` role, on the same database file.
    let mut worker = {
        let mut child = common::KillOnDrop(
            common::example_command("projects_service")
                .arg("worker")
                .env("DATABASE_NAME", svc._dir.path().join("example.db"))
                .env("JWT_SECRET", "example-secret-example-secret-example!")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap(),
        );
        let stdout = child.stdout.take().unwrap();
        let log = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let p: Value = client
                .get(svc.url(&format!("/api/v1/projects/{id}")))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if p["processed"] == json!(true) {
                break;
            }
            assert!(Instant::now() < deadline, "the worker never processed the project: {p}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (child, log)
    };
    assert!(Command::new("kill").args(["-TERM", &worker.0.id().to_string()]).status().unwrap().success());
    let status = wait_within(&mut worker.0, Duration::from_secs(30), "the worker after SIGTERM");
    assert!(status.success(), "worker stops cleanly on SIGTERM: {status}");
    let log = worker.1.join().unwrap();
    assert!(log.contains("worker ready"), "{log}");
    assert!(!log.contains("kernel ready"), "the worker builds no HTTP side: {log}");
    svc.stop();
}

/// In apikey mode no login route exists: `create-admin` prints the admin's first
/// API key, and that key opens the admin routes of the served binary.
#[tokio::test]
async fn create_admin_in_apikey_mode_prints_a_working_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut create_admin = common::example_command("widget_service");
    create_admin
        .args(["create-admin", "--email", "root@example.com", "--password", "admin-password-1"])
        .env("KERNEL_AUTH_MODE", "apikey")
        .env("DATABASE_NAME", dir.path().join("example.db"))
        .env("JWT_SECRET", "example-secret-example-secret-example!")
        .env("LOG_LEVEL", "warn")
        .current_dir(dir.path());
    let out = output_within(&mut create_admin, Duration::from_secs(60), "create-admin");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout
        .lines()
        .find_map(|l| l.split_once("X-API-Key): ").map(|(_, k)| k.trim().to_owned()))
        .unwrap_or_else(|| panic!("no key printed: {stdout}"));

    let svc = start_in("widget_service", dir, &[("KERNEL_AUTH_MODE", "apikey")]);
    let client = http_client();
    let url = svc.url("/api/v1/auth/api-keys");
    let listed = client.get(&url).header("x-api-key", &key).send().await.unwrap();
    assert_eq!(listed.status(), 200, "the printed key is an admin's");
    let keys: serde_json::Value = listed.json().await.unwrap();
    assert!(keys.to_string().contains("create-admin"), "{keys}");
    let bad = client.get(&url).header("x-api-key", "ak_not-a-real-key").send().await.unwrap();
    assert_eq!(bad.status(), 401);
    svc.stop();
}

/// `migrate status` lists the example's migrations, pending on a new database; `migrate`
/// applies them; `migrate status` then shows them applied with their time.
#[test]
fn projects_service_migrate_status_prints_applied_and_pending_files() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut command = common::example_command("projects_service");
        command
            .args(args)
            .env("DATABASE_NAME", dir.path().join("example.db"))
            .env("JWT_SECRET", "example-secret-example-secret-example!")
            .env("LOG_LEVEL", "warn")
            .current_dir(dir.path());
        let out = output_within(&mut command, Duration::from_secs(60), "projects_service migrate");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let line = |out: &str, file: &str| -> Vec<String> {
        let line = out.lines().find(|l| l.contains(file)).unwrap_or_else(|| panic!("no {file} in:\n{out}"));
        line.split_whitespace().map(str::to_owned).collect()
    };
    let before = run(&["migrate", "status"]);
    assert!(before.lines().next().is_some_and(|h| h.contains("version") && h.contains("state")), "{before}");
    assert_eq!(line(&before, "0001_create_projects.sql")[..3], ["1", "0001_create_projects.sql", "pending"]);
    assert_eq!(line(&before, "0002_project_descriptions.sql")[2], "pending");
    assert!(!before.contains("mysql"), "SQLite's file, not MySQL's: {before}");

    run(&["migrate"]);
    let after = run(&["migrate", "status"]);
    for file in ["0001_create_projects.sql", "0002_project_descriptions.sql"] {
        let fields = line(&after, file);
        assert_eq!(fields[2], "applied", "{after}");
        assert_eq!(fields[3].len(), 12, "the checksum's start: {after}");
        assert!(fields[4].ends_with('Z') && fields[5].parse::<u64>().is_ok(), "applied at, duration: {after}");
    }
}

#[path = "examples/docs.rs"]
mod docs;
#[path = "examples/health.rs"]
mod health;
#[path = "examples/streaming.rs"]
mod streaming;
