//! The jobs engines under test, and how a worker process reaches the same queue.
//!
//! A [`Target`] is what a worker process needs to open the queue and the table of
//! side effects: it travels to the child in environment variables. SQL engines keep
//! both in one test database (`TestDb`: a SQLite file, a PostgreSQL schema, a MariaDB
//! database); Redis keeps the jobs under a key prefix of its own and the side effects
//! in a SQLite file that every process opens.

use std::time::Duration;

use app_kernel::db::{DatabaseKind, DatabaseSettings, Db, SchemaPolicy};
use app_kernel::jobs::{now_ms, JobClient, JobContext, JobRegistry, JobSettings, TaskError};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{json, Value};

use crate::common;
use crate::common::db::TestDb;
use crate::common::trials;

const KIND: &str = "APP_KERNEL_CRASH_DB_KIND";
const URL: &str = "APP_KERNEL_CRASH_DB_URL";
const REDIS: &str = "APP_KERNEL_CRASH_REDIS_URL";
const PREFIX: &str = "APP_KERNEL_CRASH_REDIS_PREFIX";
const GRACE: &str = "APP_KERNEL_CRASH_GRACE_MS";

/// How long a claim holds a job without a heartbeat: what a killed worker's jobs wait
/// before another worker takes them.
pub(crate) const LEASE: Duration = Duration::from_secs(1);
/// Jobs one worker process runs at once.
pub(crate) const CONCURRENCY: usize = 4;

/// Where the queue and the side effects live.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    kind: DatabaseKind,
    db_url: String,
    redis: Option<(String, String)>,
    /// On SIGTERM, how long a worker lets its running jobs finish.
    pub(crate) grace: Duration,
}

/// The side effect of a job: one row per run, with the process that ran it and when
/// the run started.
async fn work(payload: Value, ctx: JobContext) -> Result<Value, TaskError> {
    let (pid, at) = (i64::from(std::process::id()), now_ms());
    let row = [json!(ctx.job_id), json!(pid), json!(at)];
    ctx.db().execute("INSERT INTO [crash_runs] ([job_id], [pid], [at]) VALUES (?, ?, ?)", &row).await?;
    tokio::time::sleep(Duration::from_millis(payload["ms"].as_u64().unwrap_or(50))).await;
    Ok(json!("ok"))
}

fn job_settings(grace: Duration) -> JobSettings {
    let mut s = JobSettings::default();
    s.lease = LEASE;
    s.poll_interval = Duration::from_millis(50);
    s.worker_count = CONCURRENCY;
    s.backoff_base = Duration::ZERO;
    s.shutdown_grace = grace;
    s
}

fn kind_name(kind: DatabaseKind) -> &'static str {
    match kind {
        DatabaseKind::Sqlite => "sqlite",
        DatabaseKind::Postgres => "postgres",
        DatabaseKind::Mysql => "mysql",
    }
}

impl Target {
    /// The environment a worker process reads this target from.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            (KIND, kind_name(self.kind).to_owned()),
            (URL, self.db_url.clone()),
            (GRACE, self.grace.as_millis().to_string()),
        ];
        if let Some((url, prefix)) = &self.redis {
            env.extend([(REDIS, url.clone()), (PREFIX, prefix.clone())]);
        }
        env
    }

    /// The target a parent gave this worker process.
    pub(crate) fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name}: started by the crash test"));
        let kind = match var(KIND).as_str() {
            "sqlite" => DatabaseKind::Sqlite,
            "postgres" => DatabaseKind::Postgres,
            "mysql" => DatabaseKind::Mysql,
            other => panic!("unknown database kind {other}"),
        };
        let redis = std::env::var(REDIS).ok().map(|url| (url, var(PREFIX)));
        let grace = Duration::from_millis(var(GRACE).parse().expect("grace in ms"));
        Self { kind, db_url: var(URL), redis, grace }
    }

    /// The database of side effects (and of the SQL queue) and a client of the queue.
    pub(crate) async fn open(&self) -> (Db, JobClient) {
        let mut settings = match self.kind {
            DatabaseKind::Sqlite => DatabaseSettings::sqlite(self.db_url.clone()),
            DatabaseKind::Postgres | DatabaseKind::Mysql => {
                let mut s = DatabaseSettings::default();
                s.kind = self.kind;
                s.url = Some(SecretString::from(self.db_url.clone()));
                s
            }
        };
        settings.pool_size = 6;
        settings.schema = SchemaPolicy::additive();
        let db = Db::connect(&settings, "crash").await.expect("connect the test database");
        let registry = JobRegistry::new().task("work", work);
        let client = match &self.redis {
            #[cfg(feature = "redis")]
            Some((url, prefix)) => JobClient::redis(url, prefix, registry, job_settings(self.grace)).await,
            #[cfg(not(feature = "redis"))]
            Some(_) => unreachable!("a Redis target needs the redis feature"),
            None => JobClient::sql(db.clone(), registry, job_settings(self.grace)).await,
        };
        (db, client.expect("open the queue"))
    }
}

/// One engine's run: its target, the parent's handles on it, and what to drop after.
pub(crate) struct Engine {
    pub(crate) name: &'static str,
    pub(crate) target: Target,
    pub(crate) db: Db,
    pub(crate) client: JobClient,
    test_db: TestDb,
}

impl Engine {
    /// The engine of `on` (SQLite in process; Redis keeps its side effects in SQLite).
    pub(crate) async fn open(on: trials::Engine, grace: Duration) -> Self {
        let (name, test_db, redis) = match &on {
            trials::Engine::Local => ("sqlite", TestDb::sqlite().await, None),
            trials::Engine::Postgres(_) => ("postgres", TestDb::new(&on).await, None),
            trials::Engine::Mysql(_) => ("mysql", TestDb::new(&on).await, None),
            trials::Engine::Redis(url) => {
                let prefix = format!("{}:", common::unique_name("crash"));
                ("redis", TestDb::sqlite().await, Some((url.clone(), prefix)))
            }
        };
        let settings = test_db.settings();
        let db_url = match settings.kind {
            DatabaseKind::Sqlite => settings.name.clone().expect("sqlite path"),
            DatabaseKind::Postgres | DatabaseKind::Mysql => {
                settings.url.as_ref().expect("server URL").expose_secret().to_owned()
            }
        };
        let target = Target { kind: settings.kind, db_url, redis, grace };
        let (db, client) = target.open().await;
        db.execute(
            "CREATE TABLE [crash_runs] ([job_id] VARCHAR(64) NOT NULL, [pid] BIGINT NOT NULL, [at] BIGINT NOT NULL)",
            &[],
        )
        .await
        .expect("side-effect table");
        Self { name, target, db, client, test_db }
    }

    /// Deletes the finished jobs (all there are at the end: on Redis, every key of the
    /// prefix) and drops the test database.
    pub(crate) async fn finish(self) {
        if let Err(e) = self.client.backend().prune(i64::MAX).await {
            eprintln!("{}: pruning the finished jobs failed: {e}", self.name);
        }
        self.db.close().await;
        self.test_db.finish().await;
    }
}
