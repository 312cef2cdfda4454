//! One job's lifecycle: enqueue, claim, order, delay, retry, dead, timeout, unknown
//! tasks, unique keys, stale acks.

use super::*;

pub(crate) async fn enqueue_claim_complete(e: &Engine) {
    let (client, worker) = e.worker(registry(), quick()).await;
    let payload = json!({"n": 1, "text": "naïve 日本語 🚀"});
    let job = client.enqueue("echo", payload.clone(), EnqueueOptions::new().user_id("u1")).await.unwrap();
    let pending = client.status(&job.job_id).await.unwrap().expect("stored");
    assert_eq!(pending.status, JobStatus::Pending);
    assert_eq!(pending.attempts, 0);
    assert_eq!(pending.user_id.as_deref(), Some("u1"));
    let report = worker.run_once().await.unwrap();
    assert_eq!(report.completed, vec![job.job_id.clone()], "{}", e.name);
    let done = client.status(&job.job_id).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Done);
    assert_eq!(done.attempts, 1);
    assert_eq!(done.result, Some(json!({"echo": payload, "attempt": 1, "user": "u1"})));
    assert_eq!(worker.run_once().await.unwrap().ran(), 0, "nothing left");
    assert!(client.status("no-such-job").await.unwrap().is_none());
}

pub(crate) async fn priority_order(e: &Engine) {
    let client = e.client(registry(), quick()).await;
    let low = client.enqueue("echo", 1, EnqueueOptions::new().priority(Priority::Low)).await.unwrap();
    let normal = client.enqueue("echo", 2, EnqueueOptions::new()).await.unwrap();
    let high = client.enqueue("echo", 3, EnqueueOptions::new().priority(Priority::High)).await.unwrap();
    let mut order = Vec::new();
    for _ in 0..3 {
        let c = client.backend().claim("w", 1, Duration::from_secs(30), now_ms()).await.unwrap();
        order.push(c[0].job.id.clone());
    }
    assert_eq!(order, vec![high.job_id, normal.job_id, low.job_id], "{}", e.name);
}

pub(crate) async fn delayed_jobs_wait(e: &Engine) {
    let (client, worker) = e.worker(registry(), quick()).await;
    let later = client.enqueue("echo", 1, EnqueueOptions::new().delay(Duration::from_secs(3600))).await.unwrap();
    let past = chrono::Utc::now() - chrono::Duration::seconds(5);
    let due = client.enqueue("echo", 2, EnqueueOptions::new().run_at(past)).await.unwrap();
    let report = worker.run_once().await.unwrap();
    assert_eq!(report.completed, vec![due.job_id], "{}", e.name);
    assert_eq!(client.status(&later.job_id).await.unwrap().unwrap().status, JobStatus::Pending);
    let in_two_hours = now_ms() + 2 * 3600 * 1000;
    let c = client.backend().claim("w", 5, Duration::from_secs(30), in_two_hours).await.unwrap();
    assert_eq!(c.len(), 1, "due once its time has come");
    assert_eq!(c[0].job.id, later.job_id);
}

pub(crate) async fn retry_with_backoff(e: &Engine) {
    let mut settings = quick();
    settings.backoff_base = Duration::from_secs(600);
    let (client, worker) = e.worker(registry(), settings).await;
    let job = client.enqueue("boom", json!({}), EnqueueOptions::new().max_attempts(3)).await.unwrap();
    let before = now_ms();
    let report = worker.run_once().await.unwrap();
    assert_eq!(report.retried, vec![job.job_id.clone()], "{}", e.name);
    let rec = client.status(&job.job_id).await.unwrap().unwrap();
    assert_eq!(rec.status, JobStatus::Retry);
    assert_eq!(rec.attempts, 1);
    assert_eq!(rec.error.as_deref(), Some("boom"));
    assert!(rec.run_at >= before + 600_000 && rec.run_at <= now_ms() + 750_000, "backoff {}", rec.run_at - before);
    assert_eq!(worker.run_once().await.unwrap().ran(), 0, "not before its backoff");
    let later = client.backend().claim("w", 1, Duration::from_secs(30), rec.run_at + 1).await.unwrap();
    assert_eq!(later.len(), 1, "{}", e.name);
    assert_eq!(later[0].job.attempts, 2);
}

