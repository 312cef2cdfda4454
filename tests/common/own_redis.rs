//! A `redis-server` of the test's own on a spare port (never the machine's shared
//! one), for tests that stop Redis; killed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` this test started.
pub struct OwnRedis {
    child: Option<Child>,
    port: u16,
}

impl OwnRedis {
    /// Starts one on a spare port, or `None` (a reported skip) when `redis-server` is
    /// not installed and services are not required.
    pub fn start(test: &str) -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = Self { child: None, port };
        match redis.spawn() {
            Ok(()) => Some(redis),
            Err(e) => {
                assert!(!super::services_required(), "redis-server cannot be started: {e}");
                super::skipped(&format!("{test} (redis-server: {e})"));
                None
            }
        }
    }

    /// Starts (again) on the same port; waits up to 10 s for it to accept connections.
    pub fn spawn(&mut self) -> std::io::Result<()> {
        let port = self.port.to_string();
        let args = ["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
        self.child = Some(Command::new("redis-server").args(args).stdout(Stdio::null()).spawn()?);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// SIGKILLs it (an outage: its data is gone too).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends it `signal` (`STOP`: it keeps its connections but answers nothing; `CONT`).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("redis-server running").id().to_string();
        let sent = Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("kill(1)");
        assert!(sent.success(), "kill -{signal} redis-server");
    }

    /// Its `redis://` URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
