//! The admins' jobs view: list (filters, pages), retry, cancel, purge of cancelled
//! jobs, and races with workers: a job a worker holds is never changed.

use std::collections::HashSet;

use app_kernel::jobs::{JobChange, JobFilter, JobPage};

use super::*;

async fn page(client: &JobClient, filter: JobFilter) -> JobPage {
    client.backend().list_jobs(&filter).await.unwrap()
}

/// Every job matching `filter`, following the pages.
async fn all_pages(client: &JobClient, mut filter: JobFilter) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..100 {
        let p = page(client, filter.clone()).await;
        ids.extend(p.jobs.iter().map(|j| j.id.clone()));
        match p.next {
            Some(next) => filter.before = Some(next),
            None => return ids,
        }
    }
    panic!("more than 100 pages");
}

pub(crate) async fn admin_list_filters_and_pages(e: &Engine) {
    let (client, worker) = e.worker(registry(), quick()).await;
    let mut echoes = Vec::new();
    for n in 0..5 {
        echoes.push(client.enqueue("echo", json!({"n": n}), EnqueueOptions::new()).await.unwrap().job_id);
    }
    let boom = client.enqueue("boom", json!({}), EnqueueOptions::new().max_attempts(1)).await.unwrap().job_id;
    let newest: Vec<String> = std::iter::once(boom.clone()).chain(echoes.iter().rev().cloned()).collect();
    let first = page(&client, JobFilter { limit: 4, ..JobFilter::default() }).await;
    assert_eq!(
        first.jobs.iter().map(|j| &j.id).collect::<Vec<_>>(),
        newest[..4].iter().collect::<Vec<_>>(),
        "{}",
        e.name
    );
    assert_eq!(first.jobs[1].payload, json!({"n": 4}), "{}: every field is read", e.name);
    assert!(first.next.is_some(), "{}", e.name);
    assert_eq!(all_pages(&client, JobFilter { limit: 4, ..JobFilter::default() }).await, newest, "{}", e.name);
    assert_eq!(all_pages(&client, JobFilter { limit: 1, ..JobFilter::default() }).await, newest, "{}", e.name);
    let whole = page(&client, JobFilter { limit: 6, ..JobFilter::default() }).await;
    assert_eq!(whole.jobs.len(), 6);
    assert_eq!(whole.next, None, "{}: no next page after the last job", e.name);
    let by_task = JobFilter { task: Some("boom".into()), limit: 10, ..JobFilter::default() };
    assert_eq!(all_pages(&client, by_task).await, vec![boom.clone()], "{}", e.name);
    worker.run_once().await.unwrap();
    let dead = JobFilter { status: Some(JobStatus::Dead), limit: 10, ..JobFilter::default() };
    let listed = page(&client, dead).await;
    assert_eq!(listed.jobs.len(), 1, "{}", e.name);
    assert_eq!(listed.jobs[0].error.as_deref(), Some("boom"));
    let done = JobFilter { status: Some(JobStatus::Done), task: Some("echo".into()), limit: 2, ..JobFilter::default() };
    assert_eq!(all_pages(&client, done).await, newest[1..].to_vec(), "{}", e.name);
    let none = JobFilter { status: Some(JobStatus::Pending), limit: 10, ..JobFilter::default() };
    assert!(all_pages(&client, none).await.is_empty(), "{}", e.name);
}

