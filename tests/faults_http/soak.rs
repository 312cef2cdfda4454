//! Soak: two widget instances on a PostgreSQL cluster of the test's own (`initdb`'s
//! defaults, so autovacuum on, as in a deployment; no Redis: the SQL idempotency
//! store), first loaded flat out for a few seconds to measure their capacity, then at
//! half of it for `KERNEL_TEST_SOAK_SECONDS` (default 600). No request may fail; the
//! instances' resident memory in the last minute stays within 10 % of the first
//! minute's, and the requests' p99 grows by at most 10 % (plus 1 ms, below what this
//! machine's scheduling moves from run to run).
//!
//! Each minute is also printed on a line of its own (`SOAK ...`): lists and creates
//! apart, and the CPU time per request of the instances and of the cluster, which a
//! growing cost moves even when the machine's other users move the latencies (CPU
//! time is not time spent waiting for a core).

use std::time::Duration;

use crate::common::own_server::OwnPostgres;
use crate::faults_http::fleet::{tokens, Instance};
use crate::faults_http::load::{quantile, Load, Plan, Record, Sample};
use crate::faults_http::orders::{settle, OrderFleet};
use crate::faults_http::verdict::Verdict;

const CLIENTS: usize = 8;
const CAPACITY_RUN: Duration = Duration::from_secs(5);
/// `/proc`'s clock tick (`getconf CLK_TCK`: 100 on Linux).
const TICK_US: u64 = 10_000;

/// What the test reads off the processes once a second.
#[derive(Debug, Clone, Copy)]
struct Probe {
    at: Duration,
    rss_kib: u64,
    app_ticks: u64,
    db_ticks: u64,
}

/// One window's figures.
#[derive(Debug)]
struct Window {
    sent: usize,
    p50_ms: f64,
    p99_ms: f64,
    list_p99_ms: f64,
    create_p99_ms: f64,
    rss_kib: u64,
    app_cpu_us: u64,
    db_cpu_us: u64,
}

impl Window {
    fn of(record: &Record, probes: &[Probe], from: Duration, to: Duration) -> Self {
        let all: Vec<&Sample> = record.samples.iter().filter(|s| s.at >= from && s.at < to).collect();
        let (lists, creates): (Vec<&Sample>, Vec<&Sample>) = all.iter().copied().partition(|s| !s.post);
        let ms = |samples: &[&Sample], q| {
            quantile(&mut samples.iter().map(|s| s.latency).collect::<Vec<_>>(), q).as_secs_f64() * 1e3
        };
        let inside: Vec<&Probe> = probes.iter().filter(|p| p.at >= from && p.at < to).collect();
        let before = probes.iter().rev().find(|p| p.at < from).or(probes.first());
        let (first, last) = (before.copied(), inside.last().copied().copied());
        let per_request = |ticks: fn(&Probe) -> u64| match (first, last) {
            (Some(a), Some(b)) => (ticks(&b) - ticks(&a)) * TICK_US / all.len().max(1) as u64,
            _ => 0,
        };
        Self {
            sent: all.len(),
            p50_ms: ms(&all, 0.5),
            p99_ms: ms(&all, 0.99),
            list_p99_ms: ms(&lists, 0.99),
            create_p99_ms: ms(&creates, 0.99),
            rss_kib: inside.iter().map(|p| p.rss_kib).sum::<u64>() / inside.len().max(1) as u64,
            app_cpu_us: per_request(|p| p.app_ticks),
            db_cpu_us: per_request(|p| p.db_ticks),
        }
    }
}