pub(crate) async fn dead_after_max_attempts(e: &Engine) {
    let (client, worker) = e.worker(registry(), quick()).await;
    let job = client.enqueue("boom", json!({}), EnqueueOptions::new().max_attempts(3)).await.unwrap();
    assert_eq!(worker.run_once().await.unwrap().retried.len(), 1);
    assert_eq!(worker.run_once().await.unwrap().retried.len(), 1);
    assert_eq!(worker.run_once().await.unwrap().dead, vec![job.job_id.clone()], "{}", e.name);
    let rec = client.status(&job.job_id).await.unwrap().unwrap();
    assert_eq!(rec.status, JobStatus::Dead);
    assert_eq!(rec.attempts, 3);
    assert_eq!(rec.error.as_deref(), Some("boom"));
    assert_eq!(worker.run_once().await.unwrap().ran(), 0);
}

pub(crate) async fn timeout_is_a_failure(e: &Engine) {
    let (client, worker) = e.worker(registry(), quick()).await;
    let opts = EnqueueOptions::new().timeout(Duration::from_millis(50)).max_attempts(1);
    let job = client.enqueue("slow", json!({}), opts).await.unwrap();
    let report = worker.run_once().await.unwrap();
    assert_eq!(report.dead, vec![job.job_id.clone()], "{}", e.name);
    let rec = client.status(&job.job_id).await.unwrap().unwrap();
    assert!(rec.error.unwrap().contains("timed out"));
}

pub(crate) async fn unknown_task_is_refused(e: &Engine) {
    let client = e.client(registry(), quick()).await;
    let err = client.enqueue("no_such_task", json!({}), EnqueueOptions::new()).await.unwrap_err();
    assert!(matches!(err, JobError::UnknownTask(ref t) if t == "no_such_task"), "{err:?}");
    let api = ApiError::from(err);
    assert_eq!(api.status().as_u16(), 422);
    assert_eq!(api.code(), "unknown_task");
    let many = client
        .enqueue_many(vec![
            ("echo".to_owned(), json!(1), EnqueueOptions::new()),
            ("nope".to_owned(), json!(2), EnqueueOptions::new()),
        ])
        .await;
    assert!(many.is_err());
    let c = client.backend().claim("w", 10, Duration::from_secs(30), now_ms()).await.unwrap();
    assert!(c.is_empty(), "nothing enqueued when one name is unknown");
}

pub(crate) async fn unique_key_dedupes_unfinished_jobs(e: &Engine) {
    let (client, worker) = e.worker(registry(), quick()).await;
    let a = client.enqueue("echo", 1, EnqueueOptions::new().unique_key("order-7")).await.unwrap();
    let b = client.enqueue("echo", 2, EnqueueOptions::new().unique_key("order-7")).await.unwrap();
    assert_eq!(a, b, "{}", e.name);
    assert_eq!(worker.run_once().await.unwrap().completed, vec![a.job_id.clone()]);
    let c = client.enqueue("echo", 3, EnqueueOptions::new().unique_key("order-7")).await.unwrap();
    assert_ne!(a, c, "a finished job frees its key");
}

pub(crate) async fn stale_ack_is_refused(e: &Engine) {
    let client = e.client(registry(), quick()).await;
    let job = client.enqueue("echo", 1, EnqueueOptions::new()).await.unwrap();
    let t0 = now_ms();
    let old = client.backend().claim("a", 1, Duration::from_millis(100), t0).await.unwrap().remove(0);
    let b = client.backend().claim("b", 1, Duration::from_secs(30), t0 + 1_000).await.unwrap();
    assert_eq!(b.len(), 1, "{}: expired lease reclaimed", e.name);
    let new = &b[0];
    assert_eq!(new.job.id, job.job_id);
    assert_ne!(new.token, old.token);
    let q = client.backend();
    assert!(!q.complete(&job.job_id, &old.token, &json!("stale"), t0 + 1_100).await.unwrap());
    assert!(!q.fail(&job.job_id, &old.token, "x", app_kernel::jobs::FailOutcome::Dead, t0 + 1_100).await.unwrap());
    assert!(!q.extend(&job.job_id, &old.token, Duration::from_secs(30), t0 + 1_100).await.unwrap());
    assert!(!q.release(&job.job_id, &old.token, t0 + 1_100).await.unwrap());
    assert!(q.complete(&job.job_id, &new.token, &json!("fresh"), t0 + 1_200).await.unwrap());
    let rec = client.status(&job.job_id).await.unwrap().unwrap();
    assert_eq!(rec.result, Some(json!("fresh")));
    assert_eq!(rec.attempts, 2);
}
