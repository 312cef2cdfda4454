//! Tests as trials of a harness of the test file's own (libtest-mimic, `harness = false`
//! in Cargo.toml), so that a test that needs what the machine lacks says so.
//!
//! A trial that needs a server whose `KERNEL_TEST_*_URL` is unset (or that this build
//! has no feature for), or a program or capability that is missing (`initdb`/`pg_ctl`,
//! `redis-server`, `mariadbd`, `/proc`), is reported as `ignored (<reason>)` and counted
//! as ignored in the run's closing line; it never passes having done nothing. With
//! `KERNEL_TEST_REQUIRE_SERVICES` on (`1`, `true`, `yes`, `on`), a missing URL or server
//! program is a failure (`/proc` is not a service: without it the trial stays ignored).
//! The URLs a trial needs are handed to its body ([`Urls`]); code the body cannot hand
//! them to asks [`Server::needed_url`], which fails the test when the URL is unset. Names, filters and flags are libtest's
//! (`--ignored`, `--exact`, `--nocapture`, `--test-threads`); output is not captured
//! (libtest-mimic has no capture), so a test's prints show in every run.
//!
//! ```ignore
//! fn main() {
//!     trials::run(vec![
//!         test("plain").run(|_| plain()),
//!         test("shared_by_two").threads(2).needs(Server::Redis).run(|urls| shared_by_two(urls.get(Server::Redis))),
//!     ]);
//! }
//! ```

use std::future::Future;

use app_kernel::db::DatabaseKind;
use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// Runs `trials` under libtest's arguments and exits with the run's status.
pub fn run(trials: Vec<Trial>) -> ! {
    libtest_mimic::run(&Arguments::from_args(), trials).exit()
}

/// A test named `name`, as `#[tokio::test]` would name it (the function's path in the file).
pub fn test(name: impl Into<String>) -> Test {
    Test { name: name.into(), threads: 0, servers: Vec::new(), programs: Vec::new(), opt_in: false }
}

/// Whether `KERNEL_TEST_REQUIRE_SERVICES` is on (`1`, `true`, `yes`, `on`, any case).
pub fn services_required() -> bool {
    std::env::var("KERNEL_TEST_REQUIRE_SERVICES")
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// A server a test may need, reached at the URL in its `KERNEL_TEST_*_URL` variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// `KERNEL_TEST_POSTGRES_URL`.
    Postgres,
    /// `KERNEL_TEST_MYSQL_URL` (MariaDB or MySQL).
    Mysql,
    /// `KERNEL_TEST_REDIS_URL`.
    Redis,
}

impl Server {
    /// The variable that holds its URL.
    pub fn var(self) -> &'static str {
        match self {
            Self::Postgres => "KERNEL_TEST_POSTGRES_URL",
            Self::Mysql => "KERNEL_TEST_MYSQL_URL",
            Self::Redis => "KERNEL_TEST_REDIS_URL",
        }
    }

    /// `postgres`, `mysql`, `redis`: the prefix of its trials' names.
    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
            Self::Redis => "redis",
        }
    }

    /// Whether this build has the feature that talks to it.
    pub fn built(self) -> bool {
        match self {
            Self::Postgres => cfg!(feature = "postgres"),
            Self::Mysql => cfg!(feature = "mysql"),
            Self::Redis => cfg!(feature = "redis"),
        }
    }

    /// The server of a database engine (none for SQLite).
    pub fn of(kind: DatabaseKind) -> Option<Self> {
        match kind {
            DatabaseKind::Sqlite => None,
            DatabaseKind::Postgres => Some(Self::Postgres),
            DatabaseKind::Mysql => Some(Self::Mysql),
        }
    }

    /// Its URL, for code a trial's body cannot hand [`Urls`] to: the trial must declare
    /// [`Test::needs`] (the harness ran it, so the URL is set); otherwise this panics, so
    /// a test that forgot fails instead of skipping.
    pub fn needed_url(self) -> String {
        self.url()
            .unwrap_or_else(|| panic!("{} is not set: the trial must declare .needs(Server::{self:?})", self.var()))
    }

    /// The one place the URL variables are read.
    fn url(self) -> Option<String> {
        std::env::var(self.var()).ok().filter(|url| !url.is_empty())
    }
}

