//! Redis killed and restarted mid-load: two widget instances share one PostgreSQL
//! database and the test's own `redis-server` (rate limit, idempotency records and
//! stream leases live there), a `streaming_chat` instance takes its leases from the
//! same Redis. While Redis is down the widget routes keep answering at close to
//! their normal rate, fast (the rate limit and idempotency fail open: a repeated key
//! may make a second widget, counted), a stream lease is refused at once (fail
//! closed: 503 `stream_leases_unavailable`), `/readyz` is 503 naming Redis. After the
//! restart a key repeated across the instances is a replay again, without a restart
//! of any instance. The order workers' job queue lives on the same Redis (kept in an
//! append-only file, as a deployment with jobs on Redis runs it): an order sent during
//! the outage gets 503 `jobs_unavailable` at once (expected, not a failure), and after
//! the restart every accepted order's job runs, once.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::own_server::OwnRedis;
use crate::common::unique_name;
use crate::faults_http::fleet::{tokens, Instance, SharedSchema};
use crate::faults_http::load::{quantile, Load, Outcome, Plan, Sample};
use crate::faults_http::orders::{settle, OrderFleet};
use crate::faults_http::verdict::Verdict;

const BEFORE: Duration = Duration::from_secs(2);
const OUTAGE: Duration = Duration::from_secs(3);
const AFTER: Duration = Duration::from_secs(2);

pub(crate) async fn run() {
    let schema = SharedSchema::create();
    let mut redis = OwnRedis::launch_persistent();
    let (url, redis_url, prefix) = (schema.url(), redis.url(), unique_name("faults") + ":");
    let env = [("DATABASE_URL", url.as_str()), ("REDIS_URL", redis_url.as_str()), ("REDIS_KEY_PREFIX", &prefix)];
    let a = Instance::start("a", "widget_service", &env);
    let b = Instance::start("b", "widget_service", &env);
    let chat = Instance::start("chat", "streaming_chat", &env);
    let OrderFleet { api: orders_api, workers } = OrderFleet::start(&env);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let tokens = tokens(&http, &a, 6).await;
    let orders = Some(orders_api.base.clone());
    let plan =
        Plan { bases: vec![a.base.clone(), b.base.clone()], tokens: tokens.clone(), clients: 6, pace: None, orders };
    let mut verdict = Verdict::new("redis_restart");
    verdict.check(lease(&http, &chat, &tokens[0]).await.0 == 200, "a stream lease before the outage");

    let load = Load::start(&plan);
    tokio::time::sleep(BEFORE).await;
    redis.kill();
    let down_at = load.now();
    let lease_down = lease(&http, &chat, &tokens[0]).await;
    let ready_down = readyz(&http, &a).await;
    tokio::time::sleep(OUTAGE.saturating_sub(load.now() - down_at)).await;
    redis.spawn().expect("redis-server restarts");
    let up_at = load.now();
    let up = Instant::now();
    let mut recovered = None;
    for attempt in 0.. {
        if replayed_across(&http, &a, &b, &tokens[0], &format!("after-{attempt}")).await {
            recovered = Some(up.elapsed());
            break;
        }
        if up.elapsed() > Duration::from_secs(5) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut lease_up = lease(&http, &chat, &tokens[0]).await;
    while lease_up.0 != 200 && up.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        lease_up = lease(&http, &chat, &tokens[0]).await;
    }
    let mut ready_up = readyz(&http, &a).await;
    while ready_up.0 != 200 && up.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        ready_up = readyz(&http, &a).await;
    }
    tokio::time::sleep(AFTER).await;
    let record = load.stop().await;
    let jobs = settle(&orders_api, &url, &record.orders, Duration::from_secs(10)).await;

    let window = |from: Duration, to: Duration| record.samples.iter().filter(move |s| s.at >= from && s.at < to);
    let baseline: Vec<_> = window(Duration::from_millis(500), down_at).collect();
    let before = baseline.len() as f64 / (down_at.as_secs_f64() - 0.5);
    let mut baseline_latencies: Vec<Duration> = baseline.iter().map(|s| s.latency).collect();
    let (p50_before, p99_before) = (quantile(&mut baseline_latencies, 0.5), quantile(&mut baseline_latencies, 0.99));
    let during: Vec<_> = window(down_at, up_at).collect();
    let rate = during.len() as f64 / (up_at - down_at).as_secs_f64();
    let mut latencies: Vec<Duration> = during.iter().map(|s| s.latency).collect();
    let (p50, p99, slowest) =
        (quantile(&mut latencies, 0.5), quantile(&mut latencies, 0.99), quantile(&mut latencies, 1.0));
    let recovered_at = up_at + recovered.unwrap_or(Duration::from_secs(5));
    // Fail-open ends a breaker cool-down (1 s) after the recovery check at the latest: a
    // command that meets a connection the restart broke after that check opens its store's
    // breaker once more (one CI run at ~1,100 req/s saw one duplicate outside the outage,
    // not seen in 13 runs since; `duplicates_at_ms` says where one falls).
    let fail_open_until = recovered_at + Duration::from_secs(1);
    // An order's enqueue meets the queue's breaker in the same window: a fast 503.
    let jobs_503 = |s: &&Sample| s.order && jobs_unavailable(s) && s.end() >= down_at && s.at <= fail_open_until;
    let orders_refused = record.samples.iter().filter(jobs_503).count();
    let failed: Vec<_> = record.samples.iter().filter(|s| !s.ok() && !jobs_503(s)).collect();
    let orders_after_restart = record.orders.iter().filter(|o| o.at >= up_at).count();
    let outside: Vec<_> = record.duplicates.iter().filter(|d| !d.overlaps(down_at, fail_open_until)).collect();
    // When each duplicate outside the outage happened, against the outage's edges (ms from
    // the start of the load), so a failing run says where to look.
    let at = |d: Duration| d.as_millis();
    let outside_at: Vec<String> = outside.iter().map(|d| format!("{}-{}", at(d.first), at(d.second_end))).collect();
    let outside = outside.len();
    verdict.key("sent", record.samples.len());
    verdict.key("failed", failed.len());
    verdict.key("sent_during_outage", during.len());
    verdict.key("rate_before", format!("{before:.0}"));
    verdict.key("rate_during", format!("{rate:.0}"));
    verdict.key("rate_ratio", format!("{:.2}", rate / before));
    verdict.key("p50_before_ms", p50_before.as_millis());
    verdict.key("p50_during_ms", p50.as_millis());
    verdict.key("p99_before_ms", p99_before.as_millis());
    verdict.key("p99_during_ms", p99.as_millis());
    verdict.key("max_during_ms", slowest.as_millis());
    verdict.key("duplicates_fail_open", record.duplicates.len() - outside);
    verdict.key("duplicates", outside);
    if outside > 0 {
        let edges = format!("{}/{}/{}", at(down_at), at(up_at), at(recovered_at));
        verdict.key("duplicates_at_ms", format!("{} (down/up/recovered {edges})", outside_at.join(",")));
    }
    verdict.key("lease_during", format!("{}:{}", lease_down.0, lease_down.1));
    verdict.key("readyz_during", ready_down.0);
    verdict.key("recovery_ms", recovered.map_or("never".into(), |d| d.as_millis().to_string()));
    verdict.key("orders_503_jobs_unavailable", orders_refused);
    verdict.key("orders_after_restart", orders_after_restart);
    jobs.report(record.orders.len(), &mut verdict);

    verdict.check(failed.is_empty(), format!("{} requests failed, e.g. {:?}", failed.len(), failed.first()));
    // A reconnect wait per request (the failure this guards against) answered 9
    // requests in 3 s where 1,838 came in the 2 s before. Runs on this machine measured
    // 0.38 to 1.7 of the rate before (RELIABILITY.md: the low ones are not explained).
    verdict.check(rate >= before * 0.25, format!("{rate:.0} req/s during the outage, {before:.0} before"));
    // The goal is 100 ms; on a shared 2-core machine the p99 with Redis up is
    // already about that or more, so the bound is the same run's p99 before the outage,
    // doubled, plus 50 ms. A reconnect wait per request (what this guards against)
    // costs seconds.
    let bound = (p99_before * 2 + Duration::from_millis(50)).max(Duration::from_millis(100));
    verdict.check(p99 <= bound, format!("p99 during the outage {p99:?}, before {p99_before:?}"));
    verdict.check(slowest < Duration::from_secs(1), format!("slowest request during the outage {slowest:?}"));
    verdict.check(outside == 0, format!("{outside} keys made two widgets while Redis was up"));
    verdict
        .check(lease_down.0 == 503 && lease_down.1 == "stream_leases_unavailable", "lease not refused (fail closed)");
    verdict.check(lease_down.2 < Duration::from_millis(500), format!("lease refused in {:?}", lease_down.2));
    let redis_check = &ready_down.1["checks"]["redis"]["healthy"];
    verdict
        .check(ready_down.0 == 503 && redis_check == &json!(false), format!("/readyz in the outage: {ready_down:?}"));
    verdict.check(ready_down.1["checks"]["database"]["healthy"] == json!(true), "/readyz: database unhealthy");
    verdict.check(recovered.is_some(), "no replay across instances within 5 s of Redis's restart");
    verdict.check(lease_up.0 == 200, format!("lease after the restart: {lease_up:?}"));
    verdict.check(ready_up.0 == 200, format!("/readyz after the restart: {ready_up:?}"));
    verdict.check(orders_refused > 0, "no order met the outage (the queue's failure unproven)");
    verdict.check(orders_after_restart > 0, "no order accepted after the restart");
    verdict.finish();
    drop((a, b, chat, orders_api, workers, redis, schema));
}

