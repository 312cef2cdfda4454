//! The stream leases' SQL store: in the service's own database, so several
//! instances on one PostgreSQL or MySQL database (and no Redis) count a user's
//! streams together. An acquire costs 5 to 6 statements and a transaction.
//!
//! A row per lease in `kernel_stream_leases`, with its expiry (milliseconds since
//! the epoch on the instances' clocks). `acquire` runs in one transaction that first
//! locks the user's row in `kernel_stream_lease_users` (`SELECT ... FOR UPDATE`;
//! SQLite's transactions hold the database's write lock from their start), so two
//! instances never both see room for one more stream: then it drops the user's
//! expired leases, counts the live ones and adds the new one only below the limit.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{LeaseStore, StreamError};
use crate::db::Db;
use crate::timestamp::{millis as ms, now_millis as now_ms};

/// The leases.
pub const LEASES_TABLE: &str = "kernel_stream_leases";
/// One row per user who ever held a lease: what `acquire` locks.
pub const LEASE_USERS_TABLE: &str = "kernel_stream_lease_users";

/// The SQL store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqlLeaseStore {
    db: Db,
}

fn store(e: crate::db::DbError) -> StreamError {
    StreamError::Store(format!("database: {e}"))
}

impl SqlLeaseStore {
    /// The store in `db`, its tables created if missing.
    ///
    /// # Errors
    /// The database refused the DDL.
    pub async fn open(db: Db) -> Result<Self, StreamError> {
        let kind = db.kind();
        let opts = crate::db::dialect::table_options(kind);
        let (user, user_sql) = kind.kernel_index(LEASES_TABLE, "kernel_stream_leases_user", "[user_id]");
        let statements = [
            format!("CREATE TABLE IF NOT EXISTS [{LEASE_USERS_TABLE}] ([user_id] VARCHAR(191) PRIMARY KEY){opts}"),
            format!(
                "CREATE TABLE IF NOT EXISTS [{LEASES_TABLE}] ([lease_id] VARCHAR(64) PRIMARY KEY, \
                 [user_id] VARCHAR(191) NOT NULL, [expires_at] BIGINT NOT NULL{user}){opts}"
            ),
        ];
        for sql in statements.into_iter().chain(user_sql) {
            db.execute_schema(&sql).await.map_err(store)?;
        }
        Ok(Self { db })
    }
}

#[async_trait]
impl LeaseStore for SqlLeaseStore {
    async fn acquire(&self, user: &str, lease: &str, max: u32, ttl: Duration) -> Result<bool, StreamError> {
        let kind = self.db.kind();
        let now = now_ms();
        // The user's row exists before the transaction locks it: inserting it inside
        // would take a shared lock on MySQL that two transactions then both upgrade.
        let add_user = kind.insert_if_absent(&format!("INSERT INTO [{LEASE_USERS_TABLE}] ([user_id]) VALUES (?)"));
        self.db.execute(&add_user, &[json!(user)]).await.map_err(store)?;
        let mut tx = self.db.transaction().await.map_err(store)?;
        let lock = format!("SELECT [user_id] FROM [{LEASE_USERS_TABLE}] WHERE [user_id] = ?{}", kind.lock_rows());
        tx.fetch_optional(&lock, &[json!(user)]).await.map_err(store)?;
        let expired = format!("DELETE FROM [{LEASES_TABLE}] WHERE [user_id] = ? AND [expires_at] < ?");
        tx.execute(&expired, &[json!(user), json!(now)]).await.map_err(store)?;
        let count = format!("SELECT COUNT(*) AS [n] FROM [{LEASES_TABLE}] WHERE [user_id] = ?");
        let row = tx.fetch_optional(&count, &[json!(user)]).await.map_err(store)?;
        let live = row.and_then(|r| r.get("n").and_then(Value::as_u64)).unwrap_or(0);
        if live >= u64::from(max) {
            tx.commit().await.map_err(store)?; // keeps the sweep
            return Ok(false);
        }
        let insert = format!("INSERT INTO [{LEASES_TABLE}] ([lease_id], [user_id], [expires_at]) VALUES (?, ?, ?)");
        tx.execute(&insert, &[json!(lease), json!(user), json!(now + ms(ttl))]).await.map_err(store)?;
        tx.commit().await.map_err(store)?;
        Ok(true)
    }

    async fn refresh(&self, user: &str, lease: &str, ttl: Duration) -> Result<bool, StreamError> {
        let now = now_ms();
        let sql = format!(
            "UPDATE [{LEASES_TABLE}] SET [expires_at] = ? WHERE [lease_id] = ? AND [user_id] = ? AND [expires_at] >= ?"
        );
        let params = [json!(now + ms(ttl)), json!(lease), json!(user), json!(now)];
        Ok(self.db.execute(&sql, &params).await.map_err(store)? == 1)
    }

    async fn release(&self, user: &str, lease: &str) -> Result<(), StreamError> {
        let sql = format!("DELETE FROM [{LEASES_TABLE}] WHERE [lease_id] = ? AND [user_id] = ?");
        self.db.execute(&sql, &[json!(lease), json!(user)]).await.map_err(store)?;
        Ok(())
    }
}
