//! The database's metrics (names in [`names`]): the pool's connections in use and
//! idle (sampled when `/metrics` is scraped), the statements that had to wait for a
//! connection and how long, and the statements that failed, by kind.
//!
//! Only the slow paths record: a statement that finds a connection free at once
//! costs one `try_acquire`, nothing more; the wait is timed only when there is one,
//! through handles each pool resolves once ([`Waits`]).

use std::time::Instant;

use super::{Db, DbError};
use crate::observability::names;

/// A pool's connections at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PoolStats {
    /// Connections running a statement or held by a transaction.
    pub(crate) in_use: u64,
    /// Open connections free to take.
    pub(crate) idle: u64,
}

/// The wait metrics of one pool, resolved once when it opens: a wait then costs two
/// clock reads, an atomic add and a histogram sample, no registry lookup.
#[derive(Debug, Clone)]
pub(crate) struct Waits {
    count: metrics::Counter,
    seconds: metrics::Histogram,
}

impl Waits {
    /// The handles of `engine`'s pool.
    pub(crate) fn new(engine: &'static str) -> Self {
        Self {
            count: metrics::counter!(names::DB_POOL_ACQUIRE_WAITS_TOTAL, names::LABEL_ENGINE => engine),
            seconds: metrics::histogram!(names::DB_POOL_ACQUIRE_WAIT_SECONDS, names::LABEL_ENGINE => engine),
        }
    }

    /// Records a wait for a connection that began at `since`.
    pub(crate) fn waited(&self, since: Instant) {
        self.count.increment(1);
        self.seconds.record(since.elapsed().as_secs_f64());
    }
}

/// Counts a statement that failed, by the kind of its error.
pub(crate) fn failed(e: &DbError) {
    let kind = match e {
        DbError::Query(_) => "query",
        DbError::Conflict(_) => "conflict",
        DbError::Connect(_) => "connect",
        DbError::Closed => "closed",
        DbError::SchemaChanged => "schema_changed",
        _ => "other",
    };
    metrics::counter!(names::DB_QUERY_ERRORS_TOTAL, names::LABEL_KIND => kind).increment(1);
}

impl Db {
    /// Samples the pool's connections in use and idle into `kernel_db_pool_connections`
    /// (a `/metrics` scrape calls it).
    pub fn sample_pool(&self) {
        let stats = self.inner.backend.pool_stats();
        let engine = self.kind().feature();
        #[allow(clippy::cast_precision_loss)]
        for (state, n) in [("in_use", stats.in_use), ("idle", stats.idle)] {
            metrics::gauge!(names::DB_POOL_CONNECTIONS, names::LABEL_ENGINE => engine, names::LABEL_STATE => state)
                .set(n as f64);
        }
    }
}