/// Answered 503 problem+json `jobs_unavailable`.
fn jobs_unavailable(s: &Sample) -> bool {
    matches!(&s.outcome, Outcome::Answered { status: 503, code: Some(c) } if c == "jobs_unavailable")
}

/// Opens a chat stream (a lease) and drops it: the status, the problem's code and the time.
async fn lease(http: &reqwest::Client, chat: &Instance, token: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let r = http.post(chat.url("/api/v1/chat/stream")).bearer_auth(token).json(&json!({"message": "hi"})).send().await;
    let r = r.expect("chat answers");
    let status = r.status().as_u16();
    let code = if status == 200 { String::new() } else { r.json::<Value>().await.unwrap()["code"].to_string() };
    (status, code.trim_matches('"').to_owned(), started.elapsed())
}

async fn readyz(http: &reqwest::Client, instance: &Instance) -> (u16, Value) {
    let r = http.get(instance.url("/readyz")).send().await.expect("readyz answers");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Creates a widget with `key` on A, sends the same on B: whether B replayed A's answer.
async fn replayed_across(http: &reqwest::Client, a: &Instance, b: &Instance, token: &str, key: &str) -> bool {
    let mut ids = Vec::new();
    let mut replayed = false;
    for instance in [a, b] {
        let r = http
            .post(instance.url("/api/v1/widgets"))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(&json!({"name": key}))
            .send()
            .await
            .expect("widgets answer");
        replayed = r.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
        ids.push(r.json::<Value>().await.unwrap()["id"].clone());
    }
    replayed && ids[0] == ids[1]
}
