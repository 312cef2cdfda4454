//! The database a [`TestApp`](super::TestApp) owns: a SQLite file in a directory of
//! its own, a PostgreSQL schema, or a MySQL/MariaDB database, each under a name
//! unique to it.
//!
//! Guarantee: what was created is removed once, by [`Scratch::remove`] or, if that
//! was not called, when the scratch is dropped (even while a failed test unwinds).
//! The drop connects afresh on a thread of its own with its own runtime, so it works
//! whatever runtime the test ran on; a failure there is reported on stderr, never
//! as a panic inside a drop.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use crate::db::{DatabaseKind, DatabaseSettings, Db};

/// How long creating or dropping a schema or database may take.
const STATEMENT_DEADLINE: Duration = Duration::from_secs(30);

/// One test app's database, removed when dropped.
#[derive(Debug)]
pub(super) struct Scratch {
    name: String,
    place: Place,
    removed: bool,
}

#[derive(Debug)]
enum Place {
    /// A directory holding the SQLite file.
    Directory(PathBuf),
    /// A schema or database on a server: the URL that reaches the server as given,
    /// and the statement that drops what was created.
    Server { admin_url: SecretString, kind: DatabaseKind, drop: String },
}

impl Scratch {
    /// A SQLite file in a new directory under the system's temporary directory.
    pub(super) fn sqlite() -> (Self, DatabaseSettings) {
        let name = unique_name();
        let dir = std::env::temp_dir().join(format!("app-kernel-{name}"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("TestApp: cannot create {}: {e}", dir.display()));
        let file = dir.join("test.db").display().to_string();
        let settings = DatabaseSettings::sqlite(file.clone());
        (Self { name: file, place: Place::Directory(dir), removed: false }, settings)
    }

    /// A new schema (PostgreSQL, selected by `search_path`) or database (MySQL) on the
    /// server `url` names, and the settings that reach it.
    pub(super) async fn on_server(url: &str) -> (Self, DatabaseSettings) {
        let kind = DatabaseKind::from_url(url).unwrap_or_else(|| {
            panic!("TestApp: `{}` is not a postgres:// or mysql:// URL", scheme(url));
        });
        let name = unique_name();
        let (create, drop, app_url) = match kind {
            DatabaseKind::Postgres => (
                format!("CREATE SCHEMA {name}"),
                format!("DROP SCHEMA IF EXISTS {name} CASCADE"),
                with_query(url, &format!("options=-csearch_path%3D{name}")),
            ),
            DatabaseKind::Mysql => (
                format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"),
                format!("DROP DATABASE IF EXISTS {name}"),
                with_database(url, &name),
            ),
            DatabaseKind::Sqlite => panic!("TestApp: a SQLite URL needs no server; use TestApp::new"),
        };
        let admin_url = SecretString::from(url.to_owned());
        run_statement(&admin_url, kind, &create).await.unwrap_or_else(|e| panic!("TestApp: {create}: {e}"));
        let mut settings = DatabaseSettings { kind, url: Some(app_url.into()), ..DatabaseSettings::default() };
        settings.pool_size = 4; // many tests at once share the server's connection limit
        (Self { name, place: Place::Server { admin_url, kind, drop }, removed: false }, settings)
    }

    /// The SQLite file's path, or the schema's or database's name.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Removes the database now (the app's pool closed first).
    pub(super) async fn remove(mut self) {
        self.removed = true;
        match &self.place {
            Place::Directory(dir) => remove_dir(dir),
            Place::Server { admin_url, kind, drop } => {
                run_statement(admin_url, *kind, drop).await.unwrap_or_else(|e| panic!("TestApp: {drop}: {e}"));
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        match &self.place {
            Place::Directory(dir) => remove_dir(dir),
            Place::Server { admin_url, kind, drop } => {
                let (url, kind, drop) = (admin_url.clone(), *kind, drop.clone());
                let done = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    runtime
                        .block_on(run_statement(&url, kind, &drop))
                        .map_err(|e| std::io::Error::other(format!("{drop}: {e}")))
                })
                .join();
                if let Ok(Err(e)) = done {
                    use std::io::Write as _;
                    let _ = writeln!(std::io::stderr().lock(), "TestApp: cleanup failed: {e}");
                }
            }
        }
    }
}

/// Runs one statement on a connection of its own, within [`STATEMENT_DEADLINE`].
async fn run_statement(url: &SecretString, kind: DatabaseKind, sql: &str) -> Result<(), String> {
    let work = async {
        let mut settings = DatabaseSettings { kind, url: Some(url.clone()), ..DatabaseSettings::default() };
        settings.pool_size = 1;
        let db = Db::connect(&settings, "test").await.map_err(|e| e.to_string())?;
        let outcome = db.execute(sql, &[]).await.map(drop).map_err(|e| e.to_string());
        db.close().await;
        outcome
    };
    tokio::time::timeout(STATEMENT_DEADLINE, work)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", STATEMENT_DEADLINE.as_secs())))
}

fn remove_dir(dir: &std::path::Path) {
    let _ = std::fs::remove_dir_all(dir);
}

/// `test_` and 12 hex digits: a valid, lower-case identifier on every engine.
fn unique_name() -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("test_{}", &id[id.len() - 12..])
}

/// The scheme only: an error message never shows a URL's password.
fn scheme(url: &str) -> &str {
    url.split_once("://").map_or("?", |(scheme, _)| scheme)
}

fn with_query(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

/// `url` with its database path replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let rest = base.split_once("://").map_or(base, |(_, rest)| rest);
    let prefix = if rest.contains('/') { base.rsplit_once('/').map_or(base, |(p, _)| p) } else { base };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{unique_name, with_database, with_query};

    #[test]
    fn names_are_identifiers_and_differ() {
        let (a, b) = (unique_name(), unique_name());
        assert_ne!(a, b);
        assert!(a.len() == 17 && a.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'), "{a}");
    }

    #[test]
    fn urls_are_pointed_at_the_scratch() {
        assert_eq!(with_database("mysql://root@h:3306/test", "t1"), "mysql://root@h:3306/t1");
        assert_eq!(with_database("mysql://root@h:3306", "t1"), "mysql://root@h:3306/t1");
        assert_eq!(with_database("mysql://u@h/db?ssl-mode=disabled", "t1"), "mysql://u@h/t1?ssl-mode=disabled");
        assert_eq!(with_query("postgres://h/db", "a=b"), "postgres://h/db?a=b");
        assert_eq!(with_query("postgres://h/db?x=y", "a=b"), "postgres://h/db?x=y&a=b");
    }
}
