//! Applying migrations ([`Db::migrate`]) and reading their state
//! ([`Db::migration_status`]), with the guarantees stated in the `migrate` module docs.

use std::time::Instant;

use serde_json::{json, Value};

use super::split::{split, Statement};
use super::{MigrateError, Migrations, Planned};
use crate::db::backend::{Target, TxBackend};
use crate::db::{Db, DbError};

/// The kernel's record of applied migrations.
pub(crate) const TABLE: &str = "kernel_migrations";

/// A file this call applied.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppliedMigration {
    /// Its version.
    pub version: u64,
    /// Its file.
    pub file: String,
    /// How long its statements took.
    pub duration_ms: u64,
}

/// Where a migration stands on a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrationState {
    /// Applied, and the file is as it was then.
    Applied,
    /// Not applied yet.
    Pending,
    /// Applied, but the file changed since (start-up refuses to run).
    Changed,
    /// Applied, but no file has its version any more (start-up refuses to run).
    Missing,
}

impl MigrationState {
    /// `applied`, `pending`, `changed` or `missing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Pending => "pending",
            Self::Changed => "changed",
            Self::Missing => "missing",
        }
    }
}

/// One migration's state, as `migrate status` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationStatus {
    /// The version.
    pub version: u64,
    /// The name (the file's, else the one recorded).
    pub name: String,
    /// The file for this engine; `None` when it is missing.
    pub file: Option<String>,
    /// The SHA-256 (hex) of the file, else the one recorded.
    pub checksum: Option<String>,
    /// Where it stands.
    pub state: MigrationState,
    /// When it was applied (RFC 3339, UTC).
    pub applied_at: Option<String>,
    /// How long it took.
    pub duration_ms: Option<u64>,
}

/// A row of `kernel_migrations`.
#[derive(Debug)]
struct Record {
    version: u64,
    name: String,
    checksum: String,
    applied_at: String,
    duration_ms: u64,
}

impl Db {
    /// Applies the pending `migrations`, in version order, each file in a transaction
    /// that holds the migration lock; returns the files this call applied (none when
    /// another instance applied them first). See [`Migrations`] for the guarantees.
    ///
    /// # Errors
    /// A bad file name or file, an applied file that changed or is gone, a pending file
    /// numbered below an applied one (all before anything runs), or a failed statement
    /// ([`MigrateError::Failed`], naming the file and the statement).
    pub async fn migrate(&self, migrations: &Migrations) -> Result<Vec<AppliedMigration>, MigrateError> {
        let plan = migrations.plan(self.kind())?;
        for p in &plan {
            statements(self, p)?;
        }
        self.execute_schema(&create_table_sql(self)).await?;
        let records = self.migration_records().await?.unwrap_or_default();
        check(&plan, &records)?;
        let mut applied = Vec::new();
        for p in plan.into_iter().filter(|p| !records.iter().any(|r| r.version == p.version)) {
            // On a task of its own: a dropped caller cannot stop a file between two
            // statements, nor leave MySQL's session lock on a pooled connection.
            let db = self.clone();
            let done = tokio::spawn(async move { db.apply_one(&p).await.map(|ms| ms.map(|ms| (p, ms))) })
                .await
                .map_err(|e| DbError::Query(format!("migration task ended: {e}")))??;
            if let Some((p, duration_ms)) = done {
                tracing::info!(version = p.version, file = %p.file, duration_ms, "migration applied");
                applied.push(AppliedMigration { version: p.version, file: p.file, duration_ms });
            }
        }
        if !applied.is_empty() {
            self.inner.schema.clear();
        }
        Ok(applied)
    }

    /// Each migration's state on this database, in version order, changing nothing
    /// (applied versions whose file is gone included).
    ///
    /// # Errors
    /// A bad file name, or the database cannot be read.
    pub async fn migration_status(&self, migrations: &Migrations) -> Result<Vec<MigrationStatus>, MigrateError> {
        let plan = migrations.plan(self.kind())?;
        let records = self.migration_records().await?.unwrap_or_default();
        let mut out: Vec<MigrationStatus> = plan
            .into_iter()
            .map(|p| {
                let record = records.iter().find(|r| r.version == p.version);
                let state = match record {
                    None => MigrationState::Pending,
                    Some(r) if r.checksum == p.checksum => MigrationState::Applied,
                    Some(_) => MigrationState::Changed,
                };
                MigrationStatus {
                    version: p.version,
                    name: p.name,
                    file: Some(p.file),
                    checksum: Some(p.checksum),
                    state,
                    applied_at: record.map(|r| r.applied_at.clone()),
                    duration_ms: record.map(|r| r.duration_ms),
                }
            })
            .collect();
        let gone: Vec<&Record> = records.iter().filter(|r| !out.iter().any(|s| s.version == r.version)).collect();
        for r in gone {
            out.push(MigrationStatus {
                version: r.version,
                name: r.name.clone(),
                file: None,
                checksum: Some(r.checksum.clone()),
                state: MigrationState::Missing,
                applied_at: Some(r.applied_at.clone()),
                duration_ms: Some(r.duration_ms),
            });
        }
        out.sort_by_key(|s| s.version);
        Ok(out)
    }

