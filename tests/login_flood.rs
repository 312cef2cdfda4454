//! 200 concurrent logins against the real service binary (the widget example): the
//! server answers each (401, 429 or 503, never hangs) and its peak resident memory
//! stays under 100 MiB, because password hashing runs on one thread per core
//! (each argon2 verification takes 19 MiB; unbounded, 100 logins took 1.8 GiB).
//! A login that finds every hashing thread busy for `HASHING_QUEUE_WAIT` is answered
//! 503 `server_busy` with `Retry-After` instead of waiting its turn without end.
//!
//! `cargo test --test login_flood -- --nocapture` prints the figures. The tests read
//! the server's memory or CPUs from `/proc`: without it they are ignored.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::trials::{self, test, Program};
use serde_json::{json, Value};

mod common;

fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("linux /proc");
    let line = status.lines().find(|l| l.starts_with(field)).expect(field);
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The widget service in `dir`, on a free port, started through `taskset -c CPU` when
/// `cpu` is given, with none of the caller's environment but `PATH`; the child (killed
/// when dropped) and the base URL of its auth routes, once it logged `listening`
/// (within 30 s).
fn start(dir: &Path, cpu: Option<&str>) -> (common::KillOnDrop, String) {
    let binary = common::example_binary("widget_service");
    let mut command = match cpu {
        Some(cpu) => {
            let mut taskset = common::clean_command("taskset");
            taskset.arg("-c").arg(cpu).arg(binary);
            taskset
        }
        None => common::clean_command(binary),
    };
    let mut child = command
        .env("PORT", "0")
        .env("DATABASE_NAME", dir.join("example.db"))
        .env("JWT_SECRET", "login-flood-secret-0123456789abcdef0123")
        .env("ALLOW_SELF_SIGNUP", "true")
        // Every request names its own client address, so none is throttled and all want argon2.
        .env("TRUSTED_PROXIES", "127.0.0.1")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the example is built by `cargo test` (and taskset is installed, when a CPU is given)");
    let stdout = child.stdout.take().unwrap();
    let child = common::KillOnDrop(child);
    let log = common::Listening::wait(stdout).expect("the widget service logged `listening` within 30 s");
    (child, format!("http://{}/api/v1/auth", log.drain()))
}

async fn two_hundred_concurrent_logins_stay_under_100_mib_and_all_get_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (child, base) = start(dir.path(), None);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let reg = client.post(format!("{base}/register")).json(&json!({"username": "ann", "password": "correct horse"}));
    assert_eq!(reg.send().await.unwrap().status(), 201);
    let before = peak_rss_kib(child.id());

    let started = Instant::now();
    let logins = (0..200).map(|i| {
        let req = client
            .post(format!("{base}/login"))
            .header("x-forwarded-for", format!("10.{}.{}.7", i / 250, i % 250))
            .json(&json!({"username": "ann", "password": format!("wrong horse {i}")}));
        async move { req.send().await.map(|r| r.status().as_u16()) }
    });
    let statuses: Vec<u16> = futures::future::join_all(logins)
        .await
        .into_iter()
        .map(|r| r.expect("every login gets an answer within 60 s"))
        .collect();
    let elapsed = started.elapsed();
    let peak = peak_rss_kib(child.id());
    let count = |code| statuses.iter().filter(|s| **s == code).count();
    eprintln!(
        "200 concurrent logins in {elapsed:.1?}: {} x 401, {} x 429, {} x 503; peak RSS {:.1} MiB (before {:.1} MiB)",
        count(401),
        count(429),
        count(503),
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
    drop(child);
    assert!(statuses.iter().all(|s| [401, 429, 503].contains(s)), "{statuses:?}");
    assert!(count(401) > 0, "some were checked");
    assert!(peak < 100 * 1024, "peak RSS {peak} KiB");
}