pub(crate) async fn admin_retry_and_cancel(e: &Engine) {
    let (client, worker) = e.worker(registry(), quick()).await;
    let q = client.backend();
    let job = client.enqueue("boom", json!({}), EnqueueOptions::new().max_attempts(2)).await.unwrap().job_id;
    assert_eq!(q.retry_job(&job, now_ms()).await.unwrap(), JobChange::Refused(JobStatus::Pending), "{}", e.name);
    assert_eq!(worker.run_once().await.unwrap().retried, vec![job.clone()]);
    assert_eq!(worker.run_once().await.unwrap().dead, vec![job.clone()], "{}", e.name);
    let before = now_ms();
    assert_eq!(q.retry_job(&job, before).await.unwrap(), JobChange::Changed, "{}", e.name);
    let rec = client.status(&job).await.unwrap().unwrap();
    assert_eq!(rec.status, JobStatus::Pending, "{}", e.name);
    assert_eq!((rec.attempts, rec.max_attempts), (2, 3), "{}: one attempt more", e.name);
    assert!(rec.run_at <= now_ms());
    assert_eq!(rec.error.as_deref(), Some("boom"), "{}: the last error stays", e.name);
    assert_eq!(worker.run_once().await.unwrap().dead, vec![job.clone()], "{}: it ran again", e.name);
    assert_eq!(client.status(&job).await.unwrap().unwrap().attempts, 3);

    // A job waiting for its backoff is due at once.
    let mut slow_backoff = quick();
    slow_backoff.backoff_base = Duration::from_secs(600);
    let (client2, worker2) = e.worker(registry(), slow_backoff).await;
    let waiting = client2.enqueue("boom", json!({}), EnqueueOptions::new().max_attempts(5)).await.unwrap().job_id;
    assert_eq!(worker2.run_once().await.unwrap().retried, vec![waiting.clone()]);
    assert_eq!(q.retry_job(&waiting, now_ms()).await.unwrap(), JobChange::Changed, "{}", e.name);
    let claimed = q.claim("w", 5, Duration::from_secs(30), now_ms()).await.unwrap();
    assert_eq!(claimed.iter().map(|c| &c.job.id).collect::<Vec<_>>(), vec![&waiting], "{}", e.name);

    // Cancel: a pending job never runs, its unique key is free again, purge deletes it.
    let pending = client.enqueue("echo", 1, EnqueueOptions::new().unique_key("k1")).await.unwrap().job_id;
    assert_eq!(q.cancel_job(&pending, now_ms()).await.unwrap(), JobChange::Changed, "{}", e.name);
    assert_eq!(client.status(&pending).await.unwrap().unwrap().status, JobStatus::Cancelled);
    assert_eq!(q.cancel_job(&pending, now_ms()).await.unwrap(), JobChange::Refused(JobStatus::Cancelled));
    assert_eq!(q.retry_job(&pending, now_ms()).await.unwrap(), JobChange::Refused(JobStatus::Cancelled));
    assert_eq!(worker.run_once().await.unwrap().ran(), 0, "{}: a cancelled job never runs", e.name);
    let again = client.enqueue("echo", 2, EnqueueOptions::new().unique_key("k1")).await.unwrap().job_id;
    assert_ne!(again, pending, "{}: the key is free", e.name);
    assert_eq!(q.cancel_job("no-such-job", now_ms()).await.unwrap(), JobChange::NotFound);
    assert_eq!(q.retry_job("no-such-job", now_ms()).await.unwrap(), JobChange::NotFound);
    let delayed = client.enqueue("echo", 3, EnqueueOptions::new().delay(Duration::from_secs(3600))).await.unwrap();
    assert_eq!(q.cancel_job(&delayed.job_id, now_ms()).await.unwrap(), JobChange::Changed);
    let later = q.claim("w", 5, Duration::from_secs(30), now_ms() + 7_200_000).await.unwrap();
    assert!(later.iter().all(|c| c.job.id != delayed.job_id), "{}: not even once due", e.name);
    assert!(q.prune(now_ms() + 1).await.unwrap() >= 2, "{}", e.name);
    assert!(client.status(&pending).await.unwrap().is_none(), "{}: purged", e.name);
    let listed = all_pages(&client, JobFilter { limit: 50, ..JobFilter::default() }).await;
    assert!(!listed.contains(&pending), "{}: a purged job is not listed", e.name);
}

