//! Versioned migrations: numbered SQL files, applied once each, in order, by one runner
//! at a time, recorded with a checksum in `kernel_migrations`.
//!
//! **Files.** `VERSION_NAME.sql` runs on every engine; `VERSION_NAME.ENGINE.sql`
//! (`ENGINE` = `postgres`, `mysql` or `sqlite`) only on that engine, and wins there over
//! a file without an engine: `0002_tags.sql` with `0002_tags.mysql.sql` gives MySQL its own
//! and the others the shared one. `VERSION` is digits (`0001`, or a timestamp such as
//! `20250105120000`), `NAME` ASCII letters, digits, `_` and `-`. Files are plain SQL in the
//! engine's own syntax (no `[field]` or `?` translation), split into statements by the
//! rule of the `split` module: `;` outside literals, quoted names, comments, dollar
//! quotes and trigger bodies.
//!
//! **Guarantees.** [`Db::migrate`](crate::Db::migrate) applies the pending files in version
//! order, each in its own transaction that first takes the migration lock (PostgreSQL
//! `pg_advisory_xact_lock`, per schema; MySQL `GET_LOCK`, per database, released
//! explicitly; SQLite `BEGIN IMMEDIATE`, the database's write lock), then looks again at
//! what is applied: of several instances starting at once, exactly one applies each file
//! and the others wait and skip it. Before anything runs, it refuses (naming the file) an
//! applied file whose checksum (SHA-256 of the text, line endings as `\n`) changed, an
//! applied version whose file is gone, and a pending file numbered below one already
//! applied. A failed statement fails its file, names the file, the statement and its line,
//! and leaves the database as it was on PostgreSQL and SQLite; MySQL commits each DDL
//! statement as it runs (and runs what follows it outside the transaction), so the file's
//! earlier statements may stay (the file is not recorded: make its statements safe to run
//! again, or keep one DDL statement per file).
//!
//! ```no_run
//! # async fn run() -> Result<(), app_kernel::BootError> {
//! use app_kernel::Service;
//! Service::builder("projects")
//!     .migrations(app_kernel::migrations!("examples/migrations/projects")) // embedded at compile time
//!     .run() // applies pending files at start-up; `migrate`, `migrate status`
//!     .await
//! # }
//! ```

mod error;
mod run;
mod split;

use std::borrow::Cow;
use std::path::Path;

pub use error::MigrateError;
pub use run::{AppliedMigration, MigrationState, MigrationStatus};

use crate::db::DatabaseKind;

/// The app's migration files, for every engine. Build it with
/// [`migrations!`](crate::migrations) (a folder embedded at compile time),
/// [`Migrations::from_dir`] (read at start-up) or [`Migrations::file`].
#[derive(Debug, Clone, Default)]
pub struct Migrations {
    files: Vec<(Cow<'static, str>, Cow<'static, str>)>,
}

/// One file chosen for the engine, ready to apply.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub(crate) version: u64,
    pub(crate) name: String,
    pub(crate) file: String,
    pub(crate) sql: String,
    pub(crate) checksum: String,
}

impl Migrations {
    /// No migrations.
    pub fn new() -> Self {
        Self::default()
    }

    /// Files given as `(file name, SQL)` pairs: what [`migrations!`](crate::migrations) builds.
    pub fn from_static(files: &[(&'static str, &'static str)]) -> Self {
        Self { files: files.iter().map(|(name, sql)| (Cow::Borrowed(*name), Cow::Borrowed(*sql))).collect() }
    }

    /// Adds the file `name` (e.g. `0003_add_budget.sql`) holding `sql`.
    #[must_use]
    pub fn file(mut self, name: impl Into<String>, sql: impl Into<String>) -> Self {
        self.files.push((Cow::Owned(name.into()), Cow::Owned(sql.into())));
        self
    }

