//! PostgreSQL restarted mid-load: two widget instances on the test's own cluster
//! (no Redis: the idempotency records live in the same database). The cluster is
//! stopped at once (`pg_ctl -m immediate`) under load and started again on the same
//! port. Every request meanwhile is answered 503 problem+json `database_unavailable`
//! within the acquire timeout (1 s) and some slack — never a 500, never a hang —
//! and both instances serve again within about a second of the restart, as the same
//! processes. The order workers' queue is in the same cluster: they keep running
//! through the outage and work again after it, without a restart, and every accepted
//! order's job runs, once.

use std::time::{Duration, Instant};

use crate::common::own_server::OwnPostgres;
use crate::faults_http::fleet::{tokens, Instance};
use crate::faults_http::load::{quantile, Load, Outcome, Plan, Sample};
use crate::faults_http::orders::{settle, OrderFleet};
use crate::faults_http::verdict::Verdict;

const BEFORE: Duration = Duration::from_millis(1500);
const OUTAGE: Duration = Duration::from_secs(3);
const AFTER: Duration = Duration::from_secs(2);
/// `DATABASE_ACQUIRE_TIMEOUT_MS`'s default, plus what a busy 2-core machine adds.
const BOUND: Duration = Duration::from_millis(1500);

pub(crate) async fn run() {
    let mut pg = OwnPostgres::launch();
    let url = pg.url();
    let env = [("DATABASE_URL", url.as_str())];
    let a = Instance::start("a", "widget_service", &env);
    let b = Instance::start("b", "widget_service", &env);
    let OrderFleet { api: orders_api, mut workers } = OrderFleet::start(&env);
    let http = reqwest::Client::new();
    let plan = Plan {
        bases: vec![a.base.clone(), b.base.clone()],
        tokens: tokens(&http, &a, 6).await,
        clients: 6,
        pace: None,
        orders: Some(orders_api.base.clone()),
    };
    let mut verdict = Verdict::new("postgres_restart");

    let load = Load::start(&plan);
    tokio::time::sleep(BEFORE).await;
    let stop_at = load.now();
    tokio::task::block_in_place(|| pg.stop_server());
    let stopped_at = load.now();
    tokio::time::sleep(OUTAGE).await;
    tokio::task::block_in_place(|| pg.start_server());
    let up_at = load.now();
    let up = Instant::now();
    // The first success of each instance on a request sent after the restart.
    let mut recovered = [None, None];
    let probe = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    while recovered.iter().any(Option::is_none) && up.elapsed() < Duration::from_secs(10) {
        for (i, instance) in [&a, &b].into_iter().enumerate() {
            if recovered[i].is_none() {
                let r = probe.get(instance.url("/api/v1/widgets?limit=1")).bearer_auth(&plan.tokens[0]).send().await;
                if r.is_ok_and(|r| r.status() == 200) {
                    recovered[i] = Some(up.elapsed());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(AFTER).await;
    let record = load.stop().await;
    let jobs = settle(&orders_api, &url, &record.orders, Duration::from_secs(10)).await;
    let workers_running = workers.iter_mut().map(Instance::running).filter(|r| *r).count();
    let orders_after_restart = record.orders.iter().filter(|o| o.at >= up_at).count();

    let recovery = recovered.iter().map(|r| r.unwrap_or(Duration::from_secs(10))).max().unwrap();
    let settled = up_at + recovery + Duration::from_millis(500);
    // Requests that met the outage: answered after the stop began, sent before the restart ended.
    let outage: Vec<_> = record.samples.iter().filter(|s| s.end() > stop_at && s.at < up_at).collect();
    let wrong: Vec<_> = outage.iter().filter(|s| !s.ok() && !unavailable(s)).collect();
    let answered_503 = outage.iter().filter(|s| unavailable(s)).count();
    let mut latencies: Vec<Duration> = outage.iter().map(|s| s.latency).collect();
    let (p99, slowest) = (quantile(&mut latencies, 0.99), quantile(&mut latencies, 1.0));
    let failed_after: Vec<_> = record.samples.iter().filter(|s| s.at > settled && !s.ok()).collect();
    let failed_before: Vec<_> = record.samples.iter().filter(|s| s.end() < stop_at && !s.ok()).collect();
    let unexpected = wrong.len() + failed_after.len() + failed_before.len();
    let outside = record.duplicates.iter().filter(|d| !d.overlaps(stop_at, settled)).count();
    verdict.key("sent", record.samples.len());
    verdict.key("failed", unexpected);
    verdict.key("sent_during_outage", outage.len());
    verdict.key("answered_503", answered_503);
    verdict.key("p99_during_ms", p99.as_millis());
    verdict.key("max_during_ms", slowest.as_millis());
    let keyed = outage.iter().filter(|s| s.post).map(|s| s.latency).max().unwrap_or_default();
    verdict.key("max_keyed_create_during_ms", keyed.as_millis());
    verdict.key("duplicates", outside);
    verdict.key("duplicates_in_outage", record.duplicates.len() - outside);
    verdict.key("recovery_a_ms", recovered[0].map_or("never".into(), |d| d.as_millis().to_string()));
    verdict.key("recovery_b_ms", recovered[1].map_or("never".into(), |d| d.as_millis().to_string()));
    verdict.key("recovery_ms", recovery.as_millis());
    verdict.key("orders_after_restart", orders_after_restart);
    jobs.report(record.orders.len(), &mut verdict);

    verdict.check(
        wrong.is_empty(),
        format!("{} answers in the outage not 2xx/503, e.g. {:?}", wrong.len(), wrong.first()),
    );
    verdict.check(failed_before.is_empty(), format!("failures before the outage: {:?}", failed_before.first()));
    verdict.check(failed_after.is_empty(), format!("failures after recovery: {:?}", failed_after.first()));
    verdict.check(answered_503 > 0, "no request met the outage");
    // The bound is for requests sent while the server is down; one in flight as it
    // stopped may wait once more (RELIABILITY.md: a keyed create's record is forgotten
    // after its 503, and that waits for the database too).
    let slow: Vec<_> = outage.iter().filter(|s| s.at >= stopped_at && s.latency > BOUND).collect();
    let in_flight = outage.iter().filter(|s| s.at < stopped_at).map(|s| s.latency).max().unwrap_or_default();
    verdict.key("max_in_flight_at_stop_ms", in_flight.as_millis());
    verdict.check(slow.is_empty(), format!("{} answers in the outage slower than {BOUND:?}: {slow:?}", slow.len()));
    verdict.check(recovered.iter().all(Option::is_some), "an instance never served again");
    verdict.check(recovery < Duration::from_secs(2), format!("serving again {recovery:?} after the restart"));
    verdict.check(outside == 0, format!("{outside} keys made two widgets outside the outage"));
    verdict.check(workers_running == 2, format!("{} of 2 workers still running at the end", workers_running));
    verdict.check(orders_after_restart > 0, "no order accepted after the restart");
    verdict.finish();
    drop((a, b, orders_api, workers, pg));
}

/// Answered 503 problem+json `database_unavailable`.
fn unavailable(s: &Sample) -> bool {
    matches!(&s.outcome, Outcome::Answered { status: 503, code: Some(c) } if c == "database_unavailable")
}