/// Logins that wait for a hashing thread longer than `HASHING_QUEUE_WAIT` (2 s) are
/// refused with 503 `server_busy` and `Retry-After`, not queued without end. The
/// server runs on one CPU, so it has one hashing thread; 400 logins at once ask it for
/// 400 argon2id verifications (19 MiB written twice each, tens of milliseconds on
/// any machine: at 10 ms, 4 s of work), so those still waiting after 2 s are refused.
async fn logins_that_wait_too_long_for_a_hashing_thread_get_503_with_retry_after() {
    let status = std::fs::read_to_string("/proc/self/status").expect("linux /proc");
    // The first CPU this process may run on, e.g. `0` of `Cpus_allowed_list:	0-1`.
    let allowed = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).expect("Cpus_allowed_list");
    let cpu = allowed.trim().split([',', '-']).next().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let (_server, base) = start(dir.path(), Some(&cpu));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let reg = client.post(format!("{base}/register")).json(&json!({"username": "ann", "password": "correct horse"}));
    assert_eq!(reg.send().await.unwrap().status(), 201);

    let logins = (0..400).map(|i| {
        let req = client
            .post(format!("{base}/login"))
            .header("x-forwarded-for", format!("10.{}.{}.9", i / 250, i % 250))
            .json(&json!({"username": "ann", "password": format!("wrong horse {i}")}));
        async move {
            let reply = req.send().await?;
            let status = reply.status().as_u16();
            let retry_after = reply.headers().get("retry-after").map(|v| v.to_str().unwrap_or_default().to_owned());
            let body: Value = reply.json().await.unwrap_or(Value::Null);
            Ok::<_, reqwest::Error>((status, retry_after, body["code"].as_str().unwrap_or_default().to_owned()))
        }
    });
    let replies: Vec<_> = futures::future::join_all(logins)
        .await
        .into_iter()
        .map(|r| r.expect("every login gets an answer within 60 s"))
        .collect();
    let busy: Vec<_> = replies.iter().filter(|(status, _, _)| *status == 503).collect();
    eprintln!("400 logins on one hashing thread: {} x 503, {} x 401", busy.len(), replies.len() - busy.len());
    assert!(replies.iter().all(|(status, _, _)| [401, 503].contains(status)), "{replies:?}");
    assert!(busy.len() < replies.len(), "some were checked: {replies:?}");
    assert!(!busy.is_empty(), "none of 400 logins on one hashing thread was refused as busy");
    for (_, retry_after, code) in busy {
        assert_eq!(code, "server_busy");
        let seconds: u64 = retry_after.as_deref().and_then(|s| s.parse().ok()).expect("Retry-After in seconds");
        assert!(seconds >= 1, "Retry-After: {seconds}");
    }
}

/// A login does not leave the process larger by argon2's 19 MiB: a hashing thread
/// gives its memory back once no hash came for `HASHING_MEMORY_KEPT` (1 s) (issue
/// 17: the first hash used to keep the service at 31 MiB instead of 12).
async fn logins_one_at_a_time_give_argon2s_memory_back() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = start(dir.path(), None);
    let pid = server.id();
    let client = reqwest::Client::new();
    let before = status_kib(pid, "VmRSS:");
    let reg = client.post(format!("{base}/register")).json(&json!({"username": "bob", "password": "correct horse"}));
    assert_eq!(reg.send().await.unwrap().status(), 201);
    // Several, one after the other: after the first, glibc would serve a freed 19 MiB
    // from its heap and keep it (its mmap threshold rises to the size of a freed mapping).
    for password in ["correct horse", "wrong horse", "correct horse"] {
        let login = client.post(format!("{base}/login")).json(&json!({"username": "bob", "password": password}));
        assert!([200, 401].contains(&login.send().await.unwrap().status().as_u16()));
    }
    // Each hashing thread frees within a second of its last hash; give it ten.
    let mut after = status_kib(pid, "VmRSS:");
    for _ in 0..100 {
        if after < before + 8 * 1024 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = status_kib(pid, "VmRSS:");
    }
    let peak = peak_rss_kib(pid);
    eprintln!(
        "RSS before {:.1} MiB, after four hashes {:.1} MiB, peak {:.1} MiB",
        kib_mib(before),
        kib_mib(after),
        kib_mib(peak)
    );
    assert!(peak >= before + 15 * 1024, "a hash took its 19 MiB (peak {peak} KiB, before {before} KiB)");
    assert!(after < before + 8 * 1024, "after {after} KiB, before {before} KiB: argon2's memory was kept");
}

#[allow(clippy::cast_precision_loss)]
fn kib_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    trials::run(vec![
        test("two_hundred_concurrent_logins_stay_under_100_mib_and_all_get_an_answer")
            .needs_program(Program::Proc)
            .run(|_| two_hundred_concurrent_logins_stay_under_100_mib_and_all_get_an_answer()),
        test("logins_that_wait_too_long_for_a_hashing_thread_get_503_with_retry_after")
            .needs_program(Program::Proc)
            .run(|_| logins_that_wait_too_long_for_a_hashing_thread_get_503_with_retry_after()),
        test("logins_one_at_a_time_give_argon2s_memory_back")
            .needs_program(Program::Proc)
            .run(|_| logins_one_at_a_time_give_argon2s_memory_back()),
    ]);
}
