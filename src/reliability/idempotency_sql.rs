//! The idempotency records' SQL store: in the service's own database, so several
//! instances on one PostgreSQL or MySQL database (and no Redis) keep the promise
//! together: one effect per key.
//!
//! One row per (caller, key) in `kernel_idempotency`, its primary key. `begin`
//! inserts the running record only if no row holds the key (`ON CONFLICT DO
//! NOTHING` / `INSERT IGNORE`): of two instances racing with one key, exactly one
//! insert lands, and the other reads that record. Expiry is a column compared with
//! the instances' clocks (milliseconds since the epoch; keep the clocks in sync, as
//! for any TTL). An expired row goes when its key is begun again, every expired row
//! once in a while (one sweep per `SWEEP_EVERY` `begin`s of an instance), and past
//! `max_keys_per_caller` a caller's oldest rows.
//!
//! A keyed request costs two statements (insert, finish), and one in `max/64` two more
//! (the bound's read and delete); a repeated key, one read. Each finished or evicted
//! record leaves a dead row version on PostgreSQL, which (auto)vacuum reclaims.

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

    /// The record of `key` and when it expires (milliseconds since the epoch).
    async fn read(&self, caller: &str, key: &str) -> Result<Option<(Record, i64)>, ReliabilityError> {
        let sql =
            format!("SELECT [record], [expires_at] FROM [{IDEMPOTENCY_TABLE}] WHERE [caller] = ? AND [idem_key] = ?");
        let Some(row) = self.db.fetch_optional(&sql, &[json!(caller), json!(key)]).await.map_err(store)? else {
            return Ok(None);
        };
        let text = row.get("record").and_then(Value::as_str).unwrap_or_default();
        let expires = row.get("expires_at").and_then(Value::as_i64).unwrap_or(0);
        Ok(Some((Record::from_json(text)?, expires)))
    }

    /// Drops `key`'s record if it has expired by `now`.
    async fn drop_expired(&self, caller: &str, key: &str, now: i64) -> Result<(), ReliabilityError> {
        let sql =
            format!("DELETE FROM [{IDEMPOTENCY_TABLE}] WHERE [caller] = ? AND [idem_key] = ? AND [expires_at] < ?");
        self.db.execute(&sql, &[json!(caller), json!(key), json!(now)]).await.map_err(store)?;
        Ok(())
    }

    /// Drops every expired row, once per [`SWEEP_EVERY`] calls.
    async fn sweep(&self, now: i64) -> Result<(), ReliabilityError> {
        if self.calls.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            let all = format!("DELETE FROM [{IDEMPOTENCY_TABLE}] WHERE [expires_at] < ?");
            self.db.execute(&all, &[json!(now)]).await.map_err(store)?;
        }
        Ok(())
    }

    /// Past `max_per_caller` rows, drops the caller's oldest: asked on one `begin` in
    /// [`Self::check_every`], at random, so the cost of the question (it reads the
    /// caller's newest `max_per_caller` index entries) is spread over that many requests.
    async fn bound(&self, caller: &str) -> Result<(), ReliabilityError> {
        if crate::random::unit() * self.check_every() as f64 >= 1.0 {
            return Ok(());
        }
        let nth = format!(
            "SELECT [created_at] FROM [{IDEMPOTENCY_TABLE}] WHERE [caller] = ? ORDER BY [created_at] DESC LIMIT 1 OFFSET {}",
            self.max_per_caller - 1
        );
        let Some(row) = self.db.fetch_optional(&nth, &[json!(caller)]).await.map_err(store)? else { return Ok(()) };
        let kept_from = row.get("created_at").and_then(Value::as_i64).unwrap_or(i64::MIN);
        let older = format!("DELETE FROM [{IDEMPOTENCY_TABLE}] WHERE [caller] = ? AND [created_at] < ?");
        self.db.execute(&older, &[json!(caller), json!(kept_from)]).await.map_err(store)?;
        Ok(())
    }

    /// One `begin` in this many asks whether the caller is past the bound: every one
    /// for a bound under 128, else one in `max_per_caller / 64`, so a caller holds at
    /// most about 1/64 more records than the bound between two checks (1,000 → ~1,015).
    fn check_every(&self) -> usize {
        (self.max_per_caller / 64).max(1)
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
        self.sweep(now).await?;
        // Microseconds: the order keys began in, for the per-caller bound.
        let began = chrono::Utc::now().timestamp_micros();
        let insert = self.db.kind().insert_if_absent(&format!(
            "INSERT INTO [{IDEMPOTENCY_TABLE}] ([caller], [idem_key], [record], [created_at], [expires_at]) \
             VALUES (?, ?, ?, ?, ?)"
        ));
        let record = Record::running(fingerprint).to_json()?;
        let params = [json!(caller), json!(key), json!(record), json!(began), json!(now + ms(running_ttl))];
        // The key is taken: by a live record (its answer), or by an expired one, dropped
        // and the insert tried once more (as is one forgotten between insert and read).
        for _ in 0..2 {
            if self.db.execute(&insert, &params).await.map_err(store)? == 1 {
                self.bound(caller).await?;
                return Ok(Begin::Started);
            }
            match self.read(caller, key).await? {
                Some((found, expires)) if expires >= now => return Ok(found.begin(fingerprint)),
                Some(_) => self.drop_expired(caller, key, now).await?,
                None => {}
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
