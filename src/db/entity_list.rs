//! [`EntityList`]: the answer of [`Db::find_entities_json`](crate::db::Db::find_entities_json),
//! a list of entities already written as JSON.
//!
//! Guarantee: its bytes are exactly what `serde_json` (and so `axum::Json`) writes for
//! the `Vec<Row>` that [`Db::find_entities`](crate::db::Db::find_entities) answers for
//! the same query, so a handler can switch between the two without a client seeing a
//! difference: the same keys in the same order, numbers, booleans, JSON columns,
//! `null`s and escapes.

use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use http::HeaderValue;

use super::value::Row;
use super::DbError;

/// A JSON array of entities, ready to answer: as a handler's return value it is a
/// `200` with `Content-Type: application/json`, like `axum::Json(rows)`.
///
/// ```no_run
/// use app_kernel::db::{EntityList, Find};
/// use app_kernel::{ApiError, Db};
///
/// async fn list_projects(db: Db) -> Result<EntityList, ApiError> {
///     Ok(db.find_entities_json("projects", Find::new().limit(100)).await?)
/// }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct EntityList {
    json: Vec<u8>,
}

impl std::fmt::Debug for EntityList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("EntityList").field(&String::from_utf8_lossy(&self.json)).finish()
    }
}

impl EntityList {
    pub(crate) fn new(json: Vec<u8>) -> Self {
        Self { json }
    }

    /// The JSON text, UTF-8.
    pub fn as_bytes(&self) -> &[u8] {
        &self.json
    }

    /// The JSON text as an owned buffer.
    pub fn into_bytes(self) -> Vec<u8> {
        self.json
    }

    /// The entities as maps, for a caller that needs to look inside after all.
    ///
    /// # Errors
    /// None in practice: the bytes are a JSON array of objects by construction.
    pub fn to_rows(&self) -> Result<Vec<Row>, DbError> {
        serde_json::from_slice(&self.json).map_err(|e| DbError::Query(e.to_string()))
    }
}

impl IntoResponse for EntityList {
    fn into_response(self) -> Response {
        let json = HeaderValue::from_static("application/json");
        ([(CONTENT_TYPE, json)], self.json).into_response()
    }
}
