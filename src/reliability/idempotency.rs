//! Idempotency records: what the first request with an `Idempotency-Key` answered,
//! kept `idempotency_ttl_seconds` (24 h) for the same caller's repeats.
//!
//! A record is first *running* (the first request is being served; it lives a
//! short time, so that an instance that dies mid-request does not hold the key for a
//! day), then *done* with the response, or removed (a 5xx or a streamed response is
//! not kept: a repeat runs again). The records live behind [`IdempotencyStore`]:
//! [`MemoryIdempotencyStore`] in process, a Redis store when instances must share
//! them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::ReliabilityError;

/// A response as it is kept and replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// The status code.
    pub status: u16,
    /// Its headers, in order (values that are not text are not kept).
    pub headers: Vec<(String, String)>,
    /// The body, base64 in the store.
    #[serde(with = "base64_bytes")]
    pub body: Vec<u8>,
}

/// What a key's record says when a request with it begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// No record: this request is the first; a running record now holds the key.
    Started,
    /// The first request with this key and this body is still running.
    Running,
    /// The key was used with another request (method, path or body).
    OtherRequest,
    /// The first request finished: replay this.
    Done(StoredResponse),
}

/// One key's record, as stores keep it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The request's fingerprint (a hash of method, path, query and body).
    pub fingerprint: String,
    /// The response, once the first request finished.
    pub response: Option<StoredResponse>,
}

impl Record {
    /// What a request with `fingerprint` finds in this record.
    pub fn begin(self, fingerprint: &str) -> Begin {
        match self.response {
            _ if self.fingerprint != fingerprint => Begin::OtherRequest,
            None => Begin::Running,
            Some(response) => Begin::Done(response),
        }
    }
}

/// Where records live. Implementations must be safe to share across tasks.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + std::fmt::Debug {
    /// Atomically: if `key` has no record, a running one with `fingerprint`, living
    /// `running_ttl`, and [`Begin::Started`]; else what its record says.
    async fn begin(&self, key: &str, fingerprint: &str, running_ttl: Duration) -> Result<Begin, ReliabilityError>;
    /// Keeps `record` (now with its response) as `key`'s record for `ttl`.
    async fn finish(&self, key: &str, record: Record, ttl: Duration) -> Result<(), ReliabilityError>;
    /// Removes `key`'s record (the first request's answer is not kept).
    async fn forget(&self, key: &str) -> Result<(), ReliabilityError>;
}

/// The in-process store (bounded: expired records are pruned, and past the cap
/// the oldest goes).
#[derive(Debug)]
pub struct MemoryIdempotencyStore {
    records: Mutex<HashMap<String, (Record, Instant)>>,
    max_records: usize,
}

impl MemoryIdempotencyStore {
    /// A store of `max_records` records at most.
    pub fn new(max_records: usize) -> Self {
        Self { records: Mutex::new(HashMap::new()), max_records: max_records.max(1) }
    }
}

impl Default for MemoryIdempotencyStore {
    fn default() -> Self {
        Self::new(100_000)
    }
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotencyStore {
    async fn begin(&self, key: &str, fingerprint: &str, running_ttl: Duration) -> Result<Begin, ReliabilityError> {
        let now = Instant::now();
        let mut records = self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((record, expires)) = records.get(key) {
            if *expires > now {
                return Ok(record.clone().begin(fingerprint));
            }
        }
        if records.len() >= self.max_records {
            records.retain(|_, (_, expires)| *expires > now);
            if records.len() >= self.max_records {
                let oldest = records.iter().min_by_key(|(_, (_, expires))| *expires).map(|(k, _)| k.clone());
                oldest.map(|k| records.remove(&k));
            }
        }
        let record = Record { fingerprint: fingerprint.to_owned(), response: None };
        records.insert(key.to_owned(), (record, now + running_ttl));
        Ok(Begin::Started)
    }

    async fn finish(&self, key: &str, record: Record, ttl: Duration) -> Result<(), ReliabilityError> {
        let mut records = self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        records.insert(key.to_owned(), (record, Instant::now() + ttl));
        Ok(())
    }

    async fn forget(&self, key: &str) -> Result<(), ReliabilityError> {
        self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
        Ok(())
    }
}

mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}
