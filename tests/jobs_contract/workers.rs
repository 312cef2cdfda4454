//! Workers at work: batches, running and stopping workers, wake-ups, expired leases,
//! concurrent workers, hand-backs and pruning.

use super::*;

pub(crate) async fn batched_enqueue_and_acks(e: &Engine) {
    let client = e.client(registry(), quick()).await;
    let jobs = (0..3).map(|i| ("echo".to_owned(), i, EnqueueOptions::new()));
    let ids: Vec<String> = client.enqueue_many(jobs).await.unwrap().into_iter().map(|j| j.job_id).collect();
    assert_eq!(ids.len(), 3);
    let t0 = now_ms();
    let q = client.backend();
    let old = q.claim("a", 3, Duration::from_millis(100), t0).await.unwrap();
    assert_eq!(old.iter().map(|c| c.job.id.clone()).collect::<Vec<_>>(), ids, "{}: claim order", e.name);
    let new = q.claim("b", 3, Duration::from_secs(30), t0 + 1_000).await.unwrap();
    assert_eq!(new.len(), 3, "{}: expired leases reclaimed", e.name);
    let (r0, r1) = (json!("stale"), json!("fresh"));
    let acks = [
        (ids[0].as_str(), old[0].token.as_str(), &r0),
        (ids[1].as_str(), new[1].token.as_str(), &r1),
        (ids[2].as_str(), new[2].token.as_str(), &r1),
    ];
    assert_eq!(q.complete_many(&acks, t0 + 1_100).await.unwrap(), [false, true, true], "{}", e.name);
    assert_eq!(client.status(&ids[0]).await.unwrap().unwrap().status, JobStatus::Running);
    let done = client.status(&ids[1]).await.unwrap().unwrap();
    assert_eq!((done.status, done.result), (JobStatus::Done, Some(json!("fresh"))));
}

pub(crate) async fn running_worker_drains_a_batch(e: &Engine) {
    let (client, worker) = e.worker(registry(), quick()).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until_stopped(async move { drop(stopped.await) }));
    // Enqueued while the worker runs (and may be idle): a wake-up or a poll finds them.
    let jobs = (0..40).map(|i| ("echo".to_owned(), i, EnqueueOptions::new()));
    let ids: Vec<String> = client.enqueue_many(jobs).await.unwrap().into_iter().map(|j| j.job_id).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut pending = ids.clone();
    while !pending.is_empty() && std::time::Instant::now() < deadline {
        let mut left = Vec::new();
        for id in pending {
            if client.status(&id).await.unwrap().unwrap().status != JobStatus::Done {
                left.push(id);
            }
        }
        pending = left;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    running.await.unwrap();
    assert!(pending.is_empty(), "{}: not done: {pending:?}", e.name);
}

/// Busy workers claim beyond their free slots; stopped half way, they leave every
/// job done or pending with its attempt uncounted, and no job runs twice.
pub(crate) async fn stopped_workers_hand_back_what_they_claimed_ahead(e: &Engine) {
    let runs: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    let half = Arc::new(tokio::sync::Notify::new());
    let total = 3_000u64;
    let (seen, reached) = (Arc::clone(&runs), Arc::clone(&half));
    let reg = JobRegistry::new().task("count", move |n: u64, _ctx: JobContext| {
        let mut seen = seen.lock().unwrap();
        *seen.entry(n).or_default() += 1;
        if seen.len() as u64 == total / 2 {
            reached.notify_waiters();
        }
        async move { Ok::<_, TaskError>(n) }
    });
    let (client, _) = e.worker(reg, quick()).await;
    let jobs = (0..total).map(|n| ("count".to_owned(), n, EnqueueOptions::new()));
    let ids: Vec<String> = client.enqueue_many(jobs).await.unwrap().into_iter().map(|j| j.job_id).collect();
    // A watch, not a Notify: a worker that has not polled its stop signal yet when the
    // test stops them still sees it (notify_waiters only reaches those waiting).
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let halfway = half.notified();
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let mut stopped = stopped.clone();
            let worker = Worker::new(client.clone(), e.db.db.clone());
            tokio::spawn(worker.run_until_stopped(async move {
                let _ = stopped.wait_for(|s| *s).await;
            }))
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(60), halfway).await.expect("half the jobs ran");
    stop.send(true).unwrap();
    for w in workers {
        tokio::time::timeout(Duration::from_secs(60), w).await.expect("a worker stops when told").unwrap();
    }
    for id in &ids {
        let job = client.status(id).await.unwrap().unwrap();
        match job.status {
            JobStatus::Done => assert_eq!(job.attempts, 1, "{}: {job:?}", e.name),
            JobStatus::Pending => assert_eq!(job.attempts, 0, "{}: {job:?}", e.name),
            _ => panic!("{}: left {job:?}", e.name),
        }
    }
    let w = Worker::new(client.clone(), e.db.db.clone()).concurrency(64);
    while w.run_once().await.unwrap().ran() > 0 {}
    let runs = runs.lock().unwrap();
    assert_eq!(runs.len() as u64, total, "{}", e.name);
    assert!(runs.values().all(|&n| n == 1), "{}: a job ran twice", e.name);
}

