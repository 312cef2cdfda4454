//! The fleet's jobs: the `order_service` example (an orders API, whose create
//! enqueues `process_order`) and two of its `worker` processes, on the scenario's
//! database (and, with `REDIS_URL`, its Redis: the job queue lives there). After the
//! fault, [`settle`] waits, bounded, until every order the load had answered 2xx is
//! processed and its job `done` in the queue: an order not processed is a lost job;
//! one whose `runs` (counted by the task in the transaction that marks it processed)
//! is above 1 ran its job twice; a processed order whose job is not `done` lost its
//! ack (it runs again once its lease, 30 s, ends: a duplicate to come).

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::common;
use crate::faults_http::fleet::Instance;
use crate::faults_http::load::AcceptedOrder;
use crate::faults_http::verdict::Verdict;

/// The orders API and its two workers.
#[derive(Debug)]
pub(crate) struct OrderFleet {
    pub(crate) api: Instance,
    pub(crate) workers: [Instance; 2],
}

impl OrderFleet {
    /// Starts the API first (it creates the orders table), then the workers.
    pub(crate) fn start(env: &[(&str, &str)]) -> Self {
        let api = Instance::start("orders", "order_service", env);
        let workers = [
            Instance::start_worker("worker1", "order_service", env),
            Instance::start_worker("worker2", "order_service", env),
        ];
        Self { api, workers }
    }
}

/// What became of the accepted orders.
#[derive(Debug)]
pub(crate) struct Settled {
    /// Accepted orders not processed when the wait ended.
    pub(crate) lost: Vec<String>,
    /// Accepted orders whose job ran more than once, with their runs.
    pub(crate) duplicates: Vec<(String, i64)>,
    /// Processed orders whose job is not `done` in the queue, with its status.
    pub(crate) not_done: Vec<(String, String)>,
    /// Jobs that took more than one attempt (a run that failed, in an outage, then retried).
    pub(crate) retried: usize,
    /// How long the wait took (from its start until every order was processed).
    pub(crate) waited: Duration,
}

impl Settled {
    /// The verdict's keys (`orders`, `lost_jobs`, `job_duplicates`, `jobs_settled_ms`)
    /// and its checks: no lost job, no job run twice.
    pub(crate) fn report(&self, orders: usize, verdict: &mut Verdict) {
        verdict.key("orders", orders);
        verdict.key("lost_jobs", self.lost.len());
        verdict.key("job_duplicates", self.duplicates.len());
        verdict.key("jobs_not_done", self.not_done.len());
        verdict.key("jobs_retried", self.retried);
        verdict.key("jobs_settled_ms", self.waited.as_millis());
        let lost = &self.lost[..self.lost.len().min(3)];
        verdict
            .check(self.lost.is_empty(), format!("{} accepted orders never processed, e.g. {lost:?}", self.lost.len()));
        let twice = &self.duplicates[..self.duplicates.len().min(3)];
        verdict
            .check(self.duplicates.is_empty(), format!("{} orders' jobs ran twice: {twice:?}", self.duplicates.len()));
        let not_done = &self.not_done[..self.not_done.len().min(3)];
        verdict.check(
            self.not_done.is_empty(),
            format!("{} processed orders' jobs not done (an ack lost): {not_done:?}", self.not_done.len()),
        );
    }
}

/// Waits at most `bound` until every order in `accepted` is processed in the database
/// at `database_url` (read with `psql`) and its job is `done` (read there too when the
/// queue is that database's `kernel_jobs`, else asked of `api` as its user), and says
/// what was not.
pub(crate) async fn settle(api: &Instance, database_url: &str, accepted: &[AcceptedOrder], bound: Duration) -> Settled {
    let started = Instant::now();
    let http = common::http_client();
    let mut jobs: HashMap<&str, (String, u64)> = HashMap::new();
    loop {
        let (rows, queued) = tokio::task::block_in_place(|| (orders(database_url), sql_jobs(database_url)));
        let processed = |o: &&AcceptedOrder| rows.get(&o.order_id).is_some_and(|(status, _)| status == "processed");
        let lost: Vec<String> = accepted.iter().filter(|o| !processed(o)).map(|o| o.order_id.clone()).collect();
        for order in accepted.iter().filter(processed) {
            if let Some(job) = queued.get(&order.job_id) {
                jobs.insert(&order.job_id, job.clone());
            }
        }
        let unknown = accepted
            .iter()
            .filter(processed)
            .filter(|o| jobs.get(o.job_id.as_str()).is_none_or(|(status, _)| status != "done"));
        // On Redis (or not yet done in SQL): sixteen at a time.
        let asked: Vec<_> = futures::stream::iter(unknown)
            .map(|o| async { (o.job_id.as_str(), job_status(&http, api, o).await) })
            .buffer_unordered(16)
            .collect()
            .await;
        jobs.extend(asked);
        let not_done: Vec<(String, String)> = jobs
            .iter()
            .filter(|(_, (status, _))| status != "done")
            .map(|(id, (status, _))| ((*id).to_owned(), status.clone()))
            .collect();
        if (lost.is_empty() && not_done.is_empty()) || started.elapsed() >= bound {
            let duplicates = accepted
                .iter()
                .filter_map(|o| {
                    rows.get(&o.order_id).filter(|(_, runs)| *runs > 1).map(|(_, r)| (o.order_id.clone(), *r))
                })
                .collect();
            let retried = jobs.values().filter(|(_, attempts)| *attempts > 1).count();
            return Settled { lost, duplicates, not_done, retried, waited: started.elapsed() };
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The status and attempts of an order's job (`GET /api/v1/jobs/{id}`), or what came
/// back instead.
async fn job_status(http: &reqwest::Client, api: &Instance, order: &AcceptedOrder) -> (String, u64) {
    let url = api.url(&format!("/api/v1/jobs/{}", order.job_id));
    match http.get(url).bearer_auth(&order.token).send().await {
        Ok(r) if r.status() == 200 => {
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            (body["status"].as_str().unwrap_or("?").to_owned(), body["attempts"].as_u64().unwrap_or(0))
        }
        Ok(r) => (format!("HTTP {}", r.status().as_u16()), 0),
        Err(e) => (format!("error: {e}"), 0),
    }
}

/// Every order's status and runs, by id.
fn orders(database_url: &str) -> HashMap<String, (String, i64)> {
    let sql = "SELECT id, status, COALESCE(runs, 0) FROM orders";
    let out = psql(database_url, sql);
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    triples(&out.stdout)
}

/// The SQL queue's `process_order` jobs (status, attempts) by id; none when the queue is
/// elsewhere (Redis: no `kernel_jobs` table).
fn sql_jobs(database_url: &str) -> HashMap<String, (String, u64)> {
    let out = psql(database_url, "SELECT id, status, attempts FROM kernel_jobs WHERE task = 'process_order'");
    if out.status.success() {
        triples(&out.stdout)
    } else {
        HashMap::new()
    }
}

fn psql(database_url: &str, sql: &str) -> std::process::Output {
    let mut psql = Command::new("psql");
    psql.args([database_url, "-At", "-F", " ", "-c", sql]);
    common::output_within(&mut psql, Duration::from_secs(10), "psql")
}

/// `id text number` lines, by id.
fn triples<N: std::str::FromStr>(stdout: &[u8]) -> HashMap<String, (String, N)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let (id, text, n) = (parts.next()?, parts.next()?, parts.next()?.parse().ok()?);
            Some((id.to_owned(), (text.to_owned(), n)))
        })
        .collect()
}