    /// Every `*.sql` file of the folder `dir`, read now (other files are ignored).
    ///
    /// # Errors
    /// [`MigrateError::Read`] when the folder or a file cannot be read.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, MigrateError> {
        let dir = dir.as_ref();
        let read = |path: &Path, e: std::io::Error| MigrateError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let mut migrations = Self::new();
        for entry in std::fs::read_dir(dir).map_err(|e| read(dir, e))? {
            let path = entry.map_err(|e| read(dir, e))?.path();
            if !path.is_file() || path.extension().is_none_or(|e| e != "sql") {
                continue;
            }
            let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| MigrateError::InvalidFileName {
                file: path.display().to_string(),
                reason: "not UTF-8".into(),
            })?;
            let sql = std::fs::read_to_string(&path).map_err(|e| read(&path, e))?;
            migrations = migrations.file(name, sql);
        }
        Ok(migrations)
    }

    /// Whether there is no file at all.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The file of each version for `kind`, in version order, checked.
    pub(crate) fn plan(&self, kind: DatabaseKind) -> Result<Vec<Planned>, MigrateError> {
        // Per version: its name, the shared file and this engine's file.
        let mut versions: std::collections::BTreeMap<u64, (String, String, Option<usize>, Option<usize>)> =
            std::collections::BTreeMap::new();
        for (index, (file, _)) in self.files.iter().enumerate() {
            let (version, name, engine) = parse_file_name(file)?;
            let entry = versions.entry(version).or_insert_with(|| (name.clone(), file.to_string(), None, None));
            let clash = |other: &str| MigrateError::DuplicateVersion {
                version,
                first: other.to_owned(),
                second: file.to_string(),
            };
            if entry.0 != name {
                return Err(clash(&entry.1));
            }
            let slot = match engine {
                None => &mut entry.2,
                Some(e) if e == kind.feature() => &mut entry.3,
                Some(_) => continue,
            };
            if let Some(other) = slot {
                return Err(clash(&self.files[*other].0));
            }
            *slot = Some(index);
        }
        let mut plan = Vec::with_capacity(versions.len());
        for (version, (name, _, shared, own)) in versions {
            let Some(index) = own.or(shared) else {
                let expected = format!("{}.{}.sql", self.version_prefix(version, &name), kind.feature());
                return Err(MigrateError::NoFileForEngine { version, name, engine: kind.feature(), expected });
            };
            let (file, sql) = &self.files[index];
            let sql = sql.replace("\r\n", "\n");
            plan.push(Planned { version, name, file: file.to_string(), checksum: checksum(&sql), sql });
        }
        Ok(plan)
    }

    /// `0002_tags`, as the files of `version` spell it.
    fn version_prefix(&self, version: u64, name: &str) -> String {
        self.files
            .iter()
            .find_map(|(file, _)| {
                let (v, n, _) = parse_file_name(file).ok()?;
                (v == version && n == name).then(|| file.split('.').next().unwrap_or(file).to_owned())
            })
            .unwrap_or_else(|| format!("{version}_{name}"))
    }
}

