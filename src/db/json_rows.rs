//! Rows to JSON bytes without a map per row: the list path of
//! [`Db::find_entities_json`](crate::db::Db::find_entities_json).
//!
//! Guarantee: the bytes are exactly what `serde_json` writes for the `Vec<Row>` that
//! [`Db::find_entities`](crate::db::Db::find_entities) answers for the same rows:
//! keys in a [`Row`]'s order (bytewise; a repeated column name keeps its last value),
//! each value restored to its JSON type as `value::restore` does, the same number
//! formatting and string escapes. Engines read each value straight from the driver's
//! row and hand it to a [`RowWriter`]; one that has no such reader writes its maps
//! with [`write_maps`], which gives the same bytes.

use std::sync::Arc;

use serde_json::Value;

use crate::db::schema::TableSchema;
use crate::db::value::{restore, ColumnKind, Row};
use crate::db::DbError;

/// What a list read needs to know of its table: the kinds its values are restored to.
#[derive(Debug, Clone)]
pub(crate) struct Columns {
    pub(crate) schema: Arc<TableSchema>,
    /// The engine stores JSON as text (the dialect's `json_as_text`).
    pub(crate) json_as_text: bool,
    /// A column the schema does not read makes the read answer `None` (the table
    /// changed behind the cache: the caller rereads its schema and runs it again);
    /// otherwise such a column is written as read.
    pub(crate) strict: bool,
}

/// A result's columns in the order a [`Row`] holds them, each with its key's bytes
/// and the kind its values are restored to (`None`: written as read).
#[derive(Debug)]
pub(crate) struct RowWriter {
    fields: Vec<Field>,
    json_as_text: bool,
}

#[derive(Debug)]
struct Field {
    /// The column's position in the result.
    index: usize,
    kind: Option<ColumnKind>,
    /// `{"name":` for the first field, `,"name":` for the others.
    key: Box<[u8]>,
}

impl RowWriter {
    /// The writer for a result whose columns are `names`, in the result's order;
    /// `None` when `columns` is strict and a name is one its schema does not read.
    pub(crate) fn new<'a>(names: impl IntoIterator<Item = &'a str>, columns: &Columns) -> Option<Self> {
        let mut named: Vec<(&str, usize)> = names.into_iter().enumerate().map(|(i, n)| (n, i)).collect();
        if columns.strict && !named.iter().all(|(n, _)| columns.schema.reads(n)) {
            return None;
        }
        // Stable: of a repeated name, the last column is the one a map keeps.
        named.sort_by(|a, b| a.0.cmp(b.0));
        let last_of_each =
            named.iter().enumerate().filter(|(i, (n, _))| named.get(i + 1).is_none_or(|next| next.0 != *n));
        let fields = last_of_each
            .enumerate()
            .map(|(position, (_, (name, index)))| {
                let mut key = vec![if position == 0 { b'{' } else { b',' }];
                // Writing a string into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut key, name);
                key.push(b':');
                let kind = columns.schema.kind(name).filter(|k| k.restores(columns.json_as_text));
                Field { index: *index, kind, key: key.into_boxed_slice() }
            })
            .collect();
        Some(Self { fields, json_as_text: columns.json_as_text })
    }

    /// Writes one row: `write` is called once per field, with the column's position
    /// in the result and the kind to restore its value to, after the field's key.
    pub(crate) fn row<E>(
        &self,
        out: &mut Vec<u8>,
        mut write: impl FnMut(&mut Vec<u8>, usize, Option<ColumnKind>) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.fields.is_empty() {
            out.extend_from_slice(b"{}");
            return Ok(());
        }
        for field in &self.fields {
            out.extend_from_slice(&field.key);
            write(out, field.index, field.kind)?;
        }
        out.push(b'}');
        Ok(())
    }

    /// Whether the engine stores JSON as text (what `kind` `Json` means for a value).
    pub(crate) fn json_as_text(&self) -> bool {
        self.json_as_text
    }
}

