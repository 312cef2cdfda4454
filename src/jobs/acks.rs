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
//!
//! An ack the store fails to write (its database restarting, Redis down) is written
//! again ([`persist`]) for up to a lease after the job ended, so an outage shorter than
//! that costs neither a second run of a finished job nor a lease's wait for a failed
//! one's retry.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::backend::{now_ms, QueueBackend};
use super::JobError;

/// Runs `write` (an ack: complete, fail) and runs it again while the store fails, with
/// the kernel's retry pauses (100 ms doubling to 2 s, `crate::retry`), for at most
/// `lease` from now; then gives its error. Safe to repeat: an ack matches on the claim's
/// token, so one that lands after another worker took the job over is refused
/// (`Ok(false)`), never applied.
pub(crate) async fn persist<T, F, Fut>(lease: Duration, write: F) -> Result<T, JobError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, JobError>>,
{
    crate::retry::until_within(lease, write, |e, next| {
        if let Some(pause) = next {
            tracing::debug!(error = %e, retry_in_ms = pause.as_millis() as u64, "ack failed; writing it again");
        }
    })
    .await
}

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
/// A batch the store fails to write is written again for up to `lease` ([`persist`]).
pub(crate) fn spawn(
    backend: Arc<dyn QueueBackend>,
    capacity: usize,
    lease: Duration,
) -> (mpsc::Sender<Completion>, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Completion>(capacity.max(1));
    let handle = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        while rx.recv_many(&mut batch, BATCH).await > 0 {
            let acks: Vec<(&str, &str, &Value)> =
                batch.iter().map(|c| (c.id.as_str(), c.token.as_str(), &c.result)).collect();
            match persist(lease, || backend.complete_many(&acks, now_ms())).await {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn an_ack_is_written_again_until_the_store_answers() {
        let tries = AtomicU32::new(0);
        let written = persist(Duration::from_secs(30), || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(JobError::Unavailable("down".into())),
                _ => Ok(true),
            }
        })
        .await;
        assert_eq!((written.ok(), tries.load(Ordering::SeqCst)), (Some(true), 3));
    }

    #[tokio::test]
    async fn an_ack_is_given_up_when_its_lease_would_have_ended() {
        let tries = AtomicU32::new(0);
        let written = persist(Duration::ZERO, || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err::<bool, _>(JobError::Unavailable("down".into()))
        })
        .await;
        assert!(matches!(written, Err(JobError::Unavailable(_))), "{written:?}");
        assert_eq!(tries.load(Ordering::SeqCst), 1, "no pause ends within a lease of zero");
    }
}
