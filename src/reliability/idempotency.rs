//! Idempotency records: what the first request with an `Idempotency-Key` answered,
//! kept `idempotency_ttl_seconds` (24 h) for the same caller's repeats.
//!
//! A record is first *running* (the first request is being served; it lives a
//! short time, so that an instance that dies mid-request does not hold the key for a
//! day), then *done* with the response, or *too large* (the response was answered
//! but not kept: only its status is), or removed (a 5xx or a streamed response is
//! not kept: a repeat runs again). The records live behind [`IdempotencyStore`]:
//! [`MemoryIdempotencyStore`] in process, a Redis store when instances must share
//! them. Each store keeps at most `max_keys_per_caller` records per caller (the
//! caller's oldest goes first), so that one caller cannot fill it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::ReliabilityError;

/// Records a store keeps per caller unless told otherwise.
pub const DEFAULT_MAX_KEYS_PER_CALLER: usize = 1000;

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

impl StoredResponse {
    /// Bytes of headers and body, what the record size cap counts.
    pub fn size(&self) -> usize {
        self.body.len() + self.headers.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>()
    }
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
    /// The first request finished with this status, but its response was too large
    /// to keep: it cannot be replayed, and it is not run again.
    TooLarge(u16),
}

/// One key's record, as stores keep it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The request's fingerprint (a hash of method, path, query and body).
    pub fingerprint: String,
    /// The response, once the first request finished.
    pub response: Option<StoredResponse>,
    /// The status of a first answer too large to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub too_large: Option<u16>,
}

impl Record {
    /// A running record.
    pub fn running(fingerprint: &str) -> Self {
        Self { fingerprint: fingerprint.to_owned(), response: None, too_large: None }
    }

    /// A done record that replays `response`.
    pub fn done(fingerprint: String, response: StoredResponse) -> Self {
        Self { fingerprint, response: Some(response), too_large: None }
    }

    /// A done record of an answer with `status` too large to keep.
    pub fn too_large(fingerprint: String, status: u16) -> Self {
        Self { fingerprint, response: None, too_large: Some(status) }
    }

    /// What a request with `fingerprint` finds in this record.
    pub fn begin(self, fingerprint: &str) -> Begin {
        match (self.response, self.too_large) {
            _ if self.fingerprint != fingerprint => Begin::OtherRequest,
            (Some(response), _) => Begin::Done(response),
            (None, Some(status)) => Begin::TooLarge(status),
            (None, None) => Begin::Running,
        }
    }

    /// The record as a store keeps it (JSON).
    ///
    /// # Errors
    /// [`ReliabilityError::Store`] if it cannot be encoded.
    pub fn to_json(&self) -> Result<String, ReliabilityError> {
        serde_json::to_string(self).map_err(|e| ReliabilityError::Store(format!("idempotency record: {e}")))
    }

    /// A record a store kept.
    ///
    /// # Errors
    /// [`ReliabilityError::Store`] if `text` is not a record.
    pub fn from_json(text: &str) -> Result<Self, ReliabilityError> {
        serde_json::from_str(text).map_err(|e| ReliabilityError::Store(format!("stored idempotency record: {e}")))
    }

    /// Bytes this record holds (fingerprint and response).
    fn size(&self) -> usize {
        self.fingerprint.len() + self.response.as_ref().map_or(0, StoredResponse::size)
    }
}

/// Where records live, each under its caller (a user id or an address bucket)
/// and key. Implementations must be safe to share across tasks.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + std::fmt::Debug {
    /// Atomically: if `caller` has no record of `key`, a running one with
    /// `fingerprint`, living `running_ttl`, and [`Begin::Started`] (past the store's
    /// records per caller, the caller's oldest record goes); else what its record says.
    async fn begin(
        &self,
        caller: &str,
        key: &str,
        fingerprint: &str,
        running_ttl: Duration,
    ) -> Result<Begin, ReliabilityError>;
    /// Keeps `record` (now with its response) as the key's record for `ttl`, if its
    /// running record is still there (not evicted).
    async fn finish(&self, caller: &str, key: &str, record: Record, ttl: Duration) -> Result<(), ReliabilityError>;
    /// Removes the key's record (the first request's answer is not kept).
    async fn forget(&self, caller: &str, key: &str) -> Result<(), ReliabilityError>;
}

/// The in-process store, bounded three ways: records per caller, records in all,
/// and bytes in all (past each, the oldest record goes; expired records go first).
#[derive(Debug)]
pub struct MemoryIdempotencyStore {
    records: Mutex<Records>,
    max_records: usize,
    max_bytes: usize,
    max_per_caller: usize,
}

#[derive(Debug, Default)]
struct Records {
    /// By caller and key.
    entries: HashMap<(String, String), Entry>,
    /// Every record's (caller, key) by the order it began, oldest first.
    order: BTreeMap<u64, (String, String)>,
    /// Each caller's records by the order they began.
    callers: HashMap<String, BTreeMap<u64, String>>,
    bytes: usize,
    next: u64,
}

