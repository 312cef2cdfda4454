//! A real service process: `.env` is read at start-up, and SIGTERM lets an
//! in-flight request finish before the process exits.
//!
//! The test binary re-runs itself as the child (`KERNEL_CHILD` set), so the child
//! is a real process serving real sockets.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use app_kernel::{Service, ServiceConfig};
use axum::routing::get;
use axum::Router;

const CHILD: &str = "KERNEL_CHILD";

/// The child's body: a service with a slow route on the port from the environment.
#[tokio::test]
#[ignore = "the child process of the SIGTERM test; it runs it with --ignored"]
async fn child_service() {
    assert!(std::env::var(CHILD).is_ok(), "run only as the child of the SIGTERM test");
    let config = ServiceConfig::from_env().expect("config from env and .env");
    let slow = Router::new().route(
        "/slow",
        get(|| async {
            println!("SLOW STARTED");
            tokio::time::sleep(Duration::from_millis(1500)).await;
            "finished"
        }),
    );
    let mut settings = config.into_settings("child").expect("settings");
    settings.server.port = 0;
    let dir = tempfile::tempdir().unwrap();
    settings.database.name = Some(dir.path().join("c.db").display().to_string());
    let service = Service::builder("child").settings(settings).router(slow).build().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("LISTENING {}", listener.local_addr().unwrap());
    println!(
        "LOG_FORMAT_IS_PRETTY {}",
        service.kernel().settings().observability.log_format == app_kernel::settings::LogFormat::Pretty
    );
    service.serve_with_shutdown(listener, app_kernel::service::shutdown_signal()).await.unwrap();
    println!("CHILD EXITED CLEANLY");
}

fn spawn_child(cwd: &std::path::Path) -> (common::KillOnDrop, std::sync::mpsc::Receiver<String>) {
    // None of the caller's environment but PATH: the child's settings are the test's
    // and its `.env`'s (a stray DATABASE_URL or SHUTDOWN_DRAIN_SECONDS would change it).
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_service", "--ignored", "--nocapture", "--test-threads=1"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(CHILD, "1")
        .env("DEBUG", "true")
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (common::KillOnDrop(child), rx)
}

fn wait_for(rx: &std::sync::mpsc::Receiver<String>, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            // libtest prints `test child_service ... ` before the child's first line.
            if let Some((_, rest)) = line.split_once(prefix) {
                return rest.trim().to_owned();
            }
        }
    }
    panic!("child never printed {prefix}");
}

// Two threads: the in-flight request runs while this one blocks on the child's lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_request_finish_and_dotenv_is_read() {
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(cwd.path().join(".env"), "LOG_FORMAT=pretty\nLOG_LEVEL=warn\n").unwrap();
    let (mut child, rx) = spawn_child(cwd.path());
    let addr = wait_for(&rx, "LISTENING ");
    assert_eq!(wait_for(&rx, "LOG_FORMAT_IS_PRETTY "), "true", ".env was read");

    let client = common::http_client();
    let in_flight = tokio::spawn({
        let client = client.clone();
        let url = format!("http://{addr}/api/v1/slow");
        async move { client.get(url).send().await?.text().await }
    });
    wait_for(&rx, "SLOW STARTED");
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());

    // While the slow request drains (the child is alive), new connections are refused:
    // tried until one is, within 1 s (the slow request holds the child for 1.5 s).
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        assert!(child.try_wait().unwrap().is_none(), "the child exited before a new connection was refused");
        let fresh = std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(200));
        if fresh.is_err() {
            break;
        }
        assert!(Instant::now() < deadline, "new connections were still accepted 1 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(child.try_wait().unwrap().is_none(), "the child was still draining when the connection was refused");
    let body = in_flight.await.unwrap().expect("in-flight request completes after SIGTERM");
    assert_eq!(body, "finished");
    let status = common::wait_within(&mut child, Duration::from_secs(30), "the child after SIGTERM");
    assert!(status.success(), "child exit: {status}");
    assert_eq!(wait_for(&rx, "CHILD EXITED "), "CLEANLY");
}
