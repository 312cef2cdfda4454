//! 200 concurrent logins against the real service binary (the widget example): the
//! server answers each (401, 429 or 503, never hangs) and its peak resident memory
//! stays under 100 MiB, because password hashing runs on one thread per core
//! (each argon2 verification takes 19 MiB; unbounded, 100 logins took 1.8 GiB).
//!
//! `cargo test --test login_flood -- --nocapture` prints the figures.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("linux /proc");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn two_hundred_concurrent_logins_stay_under_100_mib_and_all_get_an_answer() {
    if !Path::new("/proc/self/status").exists() {
        eprintln!("skipped: no /proc to read the server's memory from");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let binary = exe.parent().and_then(Path::parent).unwrap().join("examples").join("widget_service");
    let mut child = Command::new(binary)
        .env("PORT", "0")
        .env("DATABASE_NAME", dir.path().join("example.db"))
        .env("JWT_SECRET", "login-flood-secret-0123456789abcdef0123")
        .env("LOG_FORMAT", "json")
        .env("ALLOW_SELF_SIGNUP", "true")
        // Every request names its own client address, so none is throttled and all want argon2.
        .env("TRUSTED_PROXIES", "127.0.0.1")
        .env_remove("ADMIN_EMAIL")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the example is built by `cargo test`");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("the service logs `listening`").unwrap();
        let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
        if v["message"] == "listening" {
            break format!("http://{}/api/v1/auth", v["address"].as_str().unwrap());
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
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
    let _ = child.kill();
    let _ = child.wait();
    assert!(statuses.iter().all(|s| [401, 429, 503].contains(s)), "{statuses:?}");
    assert!(count(401) > 0, "some were checked");
    assert!(peak < 100 * 1024, "peak RSS {peak} KiB");
}
