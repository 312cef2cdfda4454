//! The entity API: JSON objects stored by `id`, one table per kind of entity.
//!
//! Invariants: `id` is a string (a UUID v7 when the caller gives none); `created_at`
//! is set once, on insert, and `updated_at` on every save (RFC 3339 UTC, microseconds,
//! so the text sorts in time order); a save merges (fields it does not name keep their
//! values); soft-deleted entities (`deleted_at` set) are invisible unless asked for.

use std::sync::Arc;

use serde_json::Value;

use crate::db::backend::Target;
use crate::db::dialect::{ddl_lock, json_as_text, quote_unchecked, validate_entity_table};
use crate::db::json_rows::Columns;
use crate::db::schema::{self, TableSchema, Tables};
use crate::db::schema_change::Change;
use crate::db::translate::translate;
use crate::db::value::{restore, ColumnKind, Param, Row};
use crate::db::{DatabaseKind, Db, DbError, Find};

/// Where an entity operation runs, and which schema it sees.
pub(crate) struct Ctx<'a> {
    pub(crate) db: &'a Db,
    pub(crate) target: Target<'a>,
    /// A transaction's own schema changes, published on commit.
    pub(crate) overlay: Option<&'a mut Tables>,
}

const MANAGED: [&str; 4] = ["id", "created_at", "updated_at", "deleted_at"];

/// The columns an object needs, with the kind each gets if it has to be created.
fn fields_of(obj: &Row) -> Vec<(&str, ColumnKind)> {
    obj.iter()
        .map(|(k, v)| (k.as_str(), if MANAGED.contains(&k.as_str()) { ColumnKind::Text } else { ColumnKind::of(v) }))
        .collect()
}

/// The current time as the kernel stores it.
pub(crate) fn now() -> String {
    crate::timestamp::now_utc_micros()
}