#[derive(Debug)]
struct Entry {
    record: Record,
    expires: Instant,
    seq: u64,
    bytes: usize,
}

impl Records {
    fn remove(&mut self, id: &(String, String)) {
        let Some(entry) = self.entries.remove(id) else { return };
        self.order.remove(&entry.seq);
        if let Some(keys) = self.callers.get_mut(&id.0) {
            keys.remove(&entry.seq);
            if keys.is_empty() {
                self.callers.remove(&id.0);
            }
        }
        self.bytes -= entry.bytes;
    }

    fn remove_oldest(&mut self) {
        if let Some(id) = self.order.first_key_value().map(|(_, id)| id.clone()) {
            self.remove(&id);
        }
    }

    /// Drops the oldest records while they have expired.
    fn prune(&mut self, now: Instant) {
        while let Some(id) = self.order.first_key_value().map(|(_, id)| id.clone()) {
            match self.entries.get(&id) {
                Some(e) if e.expires > now => return,
                _ => self.remove(&id),
            }
        }
    }
}

impl MemoryIdempotencyStore {
    /// A store of `max_records` records at most, 64 MiB of them at most and
    /// [`DEFAULT_MAX_KEYS_PER_CALLER`] per caller.
    pub fn new(max_records: usize) -> Self {
        Self {
            records: Mutex::new(Records::default()),
            max_records: max_records.max(1),
            max_bytes: 64 * 1024 * 1024,
            max_per_caller: DEFAULT_MAX_KEYS_PER_CALLER,
        }
    }

    /// At most `n` records per caller.
    #[must_use]
    pub fn with_max_keys_per_caller(mut self, n: usize) -> Self {
        self.max_per_caller = n.max(1);
        self
    }

    /// At most `n` bytes of records in all (a record larger than this is not kept).
    #[must_use]
    pub fn with_max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for MemoryIdempotencyStore {
    fn default() -> Self {
        Self::new(100_000)
    }
}

fn entry_size(caller: &str, key: &str, record: &Record) -> usize {
    caller.len() + key.len() + record.size()
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotencyStore {
    async fn begin(
        &self,
        caller: &str,
        key: &str,
        fingerprint: &str,
        running_ttl: Duration,
    ) -> Result<Begin, ReliabilityError> {
        let now = Instant::now();
        let id = (caller.to_owned(), key.to_owned());
        let mut r = self.lock();
        if let Some(entry) = r.entries.get(&id) {
            if entry.expires > now {
                return Ok(entry.record.clone().begin(fingerprint));
            }
            r.remove(&id);
        }
        r.prune(now);
        let record = Record::running(fingerprint);
        let bytes = entry_size(caller, key, &record);
        while let Some(oldest) = r
            .callers
            .get(caller)
            .filter(|keys| keys.len() >= self.max_per_caller)
            .and_then(|keys| keys.first_key_value().map(|(_, k)| (caller.to_owned(), k.clone())))
        {
            r.remove(&oldest);
        }
        while !r.entries.is_empty() && (r.entries.len() >= self.max_records || r.bytes + bytes > self.max_bytes) {
            r.remove_oldest();
        }
        let seq = r.next;
        r.next += 1;
        r.order.insert(seq, id.clone());
        r.callers.entry(id.0.clone()).or_default().insert(seq, id.1.clone());
        r.bytes += bytes;
        r.entries.insert(id, Entry { record, expires: now + running_ttl, seq, bytes });
        Ok(Begin::Started)
    }

    async fn finish(&self, caller: &str, key: &str, record: Record, ttl: Duration) -> Result<(), ReliabilityError> {
        let id = (caller.to_owned(), key.to_owned());
        let bytes = entry_size(caller, key, &record);
        let mut r = self.lock();
        let Some(old) = r.entries.get(&id).map(|e| e.bytes) else { return Ok(()) };
        if bytes > self.max_bytes {
            r.remove(&id);
            return Ok(());
        }
        // Room for the response: the oldest others go (this one is the newest
        // only if nothing began since, so it is skipped by its sequence number).
        let seq = r.entries[&id].seq;
        while r.bytes - old + bytes > self.max_bytes {
            let Some(other) = r.order.iter().find(|(s, _)| **s != seq).map(|(_, id)| id.clone()) else { break };
            r.remove(&other);
        }
        r.bytes = r.bytes - old + bytes;
        if let Some(entry) = r.entries.get_mut(&id) {
            *entry = Entry { record, expires: Instant::now() + ttl, seq, bytes };
        }
        Ok(())
    }

    async fn forget(&self, caller: &str, key: &str) -> Result<(), ReliabilityError> {
        self.lock().remove(&(caller.to_owned(), key.to_owned()));
        Ok(())
    }
}

mod base64_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&data_encoding::BASE64.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        data_encoding::BASE64.decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}
