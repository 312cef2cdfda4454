//! Servers of a test's own, on spare loopback ports, for the scenarios that stop
//! them: a PostgreSQL cluster (`initdb` + `pg_ctl`) and a `redis-server`. The
//! machine's shared servers are never stopped. Each is stopped and removed when
//! dropped, so a failing test leaves nothing running.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on loopback (free when asked).
pub fn spare_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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

/// Whether the test runs as root (PostgreSQL's programs then run as `postgres`).
pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A PostgreSQL cluster of the test's own, stopped (immediately) and removed when dropped.
#[derive(Debug)]
pub struct OwnPostgres {
    dir: tempfile::TempDir,
    port: u16,
}

impl OwnPostgres {
    /// Starts a cluster, or `None` (a reported skip) when PostgreSQL's server
    /// programs are not installed and services are not required.
    pub fn start(test: &str) -> Option<Self> {
        if pg_bin().is_none() {
            assert!(!super::services_required(), "initdb/pg_ctl not found under /usr/lib/postgresql");
            super::skipped(&format!("{test} (PostgreSQL server programs not installed)"));
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        if is_root() {
            // initdb refuses to run as root: the cluster belongs to `postgres`.
            let ok = Command::new("chown").args(["-R", "postgres"]).arg(dir.path()).status().unwrap().success();
            assert!(ok, "chown the cluster directory to postgres");
        }
        let mut pg = Self { dir, port: spare_port() };
        let data = pg.data();
        pg.run("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"]);
        pg.start_server();
        Some(pg)
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops it at once (`-m immediate`), with no clean goodbye to its clients.
    pub fn stop_server(&mut self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
    }

    /// Starts it on the same port and returns once it accepts connections.
    pub fn start_server(&mut self) {
        let dir = self.dir.path().display().to_string();
        let options = format!("-p {} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off", self.port);
        let log = Path::new(&dir).join("server.log").display().to_string();
        self.run("pg_ctl", &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "-t", "30", "start"]);
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
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        // Already stopped when the test failed during the outage: nothing to do.
        let _ = Self::command("pg_ctl").args(["-D", &self.data(), "-m", "immediate", "stop"]).output();
    }
}

/// A `redis-server` of the test's own (never the machine's shared one), killed when dropped.
#[derive(Debug)]
pub struct OwnRedis {
    child: Option<Child>,
    port: u16,
    /// Where its append-only file lives, when it keeps one (see [`OwnRedis::start_persistent`]).
    aof: Option<tempfile::TempDir>,
}

impl OwnRedis {
    /// Starts one on a spare port, with no persistence (a restart comes back empty), or
    /// `None` (a reported skip) when `redis-server` is not installed and services are
    /// not required.
    pub fn start(test: &str) -> Option<Self> {
        Self::start_with(test, None)
    }

    /// As [`start`](Self::start), with an append-only file (`appendfsync everysec`, in a
    /// directory of its own), as a deployment that keeps jobs on Redis runs it: every
    /// write it answered is in the file before a kill (of the process; not of the machine),
    /// so a restart comes back with it.
    pub fn start_persistent(test: &str) -> Option<Self> {
        Self::start_with(test, Some(tempfile::tempdir().expect("temp dir")))
    }

    fn start_with(test: &str, aof: Option<tempfile::TempDir>) -> Option<Self> {
        let mut redis = Self { child: None, port: spare_port(), aof };
        match redis.spawn() {
            Ok(()) => Some(redis),
            Err(e) => {
                assert!(!super::services_required(), "redis-server cannot be started: {e}");
                super::skipped(&format!("{test} (redis-server: {e})"));
                None
            }
        }
    }

    /// Starts it (again) on its port and returns once it accepts connections.
    pub fn spawn(&mut self) -> std::io::Result<()> {
        let port = self.port.to_string();
        let mut command = Command::new("redis-server");
        command.args(["--port", &port, "--bind", "127.0.0.1", "--save", ""]);
        match &self.aof {
            Some(dir) => command.args(["--appendonly", "yes", "--appendfsync", "everysec", "--dir"]).arg(dir.path()),
            None => command.args(["--appendonly", "no"]),
        };
        self.child = Some(command.stdout(Stdio::null()).spawn()?);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Kills it (SIGKILL): every connection drops at once.
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