/// Writes `value`, read from a column whose values are restored to `kind`, as JSON.
pub(crate) fn write_value(out: &mut Vec<u8>, kind: Option<ColumnKind>, json_as_text: bool, value: Value) {
    let value = match kind {
        Some(kind) => restore(kind, value, json_as_text),
        None => value,
    };
    // Writing a `Value` into a Vec cannot fail: its keys are strings.
    let _ = serde_json::to_writer(out, &value);
}

/// Writes `s` as a JSON string.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(out, s);
}

/// The JSON array of rows read as maps (an engine or a transaction without a row
/// reader of its own): the same bytes, through the maps. `None` as for [`RowWriter::new`].
pub(crate) fn write_maps(rows: Vec<Row>, columns: &Columns) -> Result<Option<Vec<u8>>, DbError> {
    let Some(first) = rows.first() else { return Ok(Some(b"[]".to_vec())) };
    if columns.strict && !first.keys().all(|k| columns.schema.reads(k)) {
        return Ok(None);
    }
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|mut row| {
            for (name, value) in &mut row {
                if let Some(kind) = columns.schema.kind(name).filter(|k| k.restores(columns.json_as_text)) {
                    *value = restore(kind, std::mem::take(value), columns.json_as_text);
                }
            }
            row
        })
        .collect();
    serde_json::to_vec(&rows).map(Some).map_err(|e| DbError::Query(e.to_string()))
}

/// An array writer: `[`, the rows separated by commas, `]`.
#[derive(Debug)]
pub(crate) struct Array {
    out: Vec<u8>,
    rows: usize,
}

impl Array {
    pub(crate) fn new() -> Self {
        Self { out: Vec::with_capacity(1024), rows: 0 }
    }

    /// The buffer to write the next row into, after its separator.
    pub(crate) fn next_row(&mut self) -> &mut Vec<u8> {
        self.out.push(if self.rows == 0 { b'[' } else { b',' });
        self.rows += 1;
        &mut self.out
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        if self.rows == 0 {
            self.out.push(b'[');
        }
        self.out.push(b']');
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn columns(kinds: &[(&str, ColumnKind)], strict: bool) -> Columns {
        let mut schema = TableSchema::default();
        for (name, kind) in kinds {
            schema.columns.insert((*name).to_owned(), *kind);
        }
        Columns { schema: Arc::new(schema), json_as_text: true, strict }
    }

    #[test]
    fn rows_are_written_as_their_maps_serialize() {
        let cols = columns(&[("b", ColumnKind::Bool), ("a", ColumnKind::Json), ("é", ColumnKind::Text)], true);
        let values = [json!(1), json!("[1,{\"z\":1,\"y\":2}]"), json!("x\"\n")];
        let writer = RowWriter::new(["b", "a", "é"], &cols).unwrap();
        let mut array = Array::new();
        for _ in 0..2 {
            let out = array.next_row();
            writer
                .row::<()>(out, |out, i, kind| {
                    write_value(out, kind, writer.json_as_text(), values[i].clone());
                    Ok(())
                })
                .unwrap();
        }
        let row: Row =
            [("b", 0), ("a", 1), ("é", 2)].map(|(n, i)| (n.to_owned(), values[i].clone())).into_iter().collect();
        let expected = write_maps(vec![row.clone(), row], &cols).unwrap().unwrap();
        assert_eq!(String::from_utf8(array.finish()).unwrap(), String::from_utf8(expected).unwrap());
    }

    #[test]
    fn a_column_the_schema_lacks_asks_for_a_reread_when_strict() {
        assert!(RowWriter::new(["id", "new"], &columns(&[("id", ColumnKind::Text)], true)).is_none());
        assert!(RowWriter::new(["id", "new"], &columns(&[("id", ColumnKind::Text)], false)).is_some());
        assert_eq!(Array::new().finish(), b"[]");
    }

    #[test]
    fn a_repeated_name_keeps_the_last_column() {
        let writer = RowWriter::new(["n", "n"], &columns(&[("n", ColumnKind::Integer)], true)).unwrap();
        let mut out = Vec::new();
        writer
            .row::<()>(&mut out, |out, i, _| {
                write_str(out, &i.to_string());
                Ok(())
            })
            .unwrap();
        assert_eq!(out, br#"{"n":"1"}"#);
    }
}
