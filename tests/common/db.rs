//! A fresh, isolated database per test, on any engine.
//!
//! SQLite: a file in a temp dir. PostgreSQL: a schema per test, selected through the
//! URL's `options=-csearch_path=...`. MySQL/MariaDB: a database per test. Server
//! engines are skipped (or fail, with `KERNEL_TEST_REQUIRE_SERVICES=1` or `true`) when their
//! `KERNEL_TEST_*_URL` is unset.

use app_kernel::db::{DatabaseKind, DatabaseSettings, Db, SchemaPolicy};
use secrecy::SecretString;

/// One test's database.
#[derive(Debug)]
pub struct TestDb {
    /// The handle under test.
    pub db: Db,
    settings: DatabaseSettings,
    admin: Option<(Db, String)>,
    _dir: Option<tempfile::TempDir>,
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
    /// A fresh database on `kind`, or `None` when that engine is not configured.
    pub async fn new(kind: DatabaseKind, test: &str) -> Option<Self> {
        Self::with_charset(kind, test, "utf8mb4 COLLATE utf8mb4_bin").await
    }

    /// As [`TestDb::new`], with a MySQL database whose default character set is
    /// `charset` (what a server configured otherwise gives new tables).
    pub async fn with_charset(kind: DatabaseKind, test: &str, charset: &str) -> Option<Self> {
        let name = super::unique_name("t");
        match kind {
            DatabaseKind::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path = dir.path().join("test.db");
                let mut settings = DatabaseSettings::sqlite(path.to_string_lossy());
                settings.schema = SchemaPolicy::additive();
                let db = Db::connect(&settings, "test").await.expect("open sqlite");
                Some(Self { db, settings, admin: None, _dir: Some(dir) })
            }
            DatabaseKind::Postgres => {
                let url = super::service_url("KERNEL_TEST_POSTGRES_URL", test)?;
                let admin = Db::connect(&settings(kind, &url), "test").await.expect("connect postgres");
                admin.execute(&format!("CREATE SCHEMA {name}"), &[]).await.expect("create schema");
                let settings = settings(kind, &with_query(&url, &format!("options=-csearch_path%3D{name}")));
                let db = Db::connect(&settings, "test").await.expect("connect postgres schema");
                Some(Self { db, settings, admin: Some((admin, format!("DROP SCHEMA {name} CASCADE"))), _dir: None })
            }
            DatabaseKind::Mysql => {
                let url = super::service_url("KERNEL_TEST_MYSQL_URL", test)?;
                let admin = Db::connect(&settings(kind, &url), "test").await.expect("connect mysql");
                let create = format!("CREATE DATABASE {name} CHARACTER SET {charset}");
                admin.execute(&create, &[]).await.expect("create database");
                let settings = settings(kind, &with_database(&url, &name));
                let db = Db::connect(&settings, "test").await.expect("connect mysql database");
                Some(Self { db, settings, admin: Some((admin, format!("DROP DATABASE {name}"))), _dir: None })
            }
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

    /// Drops the schema or database.
    pub async fn finish(self) {
        self.db.close().await;
        if let Some((admin, drop)) = self.admin {
            admin.execute(&drop, &[]).await.expect("drop test database");
            admin.close().await;
        }
    }
}
