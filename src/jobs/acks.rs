//! Batched completion acks for [`Worker::run_until_stopped`](super::Worker).
//!
//! A job that succeeded hands its result to its worker's acker task and frees its slot
//! for the next claim; the acker marks every result that is waiting done in one call
//! ([`QueueBackend::complete_many`]: one statement on PostgreSQL, one transaction on
//! SQLite and MySQL, one script on Redis), so a busy worker pays one commit per batch
//! instead of one per job. The channel holds about one batch (`BATCH`) beyond the
//! worker's slots, so results pile up while a batch is being written and the next
//! batch is as large; it is bounded: an acker that falls behind holds the slots back
//! instead of letting results wait while their leases run out. Each ack still matches
//! on (id, token), so a result whose lease passed to another worker is refused; a
//! worker that dies before its acks are written loses no job, they run again once
//! their leases expire.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::backend::{now_ms, QueueBackend};

/// A successful job's result, waiting to be acked.
#[derive(Debug)]
pub(crate) struct Completion {
    pub(crate) id: String,
    pub(crate) token: String,
    pub(crate) result: Value,
}

/// Most acks written in one call.
pub(crate) const BATCH: usize = 256;

/// Starts an acker; it ends once every sender is dropped and the queue is written.
pub(crate) fn spawn(backend: Arc<dyn QueueBackend>, capacity: usize) -> (mpsc::Sender<Completion>, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Completion>(capacity.max(1));
    let handle = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        while rx.recv_many(&mut batch, BATCH).await > 0 {
            let acks: Vec<(&str, &str, &Value)> =
                batch.iter().map(|c| (c.id.as_str(), c.token.as_str(), &c.result)).collect();
            match backend.complete_many(&acks, now_ms()).await {
                Ok(done) => {
                    for (c, ok) in batch.iter().zip(done) {
                        if !ok {
                            tracing::warn!(job_id = %c.id, "ack refused: the lease passed to another worker");
                        }
                    }
                }
                Err(e) => {
                    for c in &batch {
                        tracing::warn!(job_id = %c.id, error = %e, "ack failed; the job will run again after its lease");
                    }
                }
            }
            drop(acks);
            batch.clear();
        }
    });
    (tx, handle)
}
