//! Shared test support: reaching the real backing services.
#![allow(dead_code, unreachable_pub)]

pub mod db;
pub mod own_server;
pub mod trials;

/// A name unique to this test run, for a database, schema or key prefix.
pub fn unique_name(stem: &str) -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("{stem}_{}", &id[id.len() - 12..])
}

/// A test's Redis key prefix: every key under it is deleted when this is dropped, when
/// the test passed or failed (jobs, for one, keep their records with no TTL).
#[derive(Debug)]
pub struct RedisKeys {
    /// The server's URL.
    pub url: String,
    /// `<stem>_<unique>:`.
    pub prefix: String,
}

impl RedisKeys {
    /// A new prefix from `stem`, on the server at `url`.
    pub fn new(url: &str, stem: &str) -> Self {
        Self { url: url.to_owned(), prefix: format!("{}:", unique_name(stem)) }
    }

    #[cfg(feature = "redis")]
    fn delete(&self) -> redis::RedisResult<usize> {
        let client = redis::Client::open(self.url.as_str())?;
        let mut con = client.get_connection_with_timeout(std::time::Duration::from_secs(5))?;
        let (mut cursor, mut deleted) = (0_u64, 0);
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query(&mut con)?;
            if !keys.is_empty() {
                deleted += keys.len();
                redis::cmd("UNLINK").arg(&keys).query::<()>(&mut con)?;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }
}

#[cfg(feature = "redis")]
impl Drop for RedisKeys {
    /// Never panics (a panic while unwinding aborts); a failure is reported on stderr.
    fn drop(&mut self) {
        if let Err(e) = self.delete() {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr().lock(), "left behind: Redis keys {}*: {e}", self.prefix);
        }
    }
}

use app_kernel::settings::KernelSettings;
use app_kernel::{Kernel, Service};
use axum::body::Body;
use axum::Router;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// A service on a throw-away SQLite file, kept alive with it.
pub struct TestService {
    pub service: Service,
    _dir: tempfile::TempDir,
}

impl TestService {
    pub fn router(&self) -> Router {
        self.service.router()
    }

    /// The service and the directory its database lives in (keep it while serving).
    pub fn into_parts(self) -> (Service, tempfile::TempDir) {
        (self.service, self._dir)
    }
}

/// The JWT secret of test services.
pub const TEST_SECRET: &str = "0123456789abcdef0123456789abcdef-test";

/// Settings for tests: debug off, a strong secret, SQLite in a temp dir.
pub fn test_settings(dir: &std::path::Path) -> KernelSettings {
    let mut s = KernelSettings::default();
    s.auth.token_secret = Some(TEST_SECRET.to_owned().into());
    s.database.name = Some(dir.join("test.db").display().to_string());
    s.observability.log_level = "warn".into();
    s
}

/// Builds a service with `routers` under the API prefix and settings edited by `edit`.
pub async fn service(routers: Vec<Router<Kernel>>, edit: impl FnOnce(&mut KernelSettings)) -> TestService {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(dir.path());
    edit(&mut settings);
    let mut builder = Service::builder("test_service").settings(settings);
    for r in routers {
        builder = builder.router(r);
    }
    TestService { service: builder.build().await.expect("service builds"), _dir: dir }
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("ascii header"))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub async fn send(router: &Router, req: Request<Body>) -> Reply {
    let response = router.clone().oneshot(req).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Reply { status: parts.status, headers: parts.headers, body }
}

