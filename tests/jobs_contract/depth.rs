//! The queue depth: unfinished jobs by where they wait (due, scheduled, running), the
//! same on every engine; finished jobs are not counted.

use app_kernel::jobs::{FailOutcome, QueueDepth};

use super::*;

fn depth(due: u64, scheduled: u64, running: u64) -> QueueDepth {
    QueueDepth { due, scheduled, running }
}

pub(crate) async fn queue_depth_counts_unfinished_jobs(e: &Engine) {
    let client = e.client(registry(), quick()).await;
    let q = client.backend();
    assert_eq!(q.queue_depth(now_ms()).await.unwrap(), depth(0, 0, 0), "{}", e.name);
    let first = client.enqueue("echo", 1, EnqueueOptions::new()).await.unwrap();
    client.enqueue("echo", 2, EnqueueOptions::new()).await.unwrap();
    client.enqueue("boom", 3, EnqueueOptions::new()).await.unwrap();
    client.enqueue("echo", 4, EnqueueOptions::new().delay(Duration::from_secs(3600))).await.unwrap();
    assert_eq!(q.queue_depth(now_ms()).await.unwrap(), depth(3, 1, 0), "{}", e.name);

    let lease = Duration::from_secs(30);
    let one = q.claim("w", 1, lease, now_ms()).await.unwrap();
    assert_eq!(one[0].job.id, first.job_id);
    assert_eq!(q.queue_depth(now_ms()).await.unwrap(), depth(2, 1, 1), "{}", e.name);
    assert!(q.complete(&one[0].job.id, &one[0].token, &json!("ok"), now_ms()).await.unwrap());
    assert_eq!(q.queue_depth(now_ms()).await.unwrap(), depth(2, 1, 0), "done jobs are not counted ({})", e.name);

    let two = q.claim("w", 5, lease, now_ms()).await.unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!(q.queue_depth(now_ms()).await.unwrap(), depth(0, 1, 2), "{}", e.name);
    let retry_at = now_ms() + 600_000;
    assert!(q.fail(&two[0].job.id, &two[0].token, "e", FailOutcome::RetryAt(retry_at), now_ms()).await.unwrap());
    assert!(q.fail(&two[1].job.id, &two[1].token, "e", FailOutcome::Dead, now_ms()).await.unwrap());
    assert_eq!(q.queue_depth(now_ms()).await.unwrap(), depth(0, 2, 0), "a retry waits, the dead is gone ({})", e.name);
    let later = now_ms() + 2 * 3600 * 1000;
    assert_eq!(q.queue_depth(later).await.unwrap(), depth(2, 0, 0), "both due in two hours ({})", e.name);
}
