//! A bounded cache of SQL text the kernel would otherwise rebuild on every call.
//!
//! Keys are the portable SQL an app passes (for [`Db::execute`](crate::db::Db::execute)
//! and friends) or a description of a generated entity statement (table, columns,
//! clauses); values are the finished statement in the engine's syntax. One cache
//! belongs to one [`Db`](crate::db::Db), so one engine: the key need not name it.
//! Only successful builds are cached, so a bad statement is refused every time.
//! When full, the cache is emptied: apps use a bounded set of statements, so this only
//! happens with dynamically built SQL, where caching would not help anyway.

use crate::FastMap as HashMap;
use std::sync::{Arc, RwLock};

use crate::db::translate::Translated;
use crate::db::DbError;

/// The most statements one pool remembers.
const CAPACITY: usize = 512;

/// Finished statements by key.
#[derive(Debug, Default)]
pub(crate) struct SqlCache {
    entries: RwLock<HashMap<Box<str>, Arc<Translated>>>,
}

impl SqlCache {
    /// The statement cached under `key`, else the one `build` makes (cached if it succeeds).
    pub(crate) fn get_or_build(
        &self,
        key: &str,
        build: impl FnOnce() -> Result<Translated, DbError>,
    ) -> Result<Arc<Translated>, DbError> {
        let read = self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(key).cloned();
        if let Some(found) = read {
            return Ok(found);
        }
        let built = Arc::new(build()?);
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key.into(), built.clone());
        Ok(built)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(sql: &str) -> Result<Translated, DbError> {
        Ok(Translated { sql: sql.to_owned(), placeholders: 0 })
    }

    #[test]
    fn caches_successes_only_and_stays_bounded() {
        let cache = SqlCache::default();
        assert_eq!(cache.get_or_build("a", || t("A")).unwrap().sql, "A");
        assert_eq!(cache.get_or_build("a", || t("other")).unwrap().sql, "A");
        assert!(cache.get_or_build("bad", || Err(DbError::MalformedSql("x".into()))).is_err());
        assert_eq!(cache.get_or_build("bad", || t("B")).unwrap().sql, "B");
        for i in 0..CAPACITY * 2 {
            cache.get_or_build(&i.to_string(), || t("n")).unwrap();
        }
        assert!(cache.entries.read().unwrap().len() <= CAPACITY);
    }
}
