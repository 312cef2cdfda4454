//! A job's row as the queue reads it back: the columns it selects and their decoding
//! into a [`JobRecord`] (the engines give numbers as numbers or strings, JSON as text).

use serde_json::Value;

use crate::db::Row;
use crate::jobs::backend::{JobRecord, JobStatus, Priority};
use crate::jobs::JobError;

/// The columns a [`JobRecord`] is read from.
pub(super) const COLUMNS: &str =
    "[id], [task], [payload], [status], [priority], [run_at], [attempts], [max_attempts], \
    [timeout_ms], [user_id], [result], [error], [created_at], [updated_at], [trace_parent]";

pub(super) fn text(row: &Row, col: &str) -> String {
    match row.get(col) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

fn opt_text(row: &Row, col: &str) -> Option<String> {
    match row.get(col) {
        Some(Value::Null) | None => None,
        _ => Some(text(row, col)),
    }
}

pub(super) fn int(row: &Row, col: &str) -> i64 {
    match row.get(col) {
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

pub(super) fn record(row: &Row) -> Result<JobRecord, JobError> {
    let status = text(row, "status");
    let parse = |s: Option<String>| s.map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s)));
    Ok(JobRecord {
        id: text(row, "id"),
        task: text(row, "task"),
        payload: parse(Some(text(row, "payload"))).unwrap_or(Value::Null),
        status: JobStatus::parse(&status).ok_or_else(|| JobError::Storage(format!("unknown job status {status}")))?,
        priority: Priority::from_rank(int(row, "priority")),
        attempts: u32::try_from(int(row, "attempts")).unwrap_or(0),
        max_attempts: u32::try_from(int(row, "max_attempts")).unwrap_or(1),
        timeout_ms: u64::try_from(int(row, "timeout_ms")).unwrap_or(0),
        user_id: opt_text(row, "user_id"),
        run_at: int(row, "run_at"),
        result: parse(opt_text(row, "result")),
        error: opt_text(row, "error"),
        created_at: int(row, "created_at"),
        updated_at: int(row, "updated_at"),
        trace_parent: opt_text(row, "trace_parent"),
    })
}
