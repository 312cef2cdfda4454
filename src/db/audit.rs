//! The audit trail's storage: [`AuditLog`] over the kernel's own `kernel_audit` table.
//!
//! Events are append-only and listed newest first with cursor pagination on
//! `(created_at, id)`: a page never repeats or skips an event, even while new events
//! arrive. The cursor is opaque to clients. The HTTP route lives with the service.
//!
//! ```no_run
//! # async fn demo(db: app_kernel::Db) -> Result<(), app_kernel::db::DbError> {
//! use app_kernel::db::{AuditFilter, AuditLog};
//! let audit = AuditLog::new(db);
//! audit.record(Some("u1"), "project.delete", Some("projects/7"), serde_json::json!({"reason": "spam"})).await?;
//! let page = audit.query(&AuditFilter { actor: Some("u1".into()), ..AuditFilter::default() }, None).await?;
//! # let _ = page; Ok(()) }
//! ```

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::db::entity::now;
use crate::db::{Db, DbError, Row};

/// The table the audit trail lives in.
pub const AUDIT_TABLE: &str = "kernel_audit";
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

/// Which events [`AuditLog::query`] returns.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuditFilter {
    /// Only this actor's events.
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only events at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Page size (default 50, at most 500).
    pub limit: Option<u32>,
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// UUID v7.
    pub id: String,
    /// When it was recorded (RFC 3339 UTC).
    pub created_at: String,
    /// Who did it, when known.
    pub actor: Option<String>,
    /// What was done (`user.login`, `project.delete`, ...).
    pub action: String,
    /// What it was done to.
    pub resource: Option<String>,
    /// Anything else worth keeping.
    pub details: Value,
}

/// One page of events, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct AuditPage {
    /// The events.
    pub items: Vec<AuditEvent>,
    /// Pass it back for the next page; `None` on the last one.
    pub next_cursor: Option<String>,
}

/// Records and lists audit events. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditLog {
    db: Db,
    table_ready: Arc<tokio::sync::OnceCell<()>>,
}

impl AuditLog {
    /// The audit trail stored in `db`; its table is created on first use.
    pub fn new(db: Db) -> Self {
        Self { db, table_ready: Arc::default() }
    }

    async fn ensure_table(&self) -> Result<(), DbError> {
        self.table_ready.get_or_try_init(|| create_table(&self.db)).await.map(|_| ())
    }

    /// Appends an event.
    ///
    /// # Errors
    /// The database refused the write.
    pub async fn record(
        &self,
        actor: Option<&str>,
        action: &str,
        resource: Option<&str>,
        details: Value,
    ) -> Result<AuditEvent, DbError> {
        self.ensure_table().await?;
        let mut text = details.to_string();
        let details = if text.len() > MAX_DETAILS_BYTES {
            let note = json!({"truncated": true, "bytes": text.len(), "start": cut(&text, 256)});
            text = note.to_string();
            note
        } else {
            details
        };
        let event = AuditEvent {
            id: uuid::Uuid::now_v7().to_string(),
            created_at: now(),
            actor: actor.map(|a| cut(a, MAX_NAME_CHARS)),
            action: cut(action, MAX_NAME_CHARS),
            resource: resource.map(|r| cut(r, MAX_RESOURCE_CHARS)),
            details,
        };
        let sql = "INSERT INTO [kernel_audit] ([id], [created_at], [actor], [action], [resource], [details]) \
                   VALUES (?, ?, ?, ?, ?, ?)";
        let params = [
            json!(event.id),
            json!(event.created_at),
            json!(event.actor),
            json!(event.action),
            json!(event.resource),
            Value::String(text),
        ];
        self.db.execute(sql, &params).await?;
        Ok(event)
    }

