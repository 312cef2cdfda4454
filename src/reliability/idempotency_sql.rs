//! The idempotency records' SQL store: in the service's own database, so several
//! instances on one PostgreSQL or MySQL database (and no Redis) keep the promise
//! together: one effect per key.
//!
//! One row per (caller, key) in `kernel_idempotency`, its primary key. `begin`
//! inserts the running record only if no row holds the key (`ON CONFLICT DO
//! NOTHING` / `INSERT IGNORE`): of two instances racing with one key, exactly one
//! insert lands, and the other reads that record. Expiry is a column compared with
//! the instances' clocks (milliseconds since the epoch; keep the clocks in sync, as
//! for any TTL). A caller's expired rows go on each of its `begin`s, every expired
//! row once in a while, and past `max_keys_per_caller` its oldest rows.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::idempotency::{Begin, IdempotencyStore, Record, DEFAULT_MAX_KEYS_PER_CALLER};
use super::ReliabilityError;
use crate::db::Db;
use crate::timestamp::{millis as ms, now_millis as now_ms};

/// The table of the records.
pub const IDEMPOTENCY_TABLE: &str = "kernel_idempotency";

/// A sweep of every expired row runs once per this many `begin`s.
const SWEEP_EVERY: u64 = 1000;

/// The SQL store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqlIdempotencyStore {
    db: Db,
    max_per_caller: usize,
    calls: std::sync::Arc<AtomicU64>,
}

fn store(e: crate::db::DbError) -> ReliabilityError {
    if e.is_unavailable() {
        ReliabilityError::DatabaseUnavailable(e)
    } else {
        ReliabilityError::Store(format!("database: {e}"))
    }
}

impl SqlIdempotencyStore {
    /// The store in `db`, its table created if missing.
    ///
    /// # Errors
    /// The database refused the DDL.
    pub async fn open(db: Db) -> Result<Self, ReliabilityError> {
        let kind = db.kind();
        let opts = crate::db::dialect::table_options(kind);
        let text = kind.long_text();
        let (created, created_sql) =
            kind.kernel_index(IDEMPOTENCY_TABLE, "kernel_idempotency_caller", "[caller], [created_at]");
        let (expires, expires_sql) = kind.kernel_index(IDEMPOTENCY_TABLE, "kernel_idempotency_expiry", "[expires_at]");
        let table = format!(
            "CREATE TABLE IF NOT EXISTS [{IDEMPOTENCY_TABLE}] ([caller] VARCHAR(191) NOT NULL, \
             [idem_key] VARCHAR(255) NOT NULL, [record] {text} NOT NULL, [created_at] BIGINT NOT NULL, \
             [expires_at] BIGINT NOT NULL, PRIMARY KEY ([caller], [idem_key]){created}{expires}){opts}"
        );
        for sql in std::iter::once(table).chain(created_sql).chain(expires_sql) {
            db.execute_schema(&sql).await.map_err(store)?;
        }
        Ok(Self { db, max_per_caller: DEFAULT_MAX_KEYS_PER_CALLER, calls: Default::default() })
    }

    /// Keeps at most `n` records per caller (default 1000); past it, the oldest go.
    #[must_use]
    pub fn with_max_keys_per_caller(mut self, n: usize) -> Self {
        self.max_per_caller = n.max(1);
        self
    }

    async fn read(&self, caller: &str, key: &str) -> Result<Option<Record>, ReliabilityError> {
        let sql = format!("SELECT [record] FROM [{IDEMPOTENCY_TABLE}] WHERE [caller] = ? AND [idem_key] = ?");
        let row = self.db.fetch_optional(&sql, &[json!(caller), json!(key)]).await.map_err(store)?;
        let Some(text) = row.as_ref().and_then(|r| r.get("record")).and_then(Value::as_str) else { return Ok(None) };
        Record::from_json(text).map(Some)
    }