/// On engines that signal enqueues (Redis, PostgreSQL, SQLite through its file's
/// commits), an idle worker starts a new job long before its next poll; on MySQL it
/// has no wake-ups and starts it at its next poll.
pub(crate) async fn idle_worker_wakes_on_enqueue(e: &Engine) {
    let mut settings = quick();
    // Every engine wakes its idle workers: the poll never comes within the test.
    settings.poll_interval = Duration::from_secs(600);
    let (client, worker) = e.worker(registry(), settings).await;
    assert!(client.backend().wakeups().is_some(), "{}: wake-ups", e.name);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until_stopped(async move { drop(stopped.await) }));
    // Not a wait for the job: time for the worker to find the queue empty and idle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Two jobs, one after the other: the second comes after the worker went idle again.
    for n in 1..=2 {
        let job = client.enqueue("echo", n, EnqueueOptions::new()).await.unwrap();
        // Far below the poll interval, far above a wake-up's milliseconds.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while client.status(&job.job_id).await.unwrap().unwrap().status != JobStatus::Done {
            assert!(std::time::Instant::now() < deadline, "{}: the idle worker never started job {n}", e.name);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.send(()).unwrap();
    running.await.unwrap();
}

pub(crate) async fn expired_lease_is_claimable_again(e: &Engine) {
    let client = e.client(registry(), quick()).await;
    client.enqueue("echo", 1, EnqueueOptions::new()).await.unwrap();
    let t0 = now_ms();
    let q = client.backend();
    assert_eq!(q.claim("a", 1, Duration::from_secs(10), t0).await.unwrap().len(), 1);
    assert!(q.claim("b", 1, Duration::from_secs(10), t0 + 5_000).await.unwrap().is_empty(), "{}", e.name);
    let first = q.claim("a", 1, Duration::from_secs(10), t0).await;
    assert!(first.unwrap().is_empty());
    let c = q.claim("b", 1, Duration::from_secs(10), t0 + 9_000).await.unwrap();
    assert!(c.is_empty(), "lease still valid");
    // An extended lease is honoured.
    let again = q.claim("b", 1, Duration::from_secs(10), t0 + 11_000).await.unwrap();
    assert_eq!(again.len(), 1, "{}", e.name);
    assert!(q.extend(&again[0].job.id, &again[0].token, Duration::from_secs(60), t0 + 11_000).await.unwrap());
    assert!(q.claim("c", 1, Duration::from_secs(10), t0 + 30_000).await.unwrap().is_empty());
}

pub(crate) async fn concurrent_workers_run_each_job_once(e: &Engine) {
    let runs: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    let seen = Arc::clone(&runs);
    let reg = JobRegistry::new().task("count", move |n: u64, _ctx: JobContext| {
        let seen = Arc::clone(&seen);
        async move {
            *seen.lock().unwrap().entry(n).or_default() += 1;
            tokio::task::yield_now().await;
            Ok::<_, TaskError>(n)
        }
    });
    let mut settings = quick();
    settings.worker_count = 3;
    let (client, _) = e.worker(reg, settings).await;
    let total = 60u64;
    for n in 0..total {
        client.enqueue("count", n, EnqueueOptions::new()).await.unwrap();
    }
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let w = Worker::new(client.clone(), e.db.db.clone());
            tokio::spawn(async move {
                let mut done = 0;
                loop {
                    let r = w.run_once().await.expect("run_once");
                    assert!(r.lost.is_empty() && r.retried.is_empty() && r.dead.is_empty(), "{r:?}");
                    if r.ran() == 0 {
                        return done;
                    }
                    done += r.ran();
                }
            })
        })
        .collect();
    let mut done = 0;
    for w in workers {
        done += w.await.unwrap();
    }
    // A worker may stop early when another holds the last jobs; drain what is left.
    let w = Worker::new(client.clone(), e.db.db.clone());
    done += w.run_once().await.unwrap().ran();
    let runs = runs.lock().unwrap();
    assert_eq!(done as u64, total, "{}", e.name);
    assert_eq!(runs.len() as u64, total);
    assert!(runs.values().all(|&n| n == 1), "{}: a job ran twice: {runs:?}", e.name);
}

pub(crate) async fn release_hands_back_without_counting(e: &Engine) {
    let client = e.client(registry(), quick()).await;
    let job = client.enqueue("echo", 1, EnqueueOptions::new()).await.unwrap();
    let q = client.backend();
    let c = q.claim("a", 1, Duration::from_secs(30), now_ms()).await.unwrap().remove(0);
    assert!(q.release(&job.job_id, &c.token, now_ms()).await.unwrap(), "{}", e.name);
    let rec = client.status(&job.job_id).await.unwrap().unwrap();
    assert_eq!(rec.status, JobStatus::Pending);
    assert_eq!(rec.attempts, 0);
    assert_eq!(q.claim("b", 1, Duration::from_secs(30), now_ms()).await.unwrap().len(), 1);
}

pub(crate) async fn prune_removes_finished_jobs(e: &Engine) {
    let (client, worker) = e.worker(registry(), quick()).await;
    let done = client.enqueue("echo", 1, EnqueueOptions::new()).await.unwrap();
    worker.run_once().await.unwrap();
    let waiting = client.enqueue("echo", 2, EnqueueOptions::new().delay(Duration::from_secs(60))).await.unwrap();
    assert_eq!(client.backend().prune(now_ms() - 60_000).await.unwrap(), 0, "{}", e.name);
    assert_eq!(client.backend().prune(now_ms() + 1).await.unwrap(), 1);
    assert!(client.status(&done.job_id).await.unwrap().is_none());
    assert!(client.status(&waiting.job_id).await.unwrap().is_some());
}
