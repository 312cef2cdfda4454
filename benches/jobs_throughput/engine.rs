//! The queue engines under test: a fresh, isolated store per run, dropped afterwards.
//!
//! SQLite: a temp file. PostgreSQL: a schema. MySQL/MariaDB: a database. Redis: a key
//! prefix, emptied with `prune` once every job has finished. Server engines run when
//! `KERNEL_BENCH_*_URL` (or else `KERNEL_TEST_*_URL`) is set.

use app_kernel::db::{DatabaseKind, DatabaseSettings, Db};
use app_kernel::jobs::{JobClient, JobRegistry, JobSettings};

/// An engine the bench can run on.
#[derive(Debug, Clone)]
pub(crate) struct Engine {
    pub(crate) name: &'static str,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Sqlite,
    Server(DatabaseKind, String),
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Redis(String),
}

fn url(engine: &str) -> Option<String> {
    [format!("KERNEL_BENCH_{engine}_URL"), format!("KERNEL_TEST_{engine}_URL")]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|u| !u.is_empty()))
}

/// The engines configured in the environment (SQLite always).
pub(crate) fn configured() -> Vec<Engine> {
    let mut out = vec![Engine { name: "sqlite", kind: Kind::Sqlite }];
    let mut server = |name: &'static str, var: &str, kind: DatabaseKind, compiled: bool| match url(var) {
        Some(u) if compiled => out.push(Engine { name, kind: Kind::Server(kind, u) }),
        Some(_) => eprintln!("skipped: {name} (feature not compiled in)"),
        None => eprintln!("skipped: {name} (KERNEL_BENCH_{var}_URL not set)"),
    };
    server("postgres", "POSTGRES", DatabaseKind::Postgres, cfg!(feature = "postgres"));
    server("mysql", "MYSQL", DatabaseKind::Mysql, cfg!(feature = "mysql"));
    match url("REDIS") {
        Some(u) if cfg!(feature = "redis") => out.push(Engine { name: "redis", kind: Kind::Redis(u) }),
        Some(_) => eprintln!("skipped: redis (feature not compiled in)"),
        None => eprintln!("skipped: redis (KERNEL_BENCH_REDIS_URL not set)"),
    }
    out
}

/// One run's store: the job client, a database for task contexts, and what to drop.
#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) client: JobClient,
    pub(crate) db: Db,
    admin: Option<(Db, String)>,
    _dir: tempfile::TempDir,
}

fn server_settings(kind: DatabaseKind, url: &str) -> DatabaseSettings {
    let mut s = DatabaseSettings::default();
    s.kind = kind;
    s.url = Some(url.to_owned().into());
    s
}

fn unique(stem: &str) -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("{stem}_{}", &id[id.len() - 12..])
}

impl Engine {
    /// A fresh store with `registry` and `settings`.
    pub(crate) async fn open(&self, registry: JobRegistry, settings: JobSettings) -> Store {
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = DatabaseSettings::sqlite(dir.path().join("bench.db").to_string_lossy());
        let name = unique("bench_jobs");
        let (db, admin) = match &self.kind {
            Kind::Sqlite | Kind::Redis(_) => (Db::connect(&sqlite, "bench").await.expect("sqlite"), None),
            Kind::Server(kind, url) => {
                let admin = Db::connect(&server_settings(*kind, url), "bench").await.expect("connect");
                let (create, drop, scoped) = if *kind == DatabaseKind::Postgres {
                    let sep = if url.contains('?') { '&' } else { '?' };
                    let scoped = format!("{url}{sep}options=-csearch_path%3D{name}");
                    (format!("CREATE SCHEMA {name}"), format!("DROP SCHEMA {name} CASCADE"), scoped)
                } else {
                    let (base, _) = url.rsplit_once('/').expect("URL with a database path");
                    (format!("CREATE DATABASE {name}"), format!("DROP DATABASE {name}"), format!("{base}/{name}"))
                };
                admin.execute(&create, &[]).await.expect("create");
                let db = Db::connect(&server_settings(*kind, &scoped), "bench").await.expect("connect scoped");
                (db, Some((admin, drop)))
            }
        };
        let client = match &self.kind {
            #[cfg(feature = "redis")]
            Kind::Redis(url) => {
                JobClient::redis(url, &format!("{name}:"), registry, settings).await.expect("redis queue")
            }
            _ => JobClient::sql(db.clone(), registry, settings).await.expect("sql queue"),
        };
        Store { client, db, admin, _dir: dir }
    }
}

impl Store {
    /// Deletes every finished job (Redis keys included) and drops the schema/database.
    pub(crate) async fn finish(self) {
        self.client.backend().prune(i64::MAX).await.expect("prune");
        self.db.close().await;
        if let Some((admin, drop)) = self.admin {
            admin.execute(&drop, &[]).await.expect("drop");
            admin.close().await;
        }
    }
}