/// A program or capability of the machine a test may need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    /// PostgreSQL's server programs (`initdb`, `pg_ctl`), for a cluster of the test's own.
    PostgresServer,
    /// `redis-server` on `PATH`, for a Redis of the test's own.
    RedisServer,
    /// `mariadb-install-db`, `mariadbd` and `mariadb` on `PATH`, for a MariaDB of the test's own.
    MariadbServer,
    /// Linux's `/proc`, to read a process's memory or CPUs (not a service: never required).
    Proc,
}

impl Program {
    /// Why it is missing, or `None` when it is there.
    fn missing(self) -> Option<&'static str> {
        let present = match self {
            Self::PostgresServer => super::own_server::pg_bin().is_some(),
            Self::RedisServer => on_path("redis-server"),
            Self::MariadbServer => ["mariadb-install-db", "mariadbd", "mariadb"].into_iter().all(on_path),
            Self::Proc => std::path::Path::new("/proc/self/status").exists(),
        };
        (!present).then_some(match self {
            Self::PostgresServer => "initdb/pg_ctl not found under /usr/lib/postgresql",
            Self::RedisServer => "redis-server not on PATH",
            Self::MariadbServer => "mariadb-install-db/mariadbd/mariadb not on PATH",
            Self::Proc => "no /proc",
        })
    }

    /// Whether `KERNEL_TEST_REQUIRE_SERVICES` makes its absence a failure.
    fn required(self) -> bool {
        !matches!(self, Self::Proc)
    }
}

