//! Servers of a test's own, on spare loopback ports, for the scenarios that stop
//! them: a PostgreSQL cluster (`initdb` + `pg_ctl`) and a `redis-server`. The
//! machine's shared servers are never stopped. Each is stopped and removed when
//! dropped, so a failing test leaves nothing running. A trial that starts one declares
//! the program with [`super::trials::Test::needs_program`], so it is ignored, not
//! failed, on a machine without it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on loopback (free when asked).
pub fn spare_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The directory of PostgreSQL's server programs (Debian: `/usr/lib/postgresql/N/bin`).
pub fn pg_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

/// The CPU time (user + system) process `pid` has used, in clock ticks (`/proc/PID/stat`),
/// with its waited-for children's when `waited` is set; 0 once it is gone.
pub fn process_cpu_ticks(pid: u32, waited: bool) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces), from field 3 (state) on.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    field(14) + field(15) + if waited { field(16) + field(17) } else { 0 }
}

/// The live children of process `parent`.
fn children(parent: u32) -> impl Iterator<Item = u32> {
    let entries = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    entries.filter_map(move |e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let ppid: u32 = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == parent).then_some(pid)
    })
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
    /// Starts a cluster (the trial needs [`Program::PostgresServer`](super::trials::Program)).
    pub fn launch() -> Self {
        assert!(pg_bin().is_some(), "initdb/pg_ctl not found: the trial must declare .needs_program(PostgresServer)");
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
        pg
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

    /// The CPU time its processes have used, in clock ticks: the postmaster's, its
    /// exited children's (backends it waited for) and its live children's.
    pub fn cpu_ticks(&self) -> u64 {
        let pidfile = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid")).unwrap_or_default();
        let Some(postmaster) = pidfile.lines().next().and_then(|l| l.trim().parse::<u32>().ok()) else { return 0 };
        process_cpu_ticks(postmaster, true) + children(postmaster).map(|c| process_cpu_ticks(c, false)).sum::<u64>()
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
    /// Where its append-only file lives, when it keeps one (see [`OwnRedis::launch_persistent`]).
    aof: Option<tempfile::TempDir>,
}

impl OwnRedis {
    /// Starts one on a spare port, with no persistence (a restart comes back empty); the
    /// trial needs [`Program::RedisServer`](super::trials::Program).
    pub fn launch() -> Self {
        Self::launch_with(None)
    }

    /// As [`launch`](Self::launch), with an append-only file (`appendfsync everysec`, in a
    /// directory of its own), as a deployment that keeps jobs on Redis runs it: every
    /// write it answered is in the file before a kill (of the process; not of the machine),
    /// so a restart comes back with it.
    pub fn launch_persistent() -> Self {
        Self::launch_with(Some(tempfile::tempdir().expect("temp dir")))
    }

    fn launch_with(aof: Option<tempfile::TempDir>) -> Self {
        let mut redis = Self { child: None, port: spare_port(), aof };
        redis.spawn().unwrap_or_else(|e| panic!("redis-server cannot be started: {e}"));
        redis
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