pub(crate) async fn admin_changes_never_touch_a_claimed_job(e: &Engine) {
    let client = e.client(registry(), quick()).await;
    let q = client.backend().clone();
    let job = client.enqueue("echo", 1, EnqueueOptions::new()).await.unwrap().job_id;
    let held = q.claim("w", 1, Duration::from_secs(30), now_ms()).await.unwrap().remove(0);
    assert_eq!(q.cancel_job(&job, now_ms()).await.unwrap(), JobChange::Refused(JobStatus::Running), "{}", e.name);
    assert_eq!(q.retry_job(&job, now_ms()).await.unwrap(), JobChange::Refused(JobStatus::Running), "{}", e.name);
    assert!(q.complete(&job, &held.token, &json!("ok"), now_ms()).await.unwrap(), "{}: the worker's ack holds", e.name);
    assert_eq!(q.retry_job(&job, now_ms()).await.unwrap(), JobChange::Refused(JobStatus::Done));

    // Claims and cancels race over 40 jobs: each job is either claimed or cancelled.
    let mut ids = Vec::new();
    for n in 0..40 {
        ids.push(client.enqueue("echo", n, EnqueueOptions::new()).await.unwrap().job_id);
    }
    let claimers: Vec<_> = (0..4)
        .map(|w| {
            let q = q.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..20 {
                    let c = q.claim(&format!("w{w}"), 2, Duration::from_secs(30), now_ms()).await.unwrap();
                    got.extend(c.into_iter().map(|c| c.job.id));
                }
                got
            })
        })
        .collect();
    let cancels: Vec<_> = ids
        .iter()
        .rev()
        .cloned()
        .map(|id| {
            let q = q.clone();
            tokio::spawn(async move { (id.clone(), q.cancel_job(&id, now_ms()).await.unwrap()) })
        })
        .collect();
    let mut claimed = HashSet::new();
    for c in claimers {
        for id in c.await.unwrap() {
            assert!(claimed.insert(id), "{}: a job claimed twice", e.name);
        }
    }
    let mut cancelled = HashSet::new();
    for c in cancels {
        let (id, change) = c.await.unwrap();
        match change {
            JobChange::Changed => assert!(cancelled.insert(id)),
            JobChange::Refused(JobStatus::Running) => assert!(claimed.contains(&id), "{}: {id}", e.name),
            other => panic!("{}: {id}: {other:?}", e.name),
        }
    }
    assert!(claimed.is_disjoint(&cancelled), "{}: a job both claimed and cancelled", e.name);
    for id in &ids {
        let status = client.status(id).await.unwrap().unwrap().status;
        let expected = if cancelled.contains(id) { JobStatus::Cancelled } else { JobStatus::Running };
        assert_eq!(status, expected, "{}: {id}", e.name);
        if !cancelled.contains(id) {
            assert!(claimed.contains(id), "{}: {id} neither claimed nor cancelled", e.name);
        }
    }
}

/// A filter that matches one old job behind thousands of others still reaches it by
/// following the pages (on Redis a call examines a bounded number of ids, so pages
/// may come back short or empty before it).
pub(crate) async fn admin_sparse_filter_reaches_old_jobs(e: &Engine) {
    let client = e.client(registry(), quick()).await;
    let old = client.enqueue("boom", json!({}), EnqueueOptions::new()).await.unwrap().job_id;
    let many: Vec<_> = (0..2500).map(|n| ("echo".to_owned(), json!(n), EnqueueOptions::new())).collect();
    client.enqueue_many(many).await.unwrap();
    let filter = JobFilter { task: Some("boom".into()), limit: 10, ..JobFilter::default() };
    assert_eq!(all_pages(&client, filter).await, vec![old.clone()], "{}", e.name);
    let pending = JobFilter { status: Some(JobStatus::Pending), limit: 200, ..JobFilter::default() };
    let every = all_pages(&client, pending).await;
    assert_eq!(every.len(), 2501, "{}", e.name);
    assert_eq!(every.last(), Some(&old), "{}: oldest last", e.name);
    assert_eq!(every.iter().collect::<HashSet<_>>().len(), 2501, "{}: no job twice", e.name);
}
