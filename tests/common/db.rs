//! A fresh, isolated database per test, on any engine.
//!
//! SQLite: a file in a temp dir. PostgreSQL: a schema per test, selected through the
//! URL's `options=-csearch_path=...`. MySQL/MariaDB: a database per test. A server's
//! URL comes from the harness ([`super::trials`]), which ignores a trial whose
//! `KERNEL_TEST_*_URL` is unset.
//!
//! The schema or database is dropped when the `TestDb` is: by [`TestDb::finish`], or,
//! for a test that panicked or never called it, by `Drop` (on a thread of its own,
//! bounded in time), so a run leaves nothing behind on the shared servers.

use app_kernel::db::{DatabaseKind, DatabaseSettings, Db, SchemaPolicy};
use secrecy::SecretString;

use super::trials::Engine;

/// One test's database.
#[derive(Debug)]
pub struct TestDb {
    /// The handle under test.
    pub db: Db,
    settings: DatabaseSettings,
    cleanup: Option<Cleanup>,
    _dir: Option<tempfile::TempDir>,
}

/// How to drop a server engine's test schema or database.
#[derive(Debug)]
struct Cleanup {
    kind: DatabaseKind,
    /// The server's URL (not the test database's).
    url: String,
    /// `DROP SCHEMA ... CASCADE` or `DROP DATABASE ...`.
    drop: String,
}

impl Cleanup {
    async fn run(&self) -> Result<(), String> {
        let mut admin = settings(self.kind, &self.url);
        admin.pool_size = 1;
        let admin = Db::connect(&admin, "test").await.map_err(|e| e.to_string())?;
        // A lock held by a test that failed mid-transaction fails the drop instead of hanging it.
        let bound = match self.kind {
            DatabaseKind::Postgres => Some("SET lock_timeout = '10s'"),
            DatabaseKind::Mysql => Some("SET SESSION lock_wait_timeout = 10"),
            DatabaseKind::Sqlite => None,
        };
        if let Some(bound) = bound {
            admin.execute(bound, &[]).await.map_err(|e| e.to_string())?;
        }
        let dropped = admin.execute(&self.drop, &[]).await.map_err(|e| e.to_string());
        admin.close().await;
        dropped.map(|_| ())
    }
}

fn settings(kind: DatabaseKind, url: &str) -> DatabaseSettings {
    let mut s = DatabaseSettings::default();
    s.kind = kind;
    s.url = Some(SecretString::from(url.to_owned()));
    s.pool_size = 8;
    s.schema = SchemaPolicy::additive();
    s
}

fn with_query(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let (prefix, _) = base.rsplit_once('/').expect("URL with a database path");
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

impl TestDb {
    /// A fresh SQLite database in a temp dir.
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("test.db");
        let mut settings = DatabaseSettings::sqlite(path.to_string_lossy());
        settings.schema = SchemaPolicy::additive();
        let db = Db::connect(&settings, "test").await.expect("open sqlite");
        Self { db, settings, cleanup: None, _dir: Some(dir) }
    }

    /// A fresh database on `engine`: SQLite for [`Engine::Local`], a schema or database
    /// on a server's URL otherwise.
    pub async fn new(engine: &Engine) -> Self {
        Self::with_charset(engine, "utf8mb4 COLLATE utf8mb4_bin").await
    }

    /// As [`TestDb::new`], with a MySQL database whose default character set is
    /// `charset` (what a server configured otherwise gives new tables).
    pub async fn with_charset(engine: &Engine, charset: &str) -> Self {
        let name = super::unique_name("t");
        match engine {
            Engine::Local => Self::sqlite().await,
            Engine::Postgres(url) => {
                let kind = DatabaseKind::Postgres;
                let admin = Db::connect(&settings(kind, url), "test").await.expect("connect postgres");
                admin.execute(&format!("CREATE SCHEMA {name}"), &[]).await.expect("create schema");
                admin.close().await;
                let cleanup = Cleanup { kind, drop: format!("DROP SCHEMA {name} CASCADE"), url: url.clone() };
                let settings = settings(kind, &with_query(url, &format!("options=-csearch_path%3D{name}")));
                let db = Db::connect(&settings, "test").await.expect("connect postgres schema");
                Self { db, settings, cleanup: Some(cleanup), _dir: None }
            }
            Engine::Mysql(url) => {
                let kind = DatabaseKind::Mysql;
                let admin = Db::connect(&settings(kind, url), "test").await.expect("connect mysql");
                let create = format!("CREATE DATABASE {name} CHARACTER SET {charset}");
                admin.execute(&create, &[]).await.expect("create database");
                admin.close().await;
                let cleanup = Cleanup { kind, drop: format!("DROP DATABASE {name}"), url: url.clone() };
                let settings = settings(kind, &with_database(url, &name));
                let db = Db::connect(&settings, "test").await.expect("connect mysql database");
                Self { db, settings, cleanup: Some(cleanup), _dir: None }
            }
            Engine::Redis(_) => panic!("Redis is not a database engine"),
        }
    }

    /// The settings that reach this database (for a service under test).
    pub fn settings(&self) -> &DatabaseSettings {
        &self.settings
    }

    /// Another handle on the same database, with the schema policy given.
    pub async fn connect(&self, schema: SchemaPolicy) -> Db {
        let mut s = self.settings.clone();
        s.schema = schema;
        Db::connect(&s, "test").await.expect("second handle")
    }

    /// Another handle on the same database with a single connection, so that every
    /// statement runs on it (and finds what it cached).
    pub async fn connect_single(&self) -> Db {
        let mut s = self.settings.clone();
        s.pool_size = 1;
        Db::connect(&s, "test").await.expect("single-connection handle")
    }

    /// Closes the handle and drops the schema or database.
    pub async fn finish(mut self) {
        self.db.close().await;
        if let Some(cleanup) = self.cleanup.take() {
            cleanup.run().await.unwrap_or_else(|e| panic!("drop test database ({}): {e}", cleanup.drop));
        }
    }
}

impl Drop for TestDb {
    /// Drops the schema or database of a test that did not [`TestDb::finish`] (one that
    /// panicked, say), on a thread with a runtime of its own: this one may be inside
    /// the test's runtime, which cannot be blocked on. Never panics (a panic while
    /// unwinding aborts); a failure is reported on stderr.
    fn drop(&mut self) {
        let Some(cleanup) = self.cleanup.take() else { return };
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let result = match runtime {
                Ok(runtime) => runtime.block_on(cleanup.run()),
                Err(e) => Err(e.to_string()),
            };
            let _ = done.send(result.map_err(|e| format!("{}: {e}", cleanup.drop)));
        });
        let failed = match finished.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e,
            Err(_) => "the drop took over 30 s".to_owned(),
        };
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), "left behind: {failed}");
    }
}