    /// The rows of `kernel_migrations`; `None` when the table does not exist yet.
    async fn migration_records(&self) -> Result<Option<Vec<Record>>, DbError> {
        let mut target = Target::Pool(&*self.inner.backend);
        if crate::db::schema::introspect(self.kind(), &mut target, TABLE).await?.is_none() {
            return Ok(None);
        }
        let sql = format!(
            "SELECT [version], [name], [checksum], [applied_at], [duration_ms] FROM [{TABLE}] ORDER BY [version]"
        );
        let rows = self.fetch_all(&sql, &[]).await?;
        let number = |v: Option<&Value>| v.and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok())).unwrap_or(0);
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
        let records = rows
            .iter()
            .map(|r| Record {
                version: number(r.get("version")),
                name: text(r.get("name")),
                checksum: text(r.get("checksum")),
                applied_at: text(r.get("applied_at")),
                duration_ms: number(r.get("duration_ms")),
            })
            .collect();
        Ok(Some(records))
    }

    /// Applies `p` under the migration lock unless another runner has; returns its
    /// duration when this call applied it.
    async fn apply_one(&self, p: &Planned) -> Result<Option<u64>, MigrateError> {
        let statements = statements(self, p)?;
        let mut tx = self.inner.backend.begin().await?;
        let lock = self.kind().migration_lock();
        if let Some((take, _)) = lock {
            let rows = tx.fetch(take.to_owned(), Vec::new()).await?;
            if rows.first().and_then(|r| r.get("locked")).is_some_and(|v| v.as_i64() != Some(1)) {
                let _ = tx.rollback().await;
                return Err(MigrateError::LockTimeout);
            }
        }
        let result = self.apply_file_locked(&mut *tx, p, &statements).await;
        if let Some((_, Some(release))) = lock {
            // A session lock outlives the transaction: end the transaction first, so the
            // next runner, once it holds the lock, sees this one's record.
            let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
            let ended = tx.execute_unprepared(end.to_owned()).await;
            let _ = tx.fetch(release.to_owned(), Vec::new()).await;
            ended?;
        }
        match result {
            Ok(done) => {
                tx.commit().await?;
                Ok(done)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    async fn apply_file_locked(
        &self,
        tx: &mut dyn TxBackend,
        p: &Planned,
        statements: &[Statement<'_>],
    ) -> Result<Option<u64>, MigrateError> {
        let version = i64::try_from(p.version).map_err(|_| DbError::Query("version out of range".into()))?;
        let select = format!("SELECT [checksum] FROM [{TABLE}] WHERE [version] = ?");
        let (select, params) = self.prepare(&select, &[json!(version)])?;
        let found = tx.fetch(select, params).await?;
        if let Some(row) = found.first() {
            let recorded = row.get("checksum").and_then(Value::as_str).unwrap_or_default();
            if recorded != p.checksum {
                let (recorded, found) = (recorded.to_owned(), p.checksum.clone());
                return Err(MigrateError::Changed { file: p.file.clone(), recorded, found });
            }
            return Ok(None);
        }
        let started = Instant::now();
        for (index, s) in statements.iter().enumerate() {
            if let Err(source) = tx.execute_unprepared(s.sql.to_owned()).await {
                return Err(MigrateError::Failed {
                    file: p.file.clone(),
                    index: index + 1,
                    line: s.line,
                    statement: shorten(s.sql),
                    source: Box::new(source),
                    outcome: if self.kind().transactional_ddl() {
                        "nothing of this file was kept: the database is as it was before it"
                    } else {
                        "MySQL commits DDL as it runs (and runs what follows a DDL statement without a \
                         transaction): this file's statements before the failing one may stay applied, and the \
                         file is not recorded; undo them or make the file safe to run again, then retry"
                    },
                });
            }
        }
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let insert = format!(
            "INSERT INTO [{TABLE}] ([version], [name], [checksum], [applied_at], [duration_ms]) VALUES (?, ?, ?, ?, ?)"
        );
        let values = [
            json!(version),
            json!(p.name),
            json!(p.checksum),
            json!(crate::timestamp::now_utc_micros()),
            json!(duration_ms),
        ];
        let (insert, params) = self.prepare(&insert, &values)?;
        tx.execute(insert, params).await?;
        Ok(Some(duration_ms))
    }
}

/// `p`'s statements, or why it cannot be split.
fn statements<'a>(db: &Db, p: &'a Planned) -> Result<Vec<Statement<'a>>, MigrateError> {
    split(db.kind(), &p.sql).map_err(|(reason, line)| MigrateError::Malformed { file: p.file.clone(), line, reason })
}

fn create_table_sql(db: &Db) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS [{TABLE}] ([version] BIGINT PRIMARY KEY, [name] VARCHAR(255) NOT NULL, \
         [checksum] VARCHAR(64) NOT NULL, [applied_at] VARCHAR(40) NOT NULL, [duration_ms] BIGINT NOT NULL){}",
        crate::db::dialect::table_options(db.kind())
    )
}

/// Refuses an applied file that changed or is gone, and a pending file below an applied one.
fn check(plan: &[Planned], records: &[Record]) -> Result<(), MigrateError> {
    for r in records {
        match plan.iter().find(|p| p.version == r.version) {
            None => return Err(MigrateError::Missing { version: r.version, name: r.name.clone() }),
            Some(p) if p.checksum != r.checksum => {
                let (file, recorded, found) = (p.file.clone(), r.checksum.clone(), p.checksum.clone());
                return Err(MigrateError::Changed { file, recorded, found });
            }
            Some(_) => {}
        }
    }
    let Some(last) = records.iter().map(|r| r.version).max() else { return Ok(()) };
    let late = plan.iter().find(|p| p.version < last && !records.iter().any(|r| r.version == p.version));
    match late {
        Some(p) => Err(MigrateError::OutOfOrder { file: p.file.clone(), applied: last }),
        None => Ok(()),
    }
}

/// The statement, cut to 300 characters for an error message.
fn shorten(sql: &str) -> String {
    match sql.char_indices().nth(300) {
        Some((cut, _)) => format!("{} ...", &sql[..cut]),
        None => sql.to_owned(),
    }
}
