//! Saving an entity: the managed fields (`id`, `created_at`, `updated_at`), the
//! insert or upsert statement, and the row a save answers.
//!
//! A fresh entity (no `id`) is a plain insert; one with an `id` is an upsert by it. The
//! answer is the stored row: from `RETURNING` (a read by id on MySQL), or, on SQLite,
//! from the bound values themselves when the table stores them unchanged (see
//! `TableSchema::inserts_read_back_as_bound`).

use serde_json::Value;

use crate::db::dialect::{quote_unchecked, validate_entity_table, validate_identifier};
use crate::db::entity::{now, Ctx};
use crate::db::schema_policy::note_refusal;
use crate::db::value::{json_type, Param, Row};
use crate::db::{DatabaseKind, DbError};

impl Ctx<'_> {
    pub(crate) async fn save(&mut self, table: &str, entity: Value) -> Result<Row, DbError> {
        self.save_checked(table, entity).await.inspect_err(|e| note_refusal(table, e))
    }

    async fn save_checked(&mut self, table: &str, entity: Value) -> Result<Row, DbError> {
        validate_entity_table(table)?;
        let mut obj = match entity {
            Value::Object(obj) => obj,
            other => return Err(DbError::NotAnObject { found: json_type(&other) }),
        };
        check_field_names(&obj)?;
        // The kernel's fields: a value given for them is ignored, never stored.
        for managed in ["created_at", "updated_at", "deleted_at"] {
            obj.remove(managed);
        }
        let fresh = matches!(obj.get("id"), None | Some(Value::Null));
        let id = match obj.remove("id") {
            None | Some(Value::Null) => {
                uuid::Uuid::now_v7().hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()).to_owned()
            }
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
            Some(other) => {
                let (table, found) = (table.to_owned(), json_type(&other));
                return Err(DbError::TypeMismatch { table, column: "id".into(), expected: "string", found });
            }
        };
        let now = now();
        obj.insert("id".into(), Value::String(id.clone()));
        // An update keeps the stored `created_at` (the upsert does not set it).
        obj.insert("created_at".into(), Value::String(now.clone()));
        obj.insert("updated_at".into(), Value::String(now));
        let (schema, kinds) = self.ensure_row(table, &obj).await?;
        let kind = self.kind();
        let mut key = String::with_capacity(table.len() + obj.keys().map(|k| k.len() + 1).sum::<usize>() + 16);
        key.push_str(if fresh { "insert|" } else { "save|" });
        key.push_str(table);
        key.push('|');
        for column in obj.keys() {
            key.push_str(column);
            key.push(',');
        }
        // A fresh row whose values read back as bound is answered from them: SQLite's
        // `RETURNING` costs about as much as the insert itself.
        // (`ensure_row` made sure the table has every field.)
        let echo = fresh && schema.inserts_read_back_as_bound;
        if echo {
            key.push_str("|echo");
        }
        let sql = self.statement(&key, || Ok(upsert_sql(kind, table, obj.keys().map(String::as_str), fresh, !echo)))?;
        // The object becomes the answer in place: each value is bound, and (when the
        // row is answered from the bound values) replaced by what a read returns.
        let mut params = Vec::with_capacity(obj.len());
        for ((k, v), col_kind) in obj.iter_mut().zip(kinds) {
            let param = Param::for_column(table, k, col_kind, std::mem::take(v))?;
            if echo {
                *v = param.read_back();
            }
            params.push(param);
        }
        if echo {
            self.target.execute(sql, params).await?;
            // `ensure_row` made every key a column: equal counts mean no column is missing.
            if obj.len() < schema.columns.len() {
                for column in schema.columns.keys() {
                    if !obj.contains_key(column) {
                        obj.insert(column.clone(), Value::Null);
                    }
                }
            }
            return Ok(obj);
        }
        let rows = if !kind.returning() {
            self.target.execute(sql, params).await?;
            let select = self.statement(&format!("by-id|{table}"), || {
                Ok(format!("SELECT * FROM {} WHERE {} = ?", quote_unchecked(kind, table), quote_unchecked(kind, "id")))
            })?;
            self.target.fetch(select, vec![Param::Text(id)], true).await?
        } else {
            self.target.fetch(sql, params, true).await?
        };
        let schema = self.reread_if_outdated(table, &schema, &rows).await?.unwrap_or(schema);
        let row = self.restore(&schema, rows).into_iter().next();
        row.ok_or_else(|| DbError::Query(format!("saved {table} row was not returned")))
    }
}

/// At most this many rejected names are named in an error, each cut to this many bytes.
const SHOWN_NAMES: usize = 20;
const SHOWN_NAME_LEN: usize = 80;

/// Checks every field name of `obj`; the error names the bad ones (a few, shortened:
/// a hostile name can be megabytes long).
pub(crate) fn check_field_names(obj: &Row) -> Result<(), DbError> {
    let bad: Vec<String> =
        obj.keys().filter(|k| validate_identifier(k).is_err()).take(SHOWN_NAMES).map(|k| shown(k)).collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(DbError::InvalidFieldNames { fields: bad })
    }
}

/// `name` cut to [`SHOWN_NAME_LEN`] bytes (on a character boundary), marked when cut.
fn shown(name: &str) -> String {
    if name.len() <= SHOWN_NAME_LEN {
        return name.to_owned();
    }
    let mut end = SHOWN_NAME_LEN;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &name[..end])
}

/// The statement that saves an entity with `columns` (which include `id` and
/// `created_at`, which an update leaves as they are): an upsert by `id`, or, for an
/// entity whose id the kernel just generated (`fresh`), a plain insert, which cannot
/// meet an existing row and costs SQLite about half as much. Returns the saved row
/// where the engine can (`returning`; never on MySQL).
fn upsert_sql<'a>(
    kind: DatabaseKind,
    table: &str,
    columns: impl Iterator<Item = &'a str>,
    fresh: bool,
    returning: bool,
) -> String {
    let columns: Vec<&str> = columns.collect();
    let names: Vec<String> = columns.iter().map(|c| quote_unchecked(kind, c)).collect();
    let updates = columns.iter().zip(&names).filter(|(c, _)| !matches!(**c, "id" | "created_at"));
    let marks = vec!["?"; names.len()].join(", ");
    let insert = format!("INSERT INTO {} ({}) VALUES ({marks})", quote_unchecked(kind, table), names.join(", "));
    if fresh {
        return if kind.returning() && returning { format!("{insert} RETURNING *") } else { insert };
    }
    let updates: Vec<&str> = updates.map(|(_, q)| q.as_str()).collect();
    kind.upsert(&insert, &updates)
}