/// Whether an executable file called `name` is in one of `PATH`'s directories.
fn on_path(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .filter_map(|dir| std::fs::metadata(dir.join(name)).ok())
        .any(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// The URLs of the servers a trial declared, handed to its body by the harness.
#[derive(Clone, Debug, Default)]
pub struct Urls(Vec<(Server, String)>);

impl Urls {
    /// The URL of `server`; panics when the trial did not declare it with [`Test::needs`].
    pub fn get(&self, server: Server) -> String {
        let found = self.0.iter().find(|(s, _)| *s == server).map(|(_, url)| url.clone());
        found.unwrap_or_else(|| panic!("the trial must declare .needs(Server::{server:?})"))
    }
}

/// Where one run of a test that goes [`Test::on_each`] server keeps its data.
#[derive(Clone, Debug)]
pub enum Engine {
    /// In the process (memory) or a local file (SQLite): needs nothing.
    Local,
    /// A PostgreSQL database at this URL.
    Postgres(String),
    /// A MariaDB/MySQL database at this URL.
    Mysql(String),
    /// A Redis server at this URL.
    Redis(String),
}

impl Engine {
    /// The engine of `server` at `url`.
    pub fn server(server: Server, url: String) -> Self {
        match server {
            Server::Postgres => Self::Postgres(url),
            Server::Mysql => Self::Mysql(url),
            Server::Redis => Self::Redis(url),
        }
    }

    /// The database engine `kind`, at its URL in `urls` for a server.
    pub fn database(kind: DatabaseKind, urls: &Urls) -> Self {
        Server::of(kind).map_or(Self::Local, |server| Self::server(server, urls.get(server)))
    }

    /// The SQL engine's name (SQLite for [`Engine::Local`]); `None` for Redis.
    pub fn sql_name(&self) -> Option<&'static str> {
        match self {
            Self::Local => Some("sqlite"),
            Self::Postgres(_) => Some("postgres"),
            Self::Mysql(_) => Some("mysql"),
            Self::Redis(_) => None,
        }
    }
}

/// A trial being described: its name, runtime and needs (see [`test`]).
#[derive(Clone, Debug)]
pub struct Test {
    name: String,
    /// 0: tokio's current-thread runtime (`#[tokio::test]`'s default).
    threads: usize,
    servers: Vec<Server>,
    programs: Vec<Program>,
    opt_in: bool,
}

impl Test {
    /// A multi-thread runtime of `n` workers (`flavor = "multi_thread", worker_threads = n`).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n;
        self
    }

    /// Needs `server`: ignored with the reason when its URL is unset (a failure when
    /// services are required); its URL is in the body's [`Urls`].
    pub fn needs(mut self, server: Server) -> Self {
        self.servers.push(server);
        self
    }

    /// Needs `program`: ignored with the reason when it is missing.
    pub fn needs_program(mut self, program: Program) -> Self {
        self.programs.push(program);
        self
    }

    /// Runs only when asked for, with `--ignored` (as `#[ignore]`).
    pub fn opt_in(mut self) -> Self {
        self.opt_in = true;
        self
    }

    /// The trial: `body` on a tokio runtime of its own, once its needs are met.
    pub fn run<F, Fut>(self, body: F) -> Trial
    where
        F: FnOnce(Urls) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let threads = self.threads;
        self.run_sync(move |urls| {
            let mut runtime = match threads {
                0 => tokio::runtime::Builder::new_current_thread(),
                n => {
                    let mut multi = tokio::runtime::Builder::new_multi_thread();
                    multi.worker_threads(n);
                    multi
                }
            };
            runtime.enable_all().build().expect("tokio runtime").block_on(body(urls));
        })
    }

    /// The trial: `body` on the harness's thread (as `#[test]`), once its needs are met.
    pub fn run_sync(self, body: impl FnOnce(Urls) + Send + 'static) -> Trial {
        let Self { name, servers, programs, opt_in, .. } = self;
        Trial::ignorable_test(name, move || {
            match needs_met(&servers, &programs)? {
                Ok(urls) => body(urls),
                Err(reason) => return Ok(Completion::ignored_with(reason)),
            }
            Ok(Completion::Completed)
        })
        .with_ignored_flag(opt_in)
    }

    /// This test in process and on each of `servers` this build talks to: the trial
    /// `NAME` runs `body(Engine::Local)` and needs nothing; `SERVER::NAME` runs it on
    /// that server and [`needs`](Test::needs) it.
    pub fn on_each<F, Fut>(self, servers: &[Server], body: F) -> Vec<Trial>
    where
        F: Fn(Engine) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let mut out = Vec::new();
        for &server in servers.iter().filter(|s| s.built()) {
            let body = body.clone();
            let on = Test { name: format!("{}::{}", server.name(), self.name), servers: vec![server], ..self.clone() };
            out.push(on.run(move |urls| body(Engine::server(server, urls.get(server)))));
        }
        out.insert(0, self.run(move |_| body(Engine::Local)));
        out
    }
}

/// The URLs of `servers` when all they and `programs` are there; `Ok(Err(reason))` for
/// an ignored trial; `Err` (a failure) for a missing service when services are required.
fn needs_met(servers: &[Server], programs: &[Program]) -> Result<Result<Urls, String>, Failed> {
    let required = services_required();
    let mut urls = Urls::default();
    for &server in servers {
        if !server.built() {
            return Ok(Err(format!("built without the {} feature", server.name())));
        }
        match server.url() {
            Some(url) => urls.0.push((server, url)),
            None if required => {
                return Err(format!("{} is not set but KERNEL_TEST_REQUIRE_SERVICES is on", server.var()).into())
            }
            None => return Ok(Err(format!("{} not set", server.var()))),
        }
    }
    for &program in programs {
        match program.missing() {
            Some(why) if required && program.required() => {
                return Err(format!("{why} but KERNEL_TEST_REQUIRE_SERVICES is on").into())
            }
            Some(why) => return Ok(Err(why.to_owned())),
            None => {}
        }
    }
    Ok(Ok(urls))
}