impl Ctx<'_> {
    pub(crate) fn kind(&self) -> DatabaseKind {
        self.db.inner.kind
    }

    /// A generated statement in the engine's syntax: built once per `key`, then cached.
    pub(crate) fn statement(
        &self,
        key: &str,
        build: impl FnOnce() -> Result<String, DbError>,
    ) -> Result<String, DbError> {
        self.statement_binding(key, None, build)
    }

    /// As [`Self::statement`], for a statement with an app's filter that binds `params`
    /// values: a `?` count that differs is refused here ([`DbError::ParamCount`]), never
    /// sent (sqlx 0.9's MySQL driver refuses it after queueing the reply it expects,
    /// and that connection then waits for the reply forever).
    pub(crate) fn statement_binding(
        &self,
        key: &str,
        params: Option<usize>,
        build: impl FnOnce() -> Result<String, DbError>,
    ) -> Result<String, DbError> {
        let kind = self.kind();
        let t = self.db.inner.entity_sql.get_or_build(key, || translate(kind, &build()?))?;
        match params {
            Some(got) if got != t.placeholders => Err(DbError::ParamCount { expected: t.placeholders, got }),
            _ => Ok(t.sql.clone()),
        }
    }

    /// The table's schema from the caches, else from the database; `None` if it is missing.
    async fn lookup(&mut self, table: &str) -> Result<Option<Arc<TableSchema>>, DbError> {
        if let Some(found) = self.overlay.as_ref().and_then(|o| o.get(table)) {
            return Ok(Some(found.clone()));
        }
        if let Some(found) = self.db.inner.schema.get(table) {
            return Ok(Some(found));
        }
        let found = schema::introspect(self.kind(), &mut self.target, table).await?;
        if let Some(s) = &found {
            self.db.inner.schema.put(table, s.clone());
        }
        Ok(found)
    }

    /// The table's schema with a column for every key of `obj`, as [`Self::ensure`]
    /// gives it, and the kind of each key's column in `obj`'s order; a known table
    /// that has them all costs one lookup per key.
    pub(crate) async fn ensure_row(
        &mut self,
        table: &str,
        obj: &Row,
    ) -> Result<(Arc<TableSchema>, Vec<ColumnKind>), DbError> {
        if let Some(s) = self.lookup(table).await? {
            if let Some(kinds) = obj.keys().map(|k| s.kind(k)).collect::<Option<Vec<_>>>() {
                return Ok((s, kinds));
            }
        }
        let s = self.ensure(table, &fields_of(obj)).await?;
        let kinds = obj.keys().map(|k| s.kind(k).unwrap_or(ColumnKind::Text)).collect();
        Ok((s, kinds))
    }

    /// The table's schema with every field of `fields`, as the schema policy allows:
    /// checked against the cache first (a refusal costs no lock and no DDL), then, in
    /// the locked change, against the database's own view.
    pub(crate) async fn ensure(
        &mut self,
        table: &str,
        fields: &[(&str, ColumnKind)],
    ) -> Result<Arc<TableSchema>, DbError> {
        let known = self.lookup(table).await?;
        if let Some(s) = known.as_ref().filter(|s| fields.iter().all(|(n, _)| s.has(n))) {
            return Ok(s.clone());
        }
        let policy = self.db.inner.schema_policy;
        if policy.check(table, known.as_deref(), fields).is_err() {
            // The cache may lag another process's change: a refusal stands only against
            // the database's own view.
            let fresh = schema::introspect(self.kind(), &mut self.target, table).await?;
            if let Some(s) = &fresh {
                self.remember(table, s);
                if fields.iter().all(|(n, _)| s.has(n)) {
                    return Ok(s.clone());
                }
            }
            policy.check(table, fresh.as_deref(), fields)?;
        }
        let kind = self.kind();
        if let Some(overlay) = self.overlay.as_mut() {
            if !kind.transactional_ddl() {
                // The DDL would commit the transaction: refuse rather than break its atomicity.
                return Err(DbError::SchemaChangeInTransaction { table: table.to_owned() });
            }
            if let Some((take, _)) = ddl_lock(kind) {
                self.target.fetch(take.to_owned(), vec![Param::Text(table.to_owned())], true).await?;
            }
            let fresh = schema::introspect(kind, &mut self.target, table).await?;
            policy.check(table, fresh.as_deref(), fields)?;
            let s = schema::apply(kind, &mut self.target, table, fresh.as_deref(), fields).await?;
            overlay.insert(table.to_owned(), s.clone());
            return Ok(s);
        }
        let fields = fields.iter().map(|(n, k)| ((*n).to_owned(), *k)).collect();
        let change = Change { table: table.to_owned(), fields, indexes: Vec::new(), policy: Some(policy) };
        self.db.change_schema(change).await
    }

    /// Gives values their JSON types back, in place; columns whose values read back
    /// as they were saved (text, integers) are not touched.
    pub(crate) fn restore(&self, schema: &TableSchema, mut rows: Vec<Row>) -> Vec<Row> {
        let as_text = json_as_text(self.kind());
        let typed: Vec<(&str, ColumnKind)> =
            schema.columns.iter().filter(|(_, k)| k.restores(as_text)).map(|(name, k)| (name.as_str(), *k)).collect();
        if typed.is_empty() {
            return rows;
        }
        for row in &mut rows {
            for (name, kind) in &typed {
                if let Some(v) = row.get_mut(*name) {
                    *v = restore(*kind, std::mem::take(v), as_text);
                }
            }
        }
        rows
    }

    /// One entity by id: `find` with `[id] = ?` and `LIMIT 1`, minus the `Find` it
    /// would build and key on every call.
    pub(crate) async fn get(&mut self, table: &str, id: &str) -> Result<Option<Row>, DbError> {
        validate_entity_table(table)?;
        let Some(mut schema) = self.lookup(table).await? else { return Ok(None) };
        let mut rows = self.get_rows(table, &schema, id).await?;
        if let Some(current) = self.reread_if_outdated(table, &schema, &rows).await? {
            rows = self.get_rows(table, &current, id).await?;
            schema = current;
        }
        Ok(self.restore(&schema, rows).into_iter().next())
    }

    async fn get_rows(&mut self, table: &str, schema: &TableSchema, id: &str) -> Result<Vec<Row>, DbError> {
        let kind = self.kind();
        let soft = schema.has("deleted_at");
        let sql = self.statement(&format!("get|{table}|{soft}"), || {
            let q = |c| quote_unchecked(kind, c);
            let live = if soft { format!(" AND {} IS NULL", q("deleted_at")) } else { String::new() };
            Ok(format!("SELECT * FROM {} WHERE {} = ?{live} LIMIT 1", q(table), q("id")))
        })?;
        // A table dropped behind the cache's back is looked up afresh next time.
        self.target
            .fetch(sql, vec![Param::Text(id.to_owned())], false)
            .await
            .inspect_err(|_| self.db.inner.schema.forget(table))
    }

    pub(crate) async fn find(&mut self, table: &str, find: &Find) -> Result<Vec<Row>, DbError> {
        validate_entity_table(table)?;
        find.check_names()?;
        let Some(mut schema) = self.lookup(table).await? else { return Ok(Vec::new()) };
        let mut rows = self.find_rows(table, &schema, find).await?;
        if let Some(current) = self.reread_if_outdated(table, &schema, &rows).await? {
            rows = self.find_rows(table, &current, find).await?;
            schema = current;
        }
        Ok(self.restore(&schema, rows))
    }

    async fn find_rows(&mut self, table: &str, schema: &TableSchema, find: &Find) -> Result<Vec<Row>, DbError> {
        let (sql, params) = self.find_statement(table, schema, find)?;
        self.target.fetch(sql, params, false).await.inspect_err(|_| self.db.inner.schema.forget(table))
    }

    /// As [`Self::find`], written as the JSON array of its rows without a map per row
    /// where the engine allows (the same bytes as the rows `find` answers serialize to).
    pub(crate) async fn find_json(&mut self, table: &str, find: &Find) -> Result<Vec<u8>, DbError> {
        validate_entity_table(table)?;
        find.check_names()?;
        let Some(schema) = self.lookup(table).await? else { return Ok(b"[]".to_vec()) };
        if let Some(json) = self.find_json_rows(table, &schema, find, true).await? {
            return Ok(json);
        }
        // A column the cache lacks: as `reread_if_outdated`, read the schema afresh, once.
        let current = match schema::introspect(self.kind(), &mut self.target, table).await? {
            Some(current) => {
                self.remember(table, &current);
                current
            }
            None => schema,
        };
        let json = self.find_json_rows(table, &current, find, false).await?;
        Ok(json.unwrap_or_else(|| b"[]".to_vec()))
    }

    async fn find_json_rows(
        &mut self,
        table: &str,
        schema: &Arc<TableSchema>,
        find: &Find,
        strict: bool,
    ) -> Result<Option<Vec<u8>>, DbError> {
        let (sql, params) = self.find_statement(table, schema, find)?;
        let columns = Columns { schema: schema.clone(), json_as_text: json_as_text(self.kind()), strict };
        self.target.fetch_json(sql, params, columns).await.inspect_err(|_| self.db.inner.schema.forget(table))
    }

    /// The statement `find` runs on `table`, and its values.
    fn find_statement(&self, table: &str, schema: &TableSchema, find: &Find) -> Result<(String, Vec<Param>), DbError> {
        let kind = self.kind();
        let soft = schema.has("deleted_at");
        let key = find.cache_key("find", table, soft);
        let params: Vec<Param> = find.params.iter().chain(&find.tail_params()).cloned().map(Param::from_json).collect();
        let sql = self.statement_binding(&key, Some(params.len()), || {
            find.check_clauses(kind)?;
            let tail = find.tail_sql(kind)?;
            Ok(format!("SELECT * FROM {}{}{tail}", quote_unchecked(kind, table), find.where_sql(kind, soft)))
        })?;
        if let (true, Some(filter)) = (self.db.inner.warn_full_scans, &find.where_clause) {
            self.db.check_scan(table, &key, filter, &sql, &params);
        }
        Ok((sql, params))
    }

    /// When `rows` hold a column that `schema` lacks, another process added it after
    /// the table was cached (a field, or `deleted_at`, which changes what a read
    /// returns): the table's schema read afresh and cached; else `None`.
    pub(crate) async fn reread_if_outdated(
        &mut self,
        table: &str,
        schema: &TableSchema,
        rows: &[Row],
    ) -> Result<Option<Arc<TableSchema>>, DbError> {
        let Some(row) = rows.first() else { return Ok(None) };
        if row.keys().all(|column| schema.reads(column)) {
            return Ok(None);
        }
        let Some(current) = schema::introspect(self.kind(), &mut self.target, table).await? else { return Ok(None) };
        self.remember(table, &current);
        Ok(Some(current))
    }

    /// Caches a table's schema just read: in the transaction's own changes if it
    /// made some to that table, else for everyone.
    fn remember(&mut self, table: &str, current: &Arc<TableSchema>) {
        match self.overlay.as_mut() {
            Some(overlay) if overlay.contains_key(table) => {
                overlay.insert(table.to_owned(), current.clone());
            }
            _ => self.db.inner.schema.put(table, current.clone()),
        }
    }

    pub(crate) async fn count(&mut self, table: &str, find: &Find) -> Result<u64, DbError> {
        validate_entity_table(table)?;
        find.check_names()?;
        let Some(mut schema) = self.lookup(table).await? else { return Ok(0) };
        let stale = |s: &TableSchema| s.read_at.is_none_or(|at| at.elapsed() > schema::COUNT_TRUSTS_FOR);
        if !schema.has("deleted_at") && stale(&schema) {
            if let Some(current) = schema::introspect(self.kind(), &mut self.target, table).await? {
                self.remember(table, &current);
                schema = current;
            }
        }
        let kind = self.kind();
        let soft = schema.has("deleted_at");
        let params: Vec<Param> = find.params.iter().cloned().map(Param::from_json).collect();
        let sql = self.statement_binding(&find.cache_key("count", table, soft), Some(params.len()), || {
            find.check_clauses(kind)?;
            Ok(format!("SELECT COUNT(*) AS n FROM {}{}", quote_unchecked(kind, table), find.where_sql(kind, soft)))
        })?;
        let rows = self.target.fetch(sql, params, false).await?;
        Ok(rows.first().and_then(|r| r.get("n")).and_then(Value::as_u64).unwrap_or(0))
    }

    pub(crate) async fn delete(&mut self, table: &str, id: &str) -> Result<bool, DbError> {
        validate_entity_table(table)?;
        if self.lookup(table).await?.is_none() {
            return Ok(false);
        }
        let kind = self.kind();
        let sql = self.statement(&format!("delete|{table}"), || {
            Ok(format!("DELETE FROM {} WHERE {} = ?", quote_unchecked(kind, table), quote_unchecked(kind, "id")))
        })?;
        Ok(self.target.execute(sql, vec![Param::Text(id.to_owned())]).await? > 0)
    }

    pub(crate) async fn soft_delete(&mut self, table: &str, id: &str) -> Result<bool, DbError> {
        validate_entity_table(table)?;
        if self.lookup(table).await?.is_none() {
            return Ok(false);
        }
        let schema = self.ensure(table, &[("deleted_at", ColumnKind::Text)]).await?;
        let kind = self.kind();
        let stamps_update = schema.has("updated_at");
        let now = now();
        let mut params = vec![Param::Text(now.clone())];
        if stamps_update {
            params.push(Param::Text(now));
        }
        params.push(Param::Text(id.to_owned()));
        let sql = self.statement(&format!("soft-delete|{table}|{stamps_update}"), || {
            let q = |c| quote_unchecked(kind, c);
            let mut set = format!("{} = ?", q("deleted_at"));
            if stamps_update {
                set.push_str(&format!(", {} = ?", q("updated_at")));
            }
            Ok(format!("UPDATE {} SET {set} WHERE {} = ? AND {} IS NULL", q(table), q("id"), q("deleted_at")))
        })?;
        Ok(self.target.execute(sql, params).await? > 0)
    }
}
