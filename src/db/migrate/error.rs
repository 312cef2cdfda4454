//! Why migrations could not be applied. Each message names the file and what to do.

use crate::db::DbError;

/// Why migrations could not be read, checked or applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// A file's name does not follow `VERSION_NAME[.ENGINE].sql`.
    #[error("migration file `{file}`: {reason} (expected VERSION_NAME.sql or VERSION_NAME.ENGINE.sql, e.g. 0001_create_projects.sql)")]
    InvalidFileName {
        /// The file.
        file: String,
        /// What is wrong with its name.
        reason: String,
    },
    /// Two files claim one version for one engine, or one version under two names.
    #[error(
        "migration files `{first}` and `{second}` have the same version {version}: give each change its own number"
    )]
    DuplicateVersion {
        /// The version.
        version: u64,
        /// One file.
        first: String,
        /// The other.
        second: String,
    },
    /// A version has files for other engines but none for this one.
    #[error("migration {version} (`{name}`) has no file for {engine}: add `{expected}` (or one file for every engine without the engine in its name)")]
    NoFileForEngine {
        /// The version.
        version: u64,
        /// Its name.
        name: String,
        /// The engine the service runs on.
        engine: &'static str,
        /// The file name that would serve it.
        expected: String,
    },
    /// A file cannot be split into statements.
    #[error("migration `{file}`, line {line}: {reason}")]
    Malformed {
        /// The file.
        file: String,
        /// The line.
        line: usize,
        /// What is unterminated.
        reason: String,
    },
    /// An applied file was edited since: its checksum differs from the one recorded.
    #[error("migration `{file}` was changed after it was applied (recorded sha256 {recorded}, the file's is {found}): restore the file as it was and put the change in a new migration")]
    Changed {
        /// The file.
        file: String,
        /// The checksum recorded when it was applied.
        recorded: String,
        /// The file's checksum now.
        found: String,
    },
    /// A version was applied whose file is no longer among the migrations.
    #[error("migration {version} (`{name}`) was applied to this database but its file is gone: restore the file (migrations are never removed, only added)")]
    Missing {
        /// The version.
        version: u64,
        /// The name recorded.
        name: String,
    },
    /// A pending file has a lower version than one already applied.
    #[error("migration `{file}` is pending but the later version {applied} is already applied: give it a number above {applied}")]
    OutOfOrder {
        /// The pending file.
        file: String,
        /// The highest version applied.
        applied: u64,
    },
    /// A statement of a file failed; the file is not recorded as applied.
    #[error(
        "migration `{file}` failed at statement {index} (line {line}): {statement}\n  error: {source}\n  {outcome}"
    )]
    Failed {
        /// The file.
        file: String,
        /// The statement's position in the file, from 1.
        index: usize,
        /// The statement's first line in the file.
        line: usize,
        /// The statement (shortened past 300 characters).
        statement: String,
        /// What the engine said.
        source: Box<DbError>,
        /// What became of the file's earlier statements.
        outcome: &'static str,
    },
    /// Another runner held the migration lock for too long (MySQL's `GET_LOCK` wait).
    #[error("timed out waiting for the migration lock held by another instance")]
    LockTimeout,
    /// A migrations folder or file could not be read.
    #[error("cannot read migrations at {path}: {message}")]
    Read {
        /// The folder or file.
        path: String,
        /// The OS error.
        message: String,
    },
    /// The database refused the kernel's own bookkeeping (`kernel_migrations`).
    #[error("{0}")]
    Db(#[from] DbError),
}
