//! Claiming ahead: a busy [`Worker`](super::Worker) claims more jobs than it has free
//! slots and keeps the surplus in a local buffer, so that it pays one claim (one round
//! trip, one commit) per batch of jobs instead of per slot.
//!
//! The surplus follows the worker's pace: about as many jobs as it started over the
//! last [`WINDOW`] (at most [`MAX_SURPLUS`]), and only while the queue has a backlog
//! (its last claim got all it asked for), so an idle or slow worker claims only for
//! its free slots and leaves the rest of the queue to other workers, while one that
//! drains a backlog of short jobs claims them by the hundred.
//!
//! A buffered job is claimed like any other: it holds a lease under the claim's token,
//! and a worker that dies loses it to another worker once the lease expires. Nothing
//! extends a buffered job's lease, so a job that waited in the buffer for a third of
//! its lease is handed back unrun instead of started (the heartbeat of a started job
//! first renews the lease a third of a lease after the start); the buffer starts the
//! best job first, by priority, then `run_at`, then id, and is handed back when the
//! worker stops.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::backend::ClaimedJob;

/// The span over which the worker's pace is measured: the surplus is about what it
/// started over this long.
const WINDOW: Duration = Duration::from_millis(100);

/// Most jobs claimed beyond the free slots.
const MAX_SURPLUS: usize = 256;

/// The claimed jobs a worker has not started yet, best first.
#[derive(Debug)]
pub(crate) struct Ahead {
    ready: VecDeque<(Instant, ClaimedJob)>,
    /// The earliest claim among `ready`.
    oldest: Option<Instant>,
    /// How long a job may wait here before it is handed back: a third of the lease.
    max_wait: Duration,
    window: Duration,
    since: Instant,
    started: usize,
    surplus: usize,
    /// The last claim got every job it asked for: more are probably waiting.
    backlog: bool,
}

impl Ahead {
    /// An empty buffer for jobs claimed under `lease`.
    pub(crate) fn new(lease: Duration, now: Instant) -> Self {
        let max_wait = lease / 3;
        Self {
            ready: VecDeque::new(),
            oldest: None,
            max_wait,
            window: WINDOW.min(max_wait / 2),
            since: now,
            started: 0,
            surplus: 0,
            backlog: false,
        }
    }

    /// How many jobs to claim for `free` slots: none while the buffer can fill them,
    /// else what it lacks, plus the surplus the recent pace calls for while the queue
    /// has a backlog.
    pub(crate) fn claim_size(&mut self, free: usize, now: Instant) -> usize {
        if self.ready.len() >= free {
            return 0;
        }
        let elapsed = now.duration_since(self.since);
        if elapsed >= self.window {
            let pace = self.started as f64 * self.window.as_secs_f64() / elapsed.as_secs_f64();
            self.surplus = (pace as usize).min(MAX_SURPLUS);
            (self.started, self.since) = (0, now);
        }
        free - self.ready.len() + if self.backlog { self.surplus } else { 0 }
    }

    /// Adds the jobs of a claim for `asked` jobs made at `claimed_at`.
    pub(crate) fn add(&mut self, jobs: Vec<ClaimedJob>, asked: usize, claimed_at: Instant) {
        self.backlog = jobs.len() >= asked;
        if jobs.is_empty() {
            return;
        }
        self.ready.extend(jobs.into_iter().map(|c| (claimed_at, c)));
        self.ready.make_contiguous().sort_by(|(_, a), (_, b)| {
            (a.job.priority, a.job.run_at, &a.job.id).cmp(&(b.job.priority, b.job.run_at, &b.job.id))
        });
        self.oldest = Some(self.oldest.map_or(claimed_at, |o| o.min(claimed_at)));
    }

    /// The best job to start now.
    pub(crate) fn next(&mut self) -> Option<ClaimedJob> {
        let (_, job) = self.ready.pop_front()?;
        self.started += 1;
        if self.ready.is_empty() {
            self.oldest = None;
        }
        Some(job)
    }

    /// Takes out the jobs that waited too long to be started safely: to hand back.
    pub(crate) fn stale(&mut self, now: Instant) -> Vec<ClaimedJob> {
        match self.oldest {
            Some(oldest) if now.duration_since(oldest) >= self.max_wait => {}
            _ => return Vec::new(),
        }
        let max_wait = self.max_wait;
        let (fresh, stale): (VecDeque<_>, VecDeque<_>) =
            std::mem::take(&mut self.ready).into_iter().partition(|(at, _)| now.duration_since(*at) < max_wait);
        self.ready = fresh;
        self.oldest = self.ready.iter().map(|(at, _)| *at).min();
        // The pace overshot: start again from the free slots alone.
        self.surplus = 0;
        stale.into_iter().map(|(_, c)| c).collect()
    }

