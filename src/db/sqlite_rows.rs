//! SQLite rows out of a statement: as maps ([`rows_of`]), or straight to the JSON
//! array of the list path ([`json_of`]), which writes integers and text without
//! making a `Value` of them and gives the same bytes as the maps would.

use rusqlite::params_from_iter;
use rusqlite::types::ValueRef;

use crate::db::json_rows::{write_str, write_value, Array, Columns, RowWriter};
use crate::db::sqlite::error;
use crate::db::value::{float, ColumnKind, Param, Row};
use crate::db::DbError;

pub(crate) fn rows_of(stmt: &mut rusqlite::Statement<'_>, params: &[Param]) -> Result<Vec<Row>, DbError> {
    let mut rows = stmt.query(params_from_iter(params.iter())).map_err(error)?;
    let mut names: Option<Vec<String>> = None;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(error)? {
        // Read after the first step: a schema change recompiles the statement there.
        let names = names.get_or_insert_with(|| row.as_ref().column_names().map(str::to_owned).collect());
        let mut map = Row::new();
        for (i, name) in names.iter().enumerate() {
            map.insert(name.clone(), json(row.get_ref(i).map_err(error)?));
        }
        out.push(map);
    }
    Ok(out)
}

/// The rows as a JSON array; `None` when `columns` is strict and a column is one its
/// schema does not read (see [`RowWriter::new`]).
pub(crate) fn json_of(
    stmt: &mut rusqlite::Statement<'_>,
    params: &[Param],
    columns: &Columns,
) -> Result<Option<Vec<u8>>, DbError> {
    let mut rows = stmt.query(params_from_iter(params.iter())).map_err(error)?;
    let mut writer: Option<RowWriter> = None;
    let mut array = Array::new();
    while let Some(row) = rows.next().map_err(error)? {
        // Read after the first step: a schema change recompiles the statement there.
        let writer = match &mut writer {
            Some(writer) => writer,
            None => match RowWriter::new(row.as_ref().column_names(), columns) {
                Some(made) => writer.insert(made),
                None => return Ok(None),
            },
        };
        let as_text = writer.json_as_text();
        writer.row(array.next_row(), |out, i, kind| {
            write(out, kind, as_text, row.get_ref(i).map_err(error)?);
            Ok::<_, DbError>(())
        })?;
    }
    Ok(Some(array.finish()))
}

/// Writes a value as `json` and then `value::restore` would make it, without the
/// `Value` where the two steps leave it as read.
fn write(out: &mut Vec<u8>, kind: Option<ColumnKind>, as_text: bool, value: ValueRef<'_>) {
    match (kind, value) {
        (_, ValueRef::Null) => out.extend_from_slice(b"null"),
        (None, ValueRef::Integer(i)) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        // `from_utf8` first: its check is quicker than the lossy one, which gives the same text.
        (None, ValueRef::Text(t)) => match std::str::from_utf8(t) {
            Ok(s) => write_str(out, s),
            Err(_) => write_str(out, &String::from_utf8_lossy(t)),
        },
        (Some(ColumnKind::Json), ValueRef::Text(t)) if as_text => match std::str::from_utf8(t) {
            // As `restore`: the text's JSON when it parses, else the text itself.
            Ok(s) => match serde_json::from_str::<serde_json::Value>(s) {
                Ok(v) => write_value(out, None, as_text, v),
                Err(_) => write_str(out, s),
            },
            Err(_) => write_value(out, kind, as_text, json(value)),
        },
        (kind, value) => write_value(out, kind, as_text, json(value)),
    }
}

pub(crate) fn json(value: ValueRef<'_>) -> serde_json::Value {
    use serde_json::Value;
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => float(f),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(data_encoding::BASE64.encode(b)),
    }
}