    /// Drops expired rows: the caller's always, everyone's once in a while.
    async fn sweep(&self, caller: &str, now: i64) -> Result<(), ReliabilityError> {
        let mine = format!("DELETE FROM [{IDEMPOTENCY_TABLE}] WHERE [caller] = ? AND [expires_at] < ?");
        self.db.execute(&mine, &[json!(caller), json!(now)]).await.map_err(store)?;
        if self.calls.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            let all = format!("DELETE FROM [{IDEMPOTENCY_TABLE}] WHERE [expires_at] < ?");
            self.db.execute(&all, &[json!(now)]).await.map_err(store)?;
        }
        Ok(())
    }

    /// Past `max_per_caller` rows, drops the caller's oldest.
    async fn bound(&self, caller: &str) -> Result<(), ReliabilityError> {
        let count = format!("SELECT COUNT(*) AS [n] FROM [{IDEMPOTENCY_TABLE}] WHERE [caller] = ?");
        let row = self.db.fetch_optional(&count, &[json!(caller)]).await.map_err(store)?;
        let n = row.and_then(|r| r.get("n").and_then(Value::as_u64)).unwrap_or(0);
        let over = usize::try_from(n).unwrap_or(usize::MAX).saturating_sub(self.max_per_caller);
        if over == 0 {
            return Ok(());
        }
        let oldest = format!(
            "SELECT [idem_key] FROM [{IDEMPOTENCY_TABLE}] WHERE [caller] = ? ORDER BY [created_at], [idem_key] LIMIT {over}"
        );
        let delete = format!("DELETE FROM [{IDEMPOTENCY_TABLE}] WHERE [caller] = ? AND [idem_key] = ?");
        for row in self.db.fetch_all(&oldest, &[json!(caller)]).await.map_err(store)? {
            let key = row.get("idem_key").cloned().unwrap_or(Value::Null);
            self.db.execute(&delete, &[json!(caller), key]).await.map_err(store)?;
        }
        Ok(())
    }
}

#[async_trait]
impl IdempotencyStore for SqlIdempotencyStore {
    async fn begin(
        &self,
        caller: &str,
        key: &str,
        fingerprint: &str,
        running_ttl: Duration,
    ) -> Result<Begin, ReliabilityError> {
        let now = now_ms();
        self.sweep(caller, now).await?;
        // Microseconds: the order keys began in, for the per-caller bound.
        let began = chrono::Utc::now().timestamp_micros();
        let insert = self.db.kind().insert_if_absent(&format!(
            "INSERT INTO [{IDEMPOTENCY_TABLE}] ([caller], [idem_key], [record], [created_at], [expires_at]) \
             VALUES (?, ?, ?, ?, ?)"
        ));
        let record = Record::running(fingerprint).to_json()?;
        let params = [json!(caller), json!(key), json!(record), json!(began), json!(now + ms(running_ttl))];
        // A row that expired between the sweep and the insert is swept again, once.
        for _ in 0..2 {
            if self.db.execute(&insert, &params).await.map_err(store)? == 1 {
                self.bound(caller).await?;
                return Ok(Begin::Started);
            }
            if let Some(found) = self.read(caller, key).await? {
                return Ok(found.begin(fingerprint));
            }
        }
        Err(ReliabilityError::Store("an idempotency record changed while it was read".into()))
    }

    async fn finish(&self, caller: &str, key: &str, record: Record, ttl: Duration) -> Result<(), ReliabilityError> {
        let sql = format!(
            "UPDATE [{IDEMPOTENCY_TABLE}] SET [record] = ?, [expires_at] = ? WHERE [caller] = ? AND [idem_key] = ?"
        );
        let params = [json!(record.to_json()?), json!(now_ms() + ms(ttl)), json!(caller), json!(key)];
        self.db.execute(&sql, &params).await.map_err(store)?;
        Ok(())
    }

    async fn forget(&self, caller: &str, key: &str) -> Result<(), ReliabilityError> {
        let sql = format!("DELETE FROM [{IDEMPOTENCY_TABLE}] WHERE [caller] = ? AND [idem_key] = ?");
        self.db.execute(&sql, &[json!(caller), json!(key)]).await.map_err(store)?;
        Ok(())
    }
}