    /// Takes out every job: the worker is stopping.
    pub(crate) fn drain(&mut self) -> Vec<ClaimedJob> {
        self.oldest = None;
        self.ready.drain(..).map(|(_, c)| c).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{JobRecord, JobStatus, Priority};

    fn job(id: &str, priority: Priority, run_at: i64) -> ClaimedJob {
        let job = JobRecord {
            id: id.to_owned(),
            task: "t".to_owned(),
            payload: serde_json::Value::Null,
            status: JobStatus::Running,
            priority,
            attempts: 1,
            max_attempts: 3,
            timeout_ms: 1_000,
            user_id: None,
            run_at,
            result: None,
            error: None,
            created_at: 0,
            updated_at: 0,
            trace_parent: None,
        };
        ClaimedJob { job, token: "tok".to_owned() }
    }

    fn ids(jobs: &[ClaimedJob]) -> Vec<&str> {
        jobs.iter().map(|c| c.job.id.as_str()).collect()
    }

    #[test]
    fn claims_for_free_slots_until_a_pace_is_measured() {
        let t0 = Instant::now();
        let mut ahead = Ahead::new(Duration::from_secs(30), t0);
        assert_eq!(ahead.claim_size(4, t0), 4);
        ahead.add((0..4).map(|i| job(&i.to_string(), Priority::Normal, i)).collect(), 4, t0);
        assert_eq!(ahead.claim_size(4, t0), 0, "the buffer fills the free slots");
        while ahead.next().is_some() {}
        // 4 jobs started over 200 ms: 2 per 100 ms window.
        assert_eq!(ahead.claim_size(4, t0 + Duration::from_millis(200)), 4 + 2);
        // Idle for a second: back to the free slots.
        assert_eq!(ahead.claim_size(4, t0 + Duration::from_millis(1_200)), 4);
    }

    #[test]
    fn claims_no_surplus_once_the_queue_ran_short() {
        let t0 = Instant::now();
        let mut ahead = Ahead::new(Duration::from_secs(30), t0);
        ahead.add((0..8).map(|i| job(&i.to_string(), Priority::Normal, i)).collect(), 8, t0);
        while ahead.next().is_some() {}
        let t1 = t0 + WINDOW;
        assert_eq!(ahead.claim_size(4, t1), 4 + 8);
        ahead.add(vec![job("last", Priority::Normal, 9)], 12, t1);
        while ahead.next().is_some() {}
        assert_eq!(ahead.claim_size(4, t1), 4, "the last claim emptied the queue");
    }

    #[test]
    fn surplus_is_capped() {
        let t0 = Instant::now();
        let mut ahead = Ahead::new(Duration::from_secs(30), t0);
        ahead.add((0..1_000).map(|i| job(&format!("{i:04}"), Priority::Normal, 0)).collect(), 1_000, t0);
        while ahead.next().is_some() {}
        assert_eq!(ahead.claim_size(4, t0 + WINDOW), 4 + MAX_SURPLUS);
    }

    #[test]
    fn starts_the_best_job_first() {
        let t0 = Instant::now();
        let mut ahead = Ahead::new(Duration::from_secs(30), t0);
        ahead.add(vec![job("b", Priority::Normal, 5), job("c", Priority::Low, 1)], 2, t0);
        ahead.add(vec![job("a", Priority::Normal, 5), job("d", Priority::High, 9)], 2, t0);
        let order: Vec<String> = std::iter::from_fn(|| ahead.next()).map(|c| c.job.id).collect();
        assert_eq!(order, ["d", "a", "b", "c"]);
    }

    #[test]
    fn jobs_held_a_third_of_their_lease_are_handed_back() {
        let t0 = Instant::now();
        let mut ahead = Ahead::new(Duration::from_secs(3), t0);
        ahead.add(vec![job("old", Priority::Normal, 1)], 1, t0);
        let t1 = t0 + Duration::from_millis(500);
        ahead.add(vec![job("new", Priority::Normal, 2)], 1, t1);
        assert!(ahead.stale(t0 + Duration::from_millis(999)).is_empty());
        assert_eq!(ids(&ahead.stale(t0 + Duration::from_secs(1))), ["old"]);
        assert_eq!(ids(&ahead.drain()), ["new"]);
        assert!(ahead.next().is_none());
    }
}