    /// A page of events matching `filter`, newest first, after `cursor` when given.
    ///
    /// # Errors
    /// A malformed `since` or cursor ([`DbError::InvalidInput`]), or the database's refusal.
    pub async fn query(&self, filter: &AuditFilter, cursor: Option<&str>) -> Result<AuditPage, DbError> {
        self.ensure_table().await?;
        let mut sql = String::from("SELECT * FROM [kernel_audit] WHERE 1 = 1");
        let mut params = Vec::new();
        for (column, value) in [("actor", &filter.actor), ("action", &filter.action)] {
            if let Some(value) = value {
                sql.push_str(&format!(" AND [{column}] = ?"));
                params.push(json!(value));
            }
        }
        if let Some(since) = &filter.since {
            let since = chrono::DateTime::parse_from_rfc3339(since)
                .map_err(|e| DbError::InvalidInput { field: "since", message: format!("not an RFC 3339 time: {e}") })?;
            sql.push_str(" AND [created_at] >= ?");
            params.push(json!(since.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)));
        }
        if let Some(cursor) = cursor {
            let (created_at, id) = decode_cursor(cursor)?;
            sql.push_str(" AND ([created_at] < ? OR ([created_at] = ? AND [id] < ?))");
            params.extend([json!(created_at), json!(created_at), json!(id)]);
        }
        let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        sql.push_str(" ORDER BY [created_at] DESC, [id] DESC LIMIT ?");
        params.push(json!(limit + 1));
        let rows = self.db.fetch_all(&sql, &params).await?;
        let mut items: Vec<AuditEvent> = rows.into_iter().map(event).collect();
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|e| encode_cursor(&e.created_at, &e.id))
        } else {
            None
        };
        Ok(AuditPage { items, next_cursor })
    }
}

/// Details longer than this (as JSON text) are stored as a note of their size and start:
/// whatever a caller can put in them, one event stays small.
const MAX_DETAILS_BYTES: usize = 8 * 1024;
/// The longest actor and action kept (the columns hold 255 characters).
const MAX_NAME_CHARS: usize = 255;
/// The longest resource kept.
const MAX_RESOURCE_CHARS: usize = 1024;

/// The first `max` characters of `s`.
fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

async fn create_table(db: &Db) -> Result<(), DbError> {
    let kind = db.kind();
    let text = kind.long_text();
    let options = crate::db::dialect::table_options(kind);
    let (index, index_sql) = kind.kernel_index("kernel_audit", "kernel_audit_created", "[created_at], [id]");
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS [kernel_audit] ([id] VARCHAR(36) PRIMARY KEY, [created_at] VARCHAR(32) NOT NULL, \
         [actor] VARCHAR(255), [action] VARCHAR(255) NOT NULL, [resource] {text}, [details] {text}{index}){options}"
    );
    db.execute_schema(&sql).await?;
    if let Some(index_sql) = index_sql {
        db.execute_schema(&index_sql).await?;
    }
    Ok(())
}

fn event(mut row: Row) -> AuditEvent {
    let mut text = |k: &str| match row.remove(k) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    AuditEvent {
        id: text("id").unwrap_or_default(),
        created_at: text("created_at").unwrap_or_default(),
        actor: text("actor"),
        action: text("action").unwrap_or_default(),
        resource: text("resource"),
        details: text("details").and_then(|d| serde_json::from_str(&d).ok()).unwrap_or(Value::Null),
    }
}

fn encode_cursor(created_at: &str, id: &str) -> String {
    data_encoding::BASE64URL_NOPAD.encode(format!("{created_at}|{id}").as_bytes())
}

fn decode_cursor(cursor: &str) -> Result<(String, String), DbError> {
    let bad = || DbError::InvalidInput { field: "cursor", message: "not a cursor from a previous page".into() };
    let bytes = data_encoding::BASE64URL_NOPAD.decode(cursor.as_bytes()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (created_at, id) = text.split_once('|').ok_or_else(bad)?;
    Ok((created_at.to_owned(), id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = encode_cursor("2024-01-01T00:00:00.000001Z", "0190-abc");
        assert_eq!(decode_cursor(&c).unwrap(), ("2024-01-01T00:00:00.000001Z".into(), "0190-abc".into()));
        assert!(matches!(decode_cursor("!!"), Err(DbError::InvalidInput { field: "cursor", .. })));
    }
}
