//! Soak: two widget instances on one PostgreSQL database (no Redis: the SQL
//! idempotency store), first loaded flat out for a few seconds to measure their
//! capacity, then at half of it for `KERNEL_TEST_SOAK_SECONDS` (default 600). No
//! request may fail; the instances' resident memory in the last minute stays within
//! 10 % of the first minute's, and the requests' p99 grows by at most 10 % (plus 1 ms,
//! below what this machine's scheduling moves from run to run).

use std::time::Duration;

use crate::faults_http::fleet::{tokens, Instance, SharedSchema};
use crate::faults_http::load::{quantile, Load, Plan, Sample};
use crate::faults_http::orders::{settle, OrderFleet};
use crate::faults_http::verdict::Verdict;

const CLIENTS: usize = 8;
const CAPACITY_RUN: Duration = Duration::from_secs(5);

pub(crate) async fn run() {
    let seconds: u64 = std::env::var("KERNEL_TEST_SOAK_SECONDS").map_or(600, |v| v.parse().expect("seconds"));
    let duration = Duration::from_secs(seconds.max(20));
    // First and last minute; a shorter run compares its first and last quarter.
    let window = Duration::from_secs(60).min(duration / 4);
    let Some(schema) = SharedSchema::create("faults_http soak") else { return };
    let url = schema.url();
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
    let mut rss: Vec<(Duration, u64)> = Vec::new();
    while load.now() < duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss.push((load.now(), a.rss_kib() + b.rss_kib()));
    }
    let record = load.stop().await;
    let jobs = settle(&orders_api, &url, &record.orders, Duration::from_secs(10)).await;

    let in_window = |from: Duration, to: Duration| -> Vec<&Sample> {
        record.samples.iter().filter(|s| s.at >= from && s.at < to).collect()
    };
    let q_of = |samples: &[&Sample], q| quantile(&mut samples.iter().map(|s| s.latency).collect::<Vec<_>>(), q);
    let p99_of = |samples: &[&Sample]| q_of(samples, 0.99);
    let mean_rss = |from: Duration, to: Duration| {
        let v: Vec<u64> = rss.iter().filter(|(t, _)| *t >= from && *t < to).map(|(_, r)| *r).collect();
        v.iter().sum::<u64>() / v.len().max(1) as u64
    };
    let end = record.samples.last().map_or(duration, |s| s.at);
    let (first, last) = (in_window(Duration::ZERO, window), in_window(end - window, end + Duration::from_secs(1)));
    let (p99_first, p99_last) = (p99_of(&first), p99_of(&last));
    let (rss_first, rss_last) =
        (mean_rss(Duration::ZERO, window), mean_rss(end - window, end + Duration::from_secs(2)));
    let failed: Vec<_> = record.samples.iter().filter(|s| !s.ok()).collect();
    let rate = record.samples.len() as f64 / end.as_secs_f64();
    let within = |a: f64, b: f64, floor: f64| (b - a).abs() <= (a * 0.10).max(floor);
    verdict.key("seconds", duration.as_secs());
    verdict.key("capacity_rps", format!("{capacity:.0}"));
    verdict.key("rate_rps", format!("{rate:.0}"));
    verdict.key("sent", record.samples.len());
    verdict.key("failed", failed.len());
    verdict.key("duplicates", record.duplicates.len());
    verdict.key("window_s", window.as_secs());
    verdict.key("p50_first_ms", format!("{:.1}", q_of(&first, 0.5).as_secs_f64() * 1e3));
    verdict.key("p50_last_ms", format!("{:.1}", q_of(&last, 0.5).as_secs_f64() * 1e3));
    verdict.key("p99_first_ms", format!("{:.1}", p99_first.as_secs_f64() * 1e3));
    verdict.key("p99_last_ms", format!("{:.1}", p99_last.as_secs_f64() * 1e3));
    verdict.key("rss_first_kib", rss_first);
    verdict.key("rss_last_kib", rss_last);
    verdict.key("recovery_ms", 0);
    jobs.report(record.orders.len(), &mut verdict);

    verdict.check(failed.is_empty(), format!("{} requests failed, e.g. {:?}", failed.len(), failed.first()));
    verdict.check(record.duplicates.is_empty(), "a key made two widgets");
    verdict
        .check(rate >= target * 0.9, format!("{rate:.0} req/s sent of {target:.0} planned: the clients fell behind"));
    let (p1, p2) = (p99_first.as_secs_f64() * 1e3, p99_last.as_secs_f64() * 1e3);
    // Growth is what a soak looks for; a last minute faster than the first (the other
    // users of this shared machine quieter) is not a failure.
    verdict.check(p2 <= p1 * 1.10 + 1.0, format!("p99 {p1:.1} ms in the first window, {p2:.1} ms in the last"));
    verdict.check(
        within(rss_first as f64, rss_last as f64, 0.0),
        format!("RSS {rss_first} KiB first, {rss_last} KiB last"),
    );
    verdict.finish();
    drop((a, b, orders_api, workers, schema));
}
