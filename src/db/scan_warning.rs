//! In development (`DEBUG`), a warning when a filtered `find` reads every row of a large
//! table: the cliff a missing index hides until the table grows.
//!
//! After such a find, on a task of its own (the request does not wait), the engine's
//! plan of the same statement is read; a full scan of a table of more than
//! [`LARGE_TABLE_ROWS`] rows is logged at warn, naming the table and the filter, and
//! counted in `kernel_entity_full_scans_total`. Each statement is looked at most once
//! per [`RECHECK_AFTER`], so a hot route costs one plan a minute. Off in production:
//! the plan and the count are queries of their own.

use std::time::{Duration, Instant};

use crate::db::backend::Target;
use crate::db::value::Param;
use crate::db::{DatabaseKind, Db, Row};
use crate::FastMap;

/// A table with more rows than this is large.
pub(crate) const LARGE_TABLE_ROWS: u64 = 10_000;

/// How long a statement's plan is trusted before it is read again.
pub(crate) const RECHECK_AFTER: Duration = Duration::from_secs(60);

/// When each statement's plan was last read.
#[derive(Debug, Default)]
pub(crate) struct ScanChecks(std::sync::Mutex<FastMap<String, Instant>>);

impl ScanChecks {
    /// Whether the statement under `key` is due for a look (and marks it looked at).
    fn due(&self, key: &str) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match seen.get(key) {
            Some(at) if at.elapsed() < RECHECK_AFTER => false,
            _ => {
                seen.insert(key.to_owned(), Instant::now());
                true
            }
        }
    }
}

/// The statement that shows the engine's plan of `sql`.
fn explain(kind: DatabaseKind, sql: &str) -> String {
    match kind {
        DatabaseKind::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
        DatabaseKind::Postgres | DatabaseKind::Mysql => format!("EXPLAIN {sql}"),
    }
}

/// Whether the plan reads every row of `table`.
fn scans(kind: DatabaseKind, plan: &[Row], table: &str) -> bool {
    let text = |r: &Row, c: &str| r.get(c).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    match kind {
        DatabaseKind::Sqlite => plan.iter().any(|r| {
            let detail = text(r, "detail");
            detail.starts_with(&format!("SCAN {table}")) && !detail.contains("INDEX")
        }),
        DatabaseKind::Postgres => plan.iter().any(|r| text(r, "QUERY PLAN").contains(&format!("Seq Scan on {table}"))),
        DatabaseKind::Mysql => plan.iter().any(|r| text(r, "type") == "ALL" && text(r, "table") == table),
    }
}

impl Db {
    /// Looks at the plan of a find just run, if warnings are on and it is due.
    pub(crate) fn check_scan(&self, table: &str, key: &str, filter: &str, sql: &str, params: &[Param]) {
        if !self.inner.warn_full_scans || !self.inner.scan_checks.due(key) {
            return;
        }
        let (db, table, filter, sql, params) =
            (self.clone(), table.to_owned(), filter.to_owned(), sql.to_owned(), params.to_vec());
        tokio::spawn(async move {
            if let Err(e) = db.warn_if_full_scan(&table, &filter, &sql, params).await {
                tracing::debug!(table, error = %e, "could not read the plan of a find");
            }
        });
    }

    async fn warn_if_full_scan(
        &self,
        table: &str,
        filter: &str,
        sql: &str,
        params: Vec<Param>,
    ) -> Result<(), crate::db::DbError> {
        let kind = self.inner.kind;
        let mut pool = Target::Pool(&*self.inner.backend);
        let plan = pool.fetch(explain(kind, sql), params, false).await?;
        if !scans(kind, &plan, table) {
            return Ok(());
        }
        let count = format!("SELECT COUNT(*) AS n FROM {}", crate::db::dialect::quote_unchecked(kind, table));
        let rows = pool.fetch(count, Vec::new(), false).await?;
        let n = rows.first().and_then(|r| r.get("n")).and_then(serde_json::Value::as_u64).unwrap_or(0);
        if n > LARGE_TABLE_ROWS {
            let name = crate::observability::names::ENTITY_FULL_SCANS_TOTAL;
            metrics::counter!(name, "table" => table.to_owned()).increment(1);
            tracing::warn!(
                table,
                filter,
                rows = n,
                "a find reads every row of {table} ({n} rows) for the filter {filter}: declare an index on its fields \
                 (EntityTable::index)"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(values: &[serde_json::Value]) -> Vec<Row> {
        values.iter().map(|v| v.as_object().unwrap().clone()).collect()
    }

    #[test]
    fn plans_that_scan_are_told_from_plans_that_search() {
        let lite = DatabaseKind::Sqlite;
        assert!(scans(
            lite,
            &rows(&[json!({"detail": "SCAN w"}), json!({"detail": "USE TEMP B-TREE FOR ORDER BY"})]),
            "w"
        ));
        assert!(!scans(lite, &rows(&[json!({"detail": "SEARCH w USING INDEX w_owner_idx (owner=?)"})]), "w"));
        assert!(!scans(lite, &rows(&[json!({"detail": "SCAN w USING INDEX w_created_idx"})]), "w"));
        let pg = DatabaseKind::Postgres;
        assert!(scans(pg, &rows(&[json!({"QUERY PLAN": "  ->  Parallel Seq Scan on w  (cost=0.00..1.00)"})]), "w"));
        assert!(!scans(pg, &rows(&[json!({"QUERY PLAN": "Index Scan using w_owner_idx on w"})]), "w"));
        let my = DatabaseKind::Mysql;
        assert!(scans(my, &rows(&[json!({"table": "w", "type": "ALL"})]), "w"));
        assert!(!scans(my, &rows(&[json!({"table": "w", "type": "ref"})]), "w"));
    }

    #[test]
    fn a_statement_is_looked_at_once_a_minute() {
        let checks = ScanChecks::default();
        assert!(checks.due("a"));
        assert!(!checks.due("a"));
        assert!(checks.due("b"));
    }
}