pub(crate) async fn run() {
    let seconds: u64 = std::env::var("KERNEL_TEST_SOAK_SECONDS").map_or(600, |v| v.parse().expect("seconds"));
    let duration = Duration::from_secs(seconds.max(20));
    // First and last minute; a shorter run compares its first and last quarter.
    let window = Duration::from_secs(60).min(duration / 4);
    let pg = OwnPostgres::launch();
    let url = pg.url();
    let env = [("DATABASE_URL", url.as_str())];
    let a = Instance::start("a", "widget_service", &env);
    let b = Instance::start("b", "widget_service", &env);
    let OrderFleet { api: orders_api, workers } = OrderFleet::start(&env);
    let http = reqwest::Client::new();
    let mut plan = Plan {
        bases: vec![a.base.clone(), b.base.clone()],
        tokens: tokens(&http, &a, CLIENTS).await,
        clients: CLIENTS,
        pace: None,
        orders: Some(orders_api.base.clone()),
    };
    let mut verdict = Verdict::new("soak");

    let load = Load::start(&plan);
    tokio::time::sleep(CAPACITY_RUN).await;
    let flat_out = load.stop().await;
    let capacity = flat_out.samples.iter().filter(|s| s.ok()).count() as f64 / CAPACITY_RUN.as_secs_f64();
    let target = capacity / 2.0;
    plan.pace = Some(Duration::from_secs_f64(CLIENTS as f64 / target));

    let load = Load::start(&plan);
    let probe = |at| Probe {
        at,
        rss_kib: a.rss_kib() + b.rss_kib(),
        app_ticks: a.cpu_ticks() + b.cpu_ticks(),
        db_ticks: pg.cpu_ticks(),
    };
    let mut probes = vec![probe(Duration::ZERO)];
    while load.now() < duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        probes.push(probe(load.now()));
    }
    let record = load.stop().await;
    let jobs = settle(&orders_api, &url, &record.orders, Duration::from_secs(10)).await;

    let end = record.samples.last().map_or(duration, |s| s.at);
    let first = Window::of(&record, &probes, Duration::ZERO, window);
    let last = Window::of(&record, &probes, end - window, end + Duration::from_secs(2));
    let mut from = Duration::ZERO;
    while from < end {
        let w = Window::of(&record, &probes, from, from + window);
        println!(
            "SOAK window_start_s={} sent={} p50_ms={:.1} p99_ms={:.1} list_p99_ms={:.1} create_p99_ms={:.1} \
             rss_kib={} app_cpu_us_per_request={} db_cpu_us_per_request={}",
            from.as_secs(),
            w.sent,
            w.p50_ms,
            w.p99_ms,
            w.list_p99_ms,
            w.create_p99_ms,
            w.rss_kib,
            w.app_cpu_us,
            w.db_cpu_us
        );
        from += window;
    }
    let failed: Vec<_> = record.samples.iter().filter(|s| !s.ok()).collect();
    let rate = record.samples.len() as f64 / end.as_secs_f64();
    verdict.key("seconds", duration.as_secs());
    verdict.key("capacity_rps", format!("{capacity:.0}"));
    verdict.key("rate_rps", format!("{rate:.0}"));
    verdict.key("sent", record.samples.len());
    verdict.key("failed", failed.len());
    verdict.key("duplicates", record.duplicates.len());
    verdict.key("window_s", window.as_secs());
    verdict.key("p50_first_ms", format!("{:.1}", first.p50_ms));
    verdict.key("p50_last_ms", format!("{:.1}", last.p50_ms));
    verdict.key("p99_first_ms", format!("{:.1}", first.p99_ms));
    verdict.key("p99_last_ms", format!("{:.1}", last.p99_ms));
    verdict.key("app_cpu_us_per_request_first", first.app_cpu_us);
    verdict.key("app_cpu_us_per_request_last", last.app_cpu_us);
    verdict.key("db_cpu_us_per_request_first", first.db_cpu_us);
    verdict.key("db_cpu_us_per_request_last", last.db_cpu_us);
    verdict.key("rss_first_kib", first.rss_kib);
    verdict.key("rss_last_kib", last.rss_kib);
    verdict.key("recovery_ms", 0);
    jobs.report(record.orders.len(), &mut verdict);

    verdict.check(failed.is_empty(), format!("{} requests failed, e.g. {:?}", failed.len(), failed.first()));
    verdict.check(record.duplicates.is_empty(), "a key made two widgets");
    verdict
        .check(rate >= target * 0.9, format!("{rate:.0} req/s sent of {target:.0} planned: the clients fell behind"));
    let (p1, p2) = (first.p99_ms, last.p99_ms);
    // Growth is what a soak looks for; a last minute faster than the first (the other
    // users of this shared machine quieter) is not a failure.
    verdict.check(p2 <= p1 * 1.10 + 1.0, format!("p99 {p1:.1} ms in the first window, {p2:.1} ms in the last"));
    let (r1, r2) = (first.rss_kib as f64, last.rss_kib as f64);
    verdict.check((r2 - r1).abs() <= r1 * 0.10, format!("RSS {r1} KiB first, {r2} KiB last"));
    verdict.finish();
    drop((a, b, orders_api, workers, pg));
}