/// A request with an optional bearer token and JSON body, answered whole.
pub async fn call(
    router: &Router,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<serde_json::Value>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(token) = bearer {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    send(router, req.body(body).expect("request")).await
}

pub async fn get(router: &Router, path: &str) -> Reply {
    send(router, Request::get(path).body(Body::empty()).expect("request")).await
}

/// Asserts the docs/CONTRACT.md error shape and returns the body.
pub fn assert_problem(reply: &Reply, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(reply.status.as_u16(), status, "status; body: {}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    let body = reply.json();
    assert_eq!(body["status"], status);
    assert_eq!(body["code"], code, "code; body: {body}");
    assert_eq!(body["type"], "about:blank");
    assert!(body["title"].is_string());
    assert!(body["detail"].is_string());
    let request_id = body["request_id"].as_str().expect("request_id in body");
    assert_eq!(reply.header("x-request-id"), Some(request_id), "body and header request ids agree");
    body
}

/// A child process that is killed (and reaped) when the test ends, passed or failed:
/// a plain `Child` dropped by a panicking test keeps running.
#[derive(Debug)]
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits at most `limit` for `child` to exit; past that it is killed and the test
/// fails (a process that hangs fails the test instead of hanging the run).
pub fn wait_within(
    child: &mut std::process::Child,
    limit: std::time::Duration,
    what: &str,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("{what}: {e}")) {
            return status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `command` run to its end within `limit` (see [`wait_within`]), with no stdin and
/// its output read whole.
pub fn output_within(
    command: &mut std::process::Command,
    limit: std::time::Duration,
    what: &str,
) -> std::process::Output {
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let status = wait_within(&mut child, limit, what);
    std::process::Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

/// An HTTP client whose every request is bounded: 10 s to connect, 30 s for each
/// read, so a server that stops answering fails the test instead of hanging it
/// (`reqwest::Client::new()` waits for ever). A long stream is read as long as bytes come.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .read_timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

/// The example's binary, refused when older than a source it is built from (a
/// `cargo test --test examples` does not rebuild the examples; `cargo test` does).
pub fn example_binary(name: &str) -> std::path::PathBuf {
    // target/debug/deps/TEST-HASH -> target/debug/examples/NAME
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let binary = dir.join("examples").join(name);
    let built = std::fs::metadata(&binary).and_then(|m| m.modified());
    let built = built.unwrap_or_else(|e| panic!("{name}: {e} (examples are built by `cargo test`)"));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let newest = newest_change(vec![root.join("src"), root.join("examples"), root.join("Cargo.toml")]);
    assert!(newest <= built, "{name} is older than its sources: `cargo build --all-features --examples` first");
    binary
}

/// When the newest file below `paths` changed.
fn newest_change(paths: Vec<std::path::PathBuf>) -> std::time::SystemTime {
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for path in paths {
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if meta.is_dir() {
            let children: Vec<std::path::PathBuf> =
                std::fs::read_dir(&path).into_iter().flatten().flatten().map(|e| e.path()).collect();
            newest = newest.max(newest_change(children));
        } else if let Ok(modified) = meta.modified() {
            newest = newest.max(modified);
        }
    }
    newest
}

/// A service's JSON log, read on a thread of its own, once it logged `listening`.
pub struct Listening {
    /// The `address` of the `listening` line.
    pub address: String,
    /// The lines before it, parsed (lines that are not JSON are left out).
    pub before: Vec<serde_json::Value>,
    /// The lines after it, as they come.
    pub after: std::sync::mpsc::Receiver<String>,
}

impl Listening {
    /// Reads the log from `stdout` until the line `listening`; `None` when it did not come
    /// within 30 s (the caller kills the child and fails with what it knows).
    pub fn wait(stdout: std::process::ChildStdout) -> Option<Self> {
        use std::io::BufRead as _;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut before = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(100)) else { continue };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            if v["message"] == "listening" {
                let address = v["address"].as_str().expect("listening names its address").to_owned();
                return Some(Self { address, before, after: rx });
            }
            before.push(v);
        }
        None
    }

    /// Goes on reading (and dropping) the log, so the pipe never fills.
    pub fn drain(self) -> String {
        std::thread::spawn(move || self.after.into_iter().for_each(drop));
        self.address
    }
}

/// The example `name` (see [`example_binary`]) as a [`clean_command`].
pub fn example_command(name: &str) -> std::process::Command {
    clean_command(example_binary(name))
}

/// `program` with none of the caller's environment but `PATH`, logging JSON: what the
/// test sets is all the process sees (no stray `DATABASE_URL` or `REDIS_URL`).
pub fn clean_command(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut command = std::process::Command::new(program);
    command.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("LOG_FORMAT", "json");
    command
}