/// The SHA-256 of `sql`, in hex.
fn checksum(sql: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(sql.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// `0002_add_tags.mysql.sql` -> (2, `add_tags`, Some(`mysql`)).
fn parse_file_name(file: &str) -> Result<(u64, String, Option<&str>), MigrateError> {
    let bad = |reason: &str| MigrateError::InvalidFileName { file: file.to_owned(), reason: reason.to_owned() };
    let base = Path::new(file).file_name().and_then(|n| n.to_str()).unwrap_or(file);
    let stem = base.strip_suffix(".sql").ok_or_else(|| bad("not a .sql file"))?;
    let (stem, engine) = match stem.split_once('.') {
        None => (stem, None),
        Some((stem, engine)) => {
            let known = DatabaseKind::parse(engine).filter(|k| k.feature() == engine);
            if known.is_none() {
                return Err(bad(&format!("`{engine}` is not an engine: use postgres, mysql or sqlite")));
            }
            (stem, Some(engine))
        }
    };
    let digits = stem.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(bad("it does not start with a version number"));
    }
    let version: u64 = stem[..digits]
        .parse()
        .ok()
        .filter(|v| i64::try_from(*v).is_ok())
        .ok_or_else(|| bad("the version is too large"))?;
    let name = stem[digits..].strip_prefix('_').ok_or_else(|| bad("no `_` between the version and the name"))?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(bad("the name must be ASCII letters, digits, `_` or `-`"));
    }
    Ok((version, name.to_owned(), engine))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_give_version_name_and_engine() {
        assert_eq!(parse_file_name("0001_create_projects.sql").unwrap(), (1, "create_projects".into(), None));
        assert_eq!(
            parse_file_name("dir/20250105_tags-v2.mysql.sql").unwrap(),
            (20_250_105, "tags-v2".into(), Some("mysql"))
        );
        for bad in ["create.sql", "0001.sql", "0001_.sql", "0001_x.txt", "0001_x.pg.sql", "0001_a b.sql", "0001-x.sql"]
        {
            let e = parse_file_name(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
        assert!(parse_file_name("99999999999999999999_x.sql").is_err());
    }

    #[test]
    fn an_engines_own_file_wins_over_the_shared_one() {
        let m = Migrations::new()
            .file("0002_tags.sql", "CREATE TABLE tags (n TEXT);")
            .file("0002_tags.mysql.sql", "CREATE TABLE tags (n VARCHAR(10));")
            .file("0001_start.sql", "SELECT 1;\r\n");
        let mysql = m.plan(DatabaseKind::Mysql).unwrap();
        assert_eq!(
            mysql.iter().map(|p| p.file.as_str()).collect::<Vec<_>>(),
            ["0001_start.sql", "0002_tags.mysql.sql"]
        );
        let pg = m.plan(DatabaseKind::Postgres).unwrap();
        assert_eq!(pg[1].file, "0002_tags.sql");
        assert_eq!(pg[0].checksum, checksum("SELECT 1;\n"), "line endings do not change a checksum");
        assert_eq!(pg[0].checksum.len(), 64);
    }

    #[test]
    fn a_folder_gives_its_sql_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0001_a.sql"), "SELECT 1;").unwrap();
        std::fs::write(dir.path().join("0002_b.sqlite.sql"), "SELECT 2;").unwrap();
        std::fs::write(dir.path().join("README.md"), "not a migration").unwrap();
        let plan = Migrations::from_dir(dir.path()).unwrap().plan(DatabaseKind::Sqlite).unwrap();
        assert_eq!(plan.iter().map(|p| p.file.as_str()).collect::<Vec<_>>(), ["0001_a.sql", "0002_b.sqlite.sql"]);
        let missing = Migrations::from_dir(dir.path().join("nope")).unwrap_err();
        assert!(matches!(&missing, MigrateError::Read { path, .. } if path.ends_with("nope")), "{missing}");
    }

    #[test]
    fn clashing_or_incomplete_files_are_refused() {
        let two_names = Migrations::new().file("0001_a.sql", "").file("0001_b.sql", "");
        let planned = two_names.plan(DatabaseKind::Sqlite);
        assert!(matches!(planned, Err(MigrateError::DuplicateVersion { version: 1, .. })));
        let twice = Migrations::new().file("1_a.sql", "").file("0001_a.sql", "");
        let planned = twice.plan(DatabaseKind::Sqlite);
        assert!(matches!(planned, Err(MigrateError::DuplicateVersion { .. })));
        let pg_only = Migrations::new().file("0003_x.postgres.sql", "");
        assert!(pg_only.plan(DatabaseKind::Postgres).is_ok());
        let e = pg_only.plan(DatabaseKind::Sqlite).unwrap_err();
        assert!(e.to_string().contains("add `0003_x.sqlite.sql`"), "{e}");
    }
}
