//! The admin bootstrap through the real service binary (the widget example): the
//! `create-admin` command and `ADMIN_EMAIL` start-up only ever create a new account,
//! so an account someone registered is never made an admin because its email or
//! name matches; `promote-admin --username` is the explicit way to promote one.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const SECRET: &str = "admin-bootstrap-secret-0123456789abcdef";

/// The widget service's binary with the test environment (none of the caller's but
/// `PATH`), in `dir`.
fn binary(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = common::example_command("widget_service");
    cmd.env("PORT", "0")
        .env("DATABASE_NAME", dir.join("example.db"))
        .env("JWT_SECRET", SECRET)
        .env("ALLOW_SELF_SIGNUP", "true")
        .envs(env.iter().copied())
        .current_dir(dir);
    cmd
}

/// Runs a command of the binary to its end (within 60 s).
fn run(dir: &Path, args: &[&str]) -> Output {
    common::output_within(binary(dir, &[]).args(args), Duration::from_secs(60), &format!("widget_service {args:?}"))
}

struct Server {
    child: Child,
    base: String,
    lines: Vec<Value>,
}

impl Server {
    fn start(dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut child =
            binary(dir, env).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let Some(log) = common::Listening::wait(stdout) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the service never logged `listening` within 30 s");
        };
        let lines = log.before.clone();
        Self { child, base: format!("http://{}", log.drain()), lines }
    }

    async fn post(&self, path: &str, bearer: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = common::http_client().post(format!("{}/api/v1/auth{path}", self.base)).json(&body);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        let reply = req.send().await.unwrap();
        (reply.status().as_u16(), reply.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let reply =
            common::http_client().get(format!("{}/api/v1/auth{path}", self.base)).bearer_auth(token).send().await;
        let reply = reply.unwrap();
        (reply.status().as_u16(), reply.json().await.unwrap_or(Value::Null))
    }

    async fn login(&self, username: &str, password: &str) -> Option<String> {
        let (status, body) = self.post("/login", None, json!({"username": username, "password": password})).await;
        (status == 200).then(|| body["access_token"].as_str().unwrap().to_owned())
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn create_admin_and_admin_email_never_promote_an_account_someone_registered() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let body = json!({"username": "ops", "email": "ops@elsewhere.example", "password": "attacker-pass-1"});
    assert_eq!(server.post("/register", None, body).await.0, 201);
    let token = server.login("ops", "attacker-pass-1").await.expect("the stranger logs in");

    // The operator runs create-admin for ops@company.com: the derived name `ops` is taken.
    let out = run(dir.path(), &["create-admin", "--email", "ops@company.com", "--password", "admin-password-1"]);
    assert!(!out.status.success(), "create-admin must refuse: {}", String::from_utf8_lossy(&out.stdout));
    let err = stderr(&out);
    assert!(err.contains("`ops` already exists") && err.contains("promote-admin"), "{err}");
    // ...and by the registered email.
    let out = run(
        dir.path(),
        &["create-admin", "--email", "ops@elsewhere.example", "--username", "boss", "--password", "admin-password-1"],
    );
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("`ops@elsewhere.example` already exists"), "{}", stderr(&out));

    let (status, me) = server.get("/me", &token).await;
    assert_eq!((status, me["role"].as_str()), (200, Some("user")));
    assert_eq!(server.get("/api-keys", &token).await.0, 403, "the stranger's token is no admin's");
    server.stop();

    // Start-up with ADMIN_EMAIL naming the same account: a warning, nothing changed.
    let env = [("ADMIN_EMAIL", "ops@company.com"), ("ADMIN_PASSWORD", "admin-password-1")];
    let server = Server::start(dir.path(), &env);
    let warned = server.lines.iter().any(|l| l["level"] == "WARN" && l["message"].to_string().contains("ADMIN_EMAIL"));
    assert!(warned, "start-up warns that the account exists: {:?}", server.lines);
    assert_eq!(server.get("/api-keys", &token).await.0, 403);
    assert_eq!(server.login("ops@company.com", "admin-password-1").await, None, "no admin was created");
    let token = server.login("ops", "attacker-pass-1").await.expect("the account keeps its own password");
    assert_eq!(server.get("/me", &token).await.1["role"], "user");

    // Promotion is a separate command naming the account exactly.
    for wrong in ["op", "ops@elsewhere.example", "nobody"] {
        let out = run(dir.path(), &["promote-admin", "--username", wrong]);
        assert!(!out.status.success(), "{wrong}");
        assert!(stderr(&out).contains("no account has the username"), "{}", stderr(&out));
    }
    let out = run(dir.path(), &["promote-admin", "--username", "ops"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("admin promoted: ops"));
    let token = server.login("ops", "attacker-pass-1").await.unwrap();
    // The server learns of the other process's change within its identity cache's window (2 s).
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.get("/api-keys", &token).await.0 != 200 {
        assert!(Instant::now() < deadline, "promoted on purpose, yet no admin after 5 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.stop();
}

#[tokio::test]
async fn a_deactivated_admin_is_not_reactivated_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("ADMIN_EMAIL", "root@example.com"), ("ADMIN_PASSWORD", "admin-password-1")];
    let server = Server::start(dir.path(), &env);
    assert!(server.login("root@example.com", "admin-password-1").await.is_some(), "the first admin was created");
    server.stop();

    let db_path = dir.path().join("example.db").display().to_string();
    let db = app_kernel::Db::connect(&app_kernel::db::DatabaseSettings::sqlite(db_path), "test").await.unwrap();
    let store = app_kernel::auth::UserStore::new(db.clone());
    let admin = store.find_by_login("root@example.com").await.unwrap().unwrap();
    store.set_active(&admin.identity.id, false).await.unwrap();
    db.close().await;

    let server = Server::start(dir.path(), &env);
    assert_eq!(server.login("root@example.com", "admin-password-1").await, None, "still deactivated");
    let out = run(dir.path(), &["create-admin", "--email", "root@example.com", "--password", "other-password-1"]);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert_eq!(server.login("root@example.com", "other-password-1").await, None, "password unchanged");
    server.stop();
}
