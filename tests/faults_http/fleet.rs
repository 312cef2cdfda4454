//! The processes a scenario runs: example services as real child processes (their
//! own sockets, signals and exit codes), and a PostgreSQL schema of the test's own
//! on the shared server. Every one is killed or dropped when its guard goes, so a
//! failing scenario leaves nothing behind.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common;

/// The JWT secret every instance shares (a token from one is valid on the other).
const SECRET: &str = "faults-http-secret-faults-http-secret!";

/// One running example process (an API, or a worker with its own `/healthz`) on its
/// own port, killed when dropped.
#[derive(Debug)]
pub(crate) struct Instance {
    child: Child,
    pub(crate) base: String,
    dir: tempfile::TempDir,
}

impl Instance {
    /// Starts `example` with none of the caller's environment but `PATH` plus the
    /// harness's settings and `env`, and returns once `/healthz` answers (≤ 30 s).
    pub(crate) fn start(name: &str, example: &str, env: &[(&str, &str)]) -> Self {
        Self::spawn(name, example, None, env)
    }

    /// Starts `example`'s `worker` command, its `/healthz` on a port of its own
    /// (`WORKER_HTTP_ADDR`), and returns once that listens (≤ 30 s).
    pub(crate) fn start_worker(name: &str, example: &str, env: &[(&str, &str)]) -> Self {
        Self::spawn(name, example, Some("worker"), env)
    }

    fn spawn(name: &str, example: &str, command: Option<&str>, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = common::own_server::spare_port();
        let log = std::fs::File::create(dir.path().join("stdout.log")).expect("log file");
        let port_var = if command.is_some() { "WORKER_HTTP_ADDR" } else { "PORT" };
        let child = common::example_command(example)
            .args(command)
            .env("HOST", "127.0.0.1")
            .env(port_var, port.to_string())
            .env("JWT_SECRET", SECRET)
            .env("LOG_LEVEL", "warn") // the access log (info) would cost the load its CPU
            .env("ALLOW_SELF_SIGNUP", "true")
            .env("RATE_LIMIT_REQUESTS", "100000000") // counted on every request, never reached
            .envs(env.iter().copied())
            .current_dir(dir.path())
            .stdout(log)
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{example}: {e}"));
        let mut instance = Self { child, base: format!("http://127.0.0.1:{port}"), dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = instance.child.try_wait() {
                panic!("{name} exited at start-up ({status}): {}", instance.log_tail());
            }
            assert!(Instant::now() < deadline, "{name} did not listen within 30 s: {}", instance.log_tail());
            std::thread::sleep(Duration::from_millis(20));
        }
        instance
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (a deployment's stop).
    pub(crate) fn sigterm(&self) {
        let ok = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().unwrap().success();
        assert!(ok, "kill -TERM {}", self.pid());
    }

    /// Whether it is still running (not exited).
    pub(crate) fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Its exit status, waiting at most `bound`; `None` if it is still running.
    pub(crate) fn wait_exit(&mut self, bound: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Resident memory in KiB (`VmRSS`), 0 once the process is gone.
    pub(crate) fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or("VmRSS: 0 kB");
        line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// The CPU time it has used, in clock ticks.
    pub(crate) fn cpu_ticks(&self) -> u64 {
        crate::common::own_server::process_cpu_ticks(self.pid(), false)
    }

    /// The last lines of its log, for a failure message.
    pub(crate) fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A schema of the test's own on the shared PostgreSQL server, dropped (with `psql`)
/// when the guard goes.
#[derive(Debug)]
pub(crate) struct SharedSchema {
    admin_url: String,
    name: String,
}

impl SharedSchema {
    /// A fresh schema on the shared server (the trial needs `Server::Postgres`).
    pub(crate) fn create() -> Self {
        let admin_url = common::trials::Server::Postgres.needed_url();
        let schema = Self { name: common::unique_name("faults"), admin_url };
        schema.psql(&format!("CREATE SCHEMA {}", schema.name));
        schema
    }

    /// The URL the instances use: the shared database, this schema first in the search path.
    pub(crate) fn url(&self) -> String {
        let sep = if self.admin_url.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{}", self.admin_url, self.name)
    }

    fn psql(&self, sql: &str) {
        let out = Command::new("psql").args([&self.admin_url, "-q", "-c", sql]).output().expect("psql");
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for SharedSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let _ = Command::new("psql").args([&self.admin_url, "-q", "-c", &sql]).output();
    }
}

/// Registers `count` users on `instance` and returns a bearer token for each.
pub(crate) async fn tokens(http: &reqwest::Client, instance: &Instance, count: usize) -> Vec<String> {
    let mut tokens = Vec::new();
    for i in 0..count {
        let (username, password) = (format!("load{i}"), format!("load-password-{i}"));
        let reg =
            serde_json::json!({"username": username, "email": format!("{username}@example.com"), "password": password});
        let r = http.post(instance.url("/api/v1/auth/register")).json(&reg).send().await.unwrap();
        assert_eq!(r.status(), 201, "register {username}: {}", r.text().await.unwrap_or_default());
        let login = serde_json::json!({"username": username, "password": password});
        let r = http.post(instance.url("/api/v1/auth/login")).json(&login).send().await.unwrap();
        assert_eq!(r.status(), 200, "login {username}");
        let body: serde_json::Value = r.json().await.unwrap();
        tokens.push(body["access_token"].as_str().expect("access_token").to_owned());
    }
    tokens
}
