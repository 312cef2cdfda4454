//! SIGTERM under load: instance A of two on one PostgreSQL database is stopped while
//! six clients call both. `/readyz` on A turns 503 at once; A keeps accepting new
//! connections for the whole drain window (`SHUTDOWN_DRAIN_SECONDS`) and refuses them
//! only after it; every request that A had accepted (in flight, or on a kept-alive
//! connection) is answered; A exits 0. The clients move to B when A refuses, as a
//! load balancer would, and no request fails. One of the two order workers gets
//! SIGTERM at the same time: it finishes (or hands back) its jobs and exits 0, the
//! other processes the rest, and every accepted order is processed once.

use std::time::{Duration, Instant};

use crate::faults_http::fleet::{tokens, Instance, SharedSchema};
use crate::faults_http::load::{quantile, Load, Outcome, Plan, Sample};
use crate::faults_http::orders::{settle, OrderFleet};
use crate::faults_http::verdict::Verdict;

const DRAIN: Duration = Duration::from_secs(2);

/// A fresh connection per request: what a load balancer's new connection sees.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).timeout(Duration::from_secs(5)).build().unwrap()
}

pub(crate) async fn run() {
    let schema = SharedSchema::create();
    let url = schema.url();
    let drain = DRAIN.as_secs().to_string();
    let env = [("DATABASE_URL", url.as_str()), ("SHUTDOWN_DRAIN_SECONDS", drain.as_str())];
    // One after the other: both create the tables at start-up.
    let mut a = Instance::start("a", "widget_service", &env);
    let b = Instance::start("b", "widget_service", &env);
    let OrderFleet { api: orders_api, workers: [mut worker, other] } = OrderFleet::start(&[("DATABASE_URL", &url)]);
    let setup = reqwest::Client::new();
    let plan = Plan {
        bases: vec![a.base.clone(), b.base.clone()],
        tokens: tokens(&setup, &a, 6).await,
        clients: 6,
        pace: None,
        orders: Some(orders_api.base.clone()),
    };
    let mut verdict = Verdict::new("sigterm");

    let load = Load::start(&plan);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let signal_at = load.now();
    let signalled = Instant::now();
    a.sigterm();
    worker.sigterm();

    // Readiness turns 503 at once, on a new connection.
    let probe = fresh_client();
    let mut ready_503 = None;
    while signalled.elapsed() < DRAIN / 2 {
        match probe.get(a.url("/readyz")).send().await {
            Ok(r) if r.status() == 503 => {
                ready_503 = Some(signalled.elapsed());
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    // New connections: accepted until the drain window ends, refused after it.
    let mut accepted_last = Duration::ZERO;
    let mut refused_first = None;
    let mut refused_early = Vec::new();
    let mut reset_at_close = Vec::new();
    let mut worker_exited = None;
    while refused_first.is_none() && signalled.elapsed() < DRAIN + Duration::from_secs(8) {
        let tried = signalled.elapsed();
        if worker_exited.is_none() && !worker.running() {
            worker_exited = Some(tried);
        }
        match probe.get(a.url("/healthz")).send().await {
            Ok(r) if r.status() == 200 => accepted_last = tried,
            Err(e) if e.is_connect() => {
                if tried < DRAIN {
                    refused_early.push(tried);
                } else {
                    refused_first = Some(tried);
                }
            }
            // A connection made as the listener closes (in the accept queue, or accepted
            // but not yet read) is reset: no server can answer it. Counted, not failed.
            Err(e) if (tried.as_millis() as i128 - DRAIN.as_millis() as i128).abs() < 100 => {
                reset_at_close.push(format!("{tried:?}: {e}"));
            }
            other => verdict.check(false, format!("/healthz during the drain at {tried:?}: {other:?}")),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let exit = tokio::task::block_in_place(|| a.wait_exit(Duration::from_secs(10)));
    let exit_ms = signalled.elapsed().as_millis();
    // Its jobs take milliseconds: it exits long before its grace (30 s) would end.
    let worker_exit = tokio::task::block_in_place(|| worker.wait_exit(Duration::from_secs(10)));
    let worker_exited = worker_exited.unwrap_or_else(|| signalled.elapsed());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let record = load.stop().await;
    let jobs = settle(&orders_api, &url, &record.orders, Duration::from_secs(10)).await;

    let sent = record.samples.len();
    let refused = record.samples.iter().filter(|s| s.outcome == Outcome::Refused).count();
    // A request on a new connection to A that lands in its accept queue as the listener
    // closes is reset: no server can answer it (a load balancer stopped sending two
    // seconds earlier; these clients ignore readiness). Counted apart, at most five.
    let close = signal_at + DRAIN;
    let at_close = |s: &&Sample| {
        s.instance == 0
            && matches!(s.outcome, Outcome::Broken(_))
            && s.at + Duration::from_millis(100) >= close
            && s.at <= close + Duration::from_millis(100)
    };
    let load_reset_at_close = record.samples.iter().filter(at_close).count();
    let failed: Vec<_> =
        record.samples.iter().filter(|s| !s.ok() && s.outcome != Outcome::Refused && !at_close(s)).collect();
    let moved = record.samples.iter().filter(|s| s.refusals > 0).count();
    let a_in_drain = record.samples.iter().filter(|s| s.instance == 0 && s.at > signal_at && s.ok()).count();
    let mut latencies: Vec<Duration> = record.samples.iter().map(|s| s.latency).collect();
    let p99 = quantile(&mut latencies, 0.99);
    verdict.key("sent", sent);
    verdict.key("failed", failed.len());
    verdict.key("reset_at_close", load_reset_at_close);
    verdict.key("refused", refused);
    verdict.key("moved_to_b", moved);
    verdict.key("a_answered_after_signal", a_in_drain);
    verdict.key("duplicates", record.duplicates.len());
    verdict.key("ready_503_ms", ready_503.map_or("never".into(), |d| d.as_millis().to_string()));
    verdict.key("last_accepted_ms", accepted_last.as_millis());
    verdict.key("first_refused_ms", refused_first.map_or("never".into(), |d| d.as_millis().to_string()));
    verdict.key("drain_ms", DRAIN.as_millis());
    verdict.key("probe_reset_at_close", reset_at_close.len());
    verdict.key("p99_ms", p99.as_millis());
    verdict.key("recovery_ms", exit_ms);
    jobs.report(record.orders.len(), &mut verdict);
    verdict.key("worker_exit_ms", worker_exited.as_millis());
    let orders_after = record.orders.iter().filter(|o| o.at > signal_at + worker_exited).count();
    verdict.key("orders_after_worker_exit", orders_after);

    verdict.check(failed.is_empty(), format!("{} accepted requests failed, e.g. {:?}", failed.len(), failed.first()));
    verdict.check(load_reset_at_close <= 5, format!("{load_reset_at_close} requests reset as A's listener closed"));
    verdict.check(refused == 0, format!("{refused} requests refused by both instances"));
    verdict.check(record.duplicates.is_empty(), "a key made two widgets");
    verdict.check(ready_503.is_some_and(|d| d < Duration::from_millis(500)), "/readyz did not turn 503 within 500 ms");
    verdict.check(refused_early.is_empty(), format!("new connections refused during the drain at {refused_early:?}"));
    verdict.check(accepted_last + Duration::from_millis(300) >= DRAIN, "no connection accepted late in the drain");
    verdict.check(refused_first.is_some(), "new connections still accepted after the drain window");
    verdict.check(a_in_drain > 0, "A answered nothing after the signal (the clients never drained through it)");
    verdict.check(exit.is_some_and(|s| s.success()), format!("A's exit after SIGTERM: {exit:?}"));
    verdict
        .check(worker_exit.is_some_and(|s| s.success()), format!("the worker's exit after SIGTERM: {worker_exit:?}"));
    verdict.check(orders_after > 0, "no order accepted after the worker exited (the other worker's share unproven)");
    verdict.finish();
    drop((a, b, orders_api, worker, other, schema));
}
