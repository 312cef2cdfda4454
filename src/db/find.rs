//! [`Find`]: which entities [`Db::find_entities`](crate::db::Db::find_entities) returns.

use serde_json::Value;

use crate::db::dialect::{order_by, quote_unchecked, validate_identifier};
use crate::db::translate::check_clause;
use crate::db::{DatabaseKind, DbError};

/// A query over one entity table: filter, order, page.
///
/// ```
/// use app_kernel::db::Find;
/// let q = Find::new().filter("[owner] = ? AND [status] <> ?", ["u1", "archived"]).order_by("[created_at] DESC").limit(100);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Find {
    pub(crate) where_clause: Option<String>,
    pub(crate) params: Vec<Value>,
    pub(crate) order_by: Option<String>,
    pub(crate) limit: Option<u64>,
    pub(crate) offset: Option<u64>,
    pub(crate) include_deleted: bool,
    /// Where the raw clauses given to [`Find::filter`] stand in `where_clause`, each
    /// checked on its own when the statement is built.
    raw: Vec<std::ops::Range<usize>>,
    /// A field name [`Find::cmp`] or [`Find::sort`] refused.
    invalid: Option<String>,
}

/// A comparison of a field with a value, for [`Find::cmp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cmp {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Cmp {
    fn sql(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "<>",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

impl Find {
    /// Every live (not soft-deleted) entity, in no particular order.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the entities whose `field` equals `value`. The field name may come from a
    /// client: anything but a plain identifier makes the query fail with
    /// [`DbError::InvalidIdentifier`], never reaches SQL.
    #[must_use]
    pub fn eq(self, field: &str, value: impl Into<Value>) -> Self {
        self.cmp(field, Cmp::Eq, value)
    }

    /// Keeps the entities whose `field` compares with `value` as `op` says (see [`Find::eq`]).
    #[must_use]
    pub fn cmp(mut self, field: &str, op: Cmp, value: impl Into<Value>) -> Self {
        if validate_identifier(field).is_err() {
            self.invalid.get_or_insert_with(|| field.chars().take(80).collect());
            return self;
        }
        let clause = format!("[{field}] {} ?", op.sql());
        self.and(&clause, [value.into()])
    }

    /// Orders by `field`, after any order given before (see [`Find::eq`] for the name).
    #[must_use]
    pub fn sort(mut self, field: &str, descending: bool) -> Self {
        if validate_identifier(field).is_err() {
            self.invalid.get_or_insert_with(|| field.chars().take(80).collect());
            return self;
        }
        let item = format!("[{field}] {}", if descending { "DESC" } else { "ASC" });
        self.order_by = Some(match self.order_by.take() {
            Some(first) => format!("{first}, {item}"),
            None => item,
        });
        self
    }

    /// Keeps the entities matching `clause` (portable SQL: `[field]`, `?`), with `params`
    /// bound to its placeholders. A second call is combined with `AND`.
    ///
    /// The clause is the app's SQL: build it from constants, and pass a client's field
    /// names through [`Find::eq`] / [`Find::cmp`] instead. A clause that could reach past
    /// its own condition (an unbalanced parenthesis or `[`/`]`, a `;`, a comment) fails
    /// the query with [`DbError::UnsafeFilter`].
    #[must_use]
    pub fn filter(self, clause: &str, params: impl IntoIterator<Item = impl Into<Value>>) -> Self {
        let mut find = self.and(clause, params);
        // `and` appended `(clause)`: the clause ends before the last byte.
        let end = find.where_clause.as_ref().map_or(0, |w| w.len() - 1);
        find.raw.push(end - clause.len()..end);
        find
    }

    fn and(mut self, clause: &str, params: impl IntoIterator<Item = impl Into<Value>>) -> Self {
        self.where_clause = Some(match self.where_clause.take() {
            Some(first) => format!("{first} AND ({clause})"),
            None => format!("({clause})"),
        });
        self.params.extend(params.into_iter().map(Into::into));
        self
    }

    /// Orders by `[column] ASC|DESC`, comma-separated; anything else is refused.
    #[must_use]
    pub fn order_by(mut self, clause: &str) -> Self {
        self.order_by = Some(clause.to_owned());
        self
    }

    /// Returns at most `n` entities.
    #[must_use]
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }

    /// Skips the first `n` entities.
    #[must_use]
    pub fn offset(mut self, n: u64) -> Self {
        self.offset = Some(n);
        self
    }

    /// Includes soft-deleted entities.
    #[must_use]
    pub fn include_deleted(mut self) -> Self {
        self.include_deleted = true;
        self
    }

    /// Refuses a field name given to the typed methods: run on every query (the
    /// statement's cache key does not see a refused name).
    pub(crate) fn check_names(&self) -> Result<(), DbError> {
        match &self.invalid {
            Some(name) => Err(DbError::InvalidIdentifier { name: name.clone() }),
            None => Ok(()),
        }
    }

    /// Refuses a raw clause that could reach past its own condition: run when the
    /// statement is built (the same clauses build the same statement).
    pub(crate) fn check_clauses(&self, kind: DatabaseKind) -> Result<(), DbError> {
        let clauses = self.where_clause.as_deref().unwrap_or_default();
        self.raw.iter().try_for_each(|range| check_clause(kind, &clauses[range.clone()]))
    }

    /// The `WHERE ...` part (possibly empty), in portable SQL.
    pub(crate) fn where_sql(&self, kind: DatabaseKind, soft_delete: bool) -> String {
        let mut conditions = Vec::new();
        if let Some(clause) = &self.where_clause {
            conditions.push(clause.clone());
        }
        if soft_delete && !self.include_deleted {
            conditions.push(format!("{} IS NULL", quote_unchecked(kind, "deleted_at")));
        }
        if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        }
    }

    /// What decides the generated statement (not the values bound to it): the key
    /// under which `op`'s SQL for `table` is cached.
    pub(crate) fn cache_key(&self, op: &str, table: &str, soft_delete: bool) -> String {
        let flag = |b: bool| if b { '1' } else { '0' };
        let order = self.order_by.as_deref().unwrap_or_default();
        let filter = self.where_clause.as_deref().unwrap_or_default();
        let flags = [
            soft_delete && !self.include_deleted,
            self.limit.is_some(),
            self.offset.is_some(),
            self.order_by.is_some(),
            self.where_clause.is_some(),
        ];
        let mut key = String::with_capacity(op.len() + table.len() + order.len() + filter.len() + 24);
        key.push_str(op);
        key.push('|');
        key.push_str(table);
        key.push('|');
        key.extend(flags.map(flag));
        // The order clause's length makes the key unambiguous whatever the two texts hold.
        key.push_str(&format!("|{}:", order.len()));
        key.push_str(order);
        key.push('|');
        key.push_str(filter);
        key
    }

    /// The values bound to the `LIMIT` and `OFFSET` of [`Find::tail_sql`].
    pub(crate) fn tail_params(&self) -> Vec<Value> {
        let mut params = Vec::new();
        if let Some(limit) = self.limit {
            params.push(Value::from(limit.min(i64::MAX as u64)));
        }
        if let Some(offset) = self.offset {
            params.push(Value::from(offset.min(i64::MAX as u64)));
        }
        params
    }

    /// The `ORDER BY ... LIMIT ... OFFSET ...` part; [`Find::tail_params`] are its values.
    pub(crate) fn tail_sql(&self, kind: DatabaseKind) -> Result<String, DbError> {
        let mut sql = String::new();
        if let Some(clause) = &self.order_by {
            sql.push_str(" ORDER BY ");
            sql.push_str(&order_by(kind, clause)?);
        }
        match (self.limit, self.offset) {
            (Some(_), _) => sql.push_str(" LIMIT ?"),
            (None, Some(_)) => sql.push_str(match kind {
                DatabaseKind::Sqlite => " LIMIT -1",
                DatabaseKind::Mysql => " LIMIT 18446744073709551615",
                DatabaseKind::Postgres => "",
            }),
            (None, None) => {}
        }
        if self.offset.is_some() {
            sql.push_str(" OFFSET ?");
        }
        Ok(sql)
    }
}
