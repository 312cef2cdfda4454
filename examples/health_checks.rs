//! Run: UPSTREAM_ADDR=127.0.0.1:6379 cargo run --example health_checks
//!
//! The spec's Health Checks: readiness checks of the app's own, which `/readyz`
//! runs beside the kernel's database check, each under a timeout
//! (`FeatureSettings::ready_check_timeout`). Any failing check answers 503 with
//! `"status": "unhealthy"`, so a load balancer stops sending traffic; `/healthz`
//! (liveness) stays 200, so the process is not restarted for it.
//!
//! - `upstream`: the service this app calls, `UPSTREAM_ADDR` (host:port), accepts a
//!   TCP connection within a second (the spec's `check_redis`, for any server).
//! - `drain`: unhealthy while the file `DRAIN_FILE` (default `./drain`) exists, so an
//!   operator takes the instance out of rotation (`touch drain`) before stopping it.
//!
//! A failed check's own message goes to the log, never into the public report.

use std::path::PathBuf;
use std::time::Duration;

use app_kernel::service::ServiceBuilder;
use app_kernel::{BootError, Service, ServiceConfig};

/// Healthy when `addr` accepts a TCP connection within a second.
async fn upstream_reachable(addr: String) -> Result<String, String> {
    match tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_)) => Ok(format!("{addr} reachable")),
        Ok(Err(e)) => Err(format!("{addr}: {e}")),
        Err(_) => Err(format!("{addr}: no answer within 1 s")),
    }
}

/// Unhealthy while `file` exists.
async fn not_draining(file: PathBuf) -> Result<String, String> {
    match tokio::fs::try_exists(&file).await {
        Ok(false) => Ok("serving".into()),
        Ok(true) => Err(format!("draining: {} exists", file.display())),
        Err(e) => Err(format!("cannot look for {}: {e}", file.display())),
    }
}

/// The app, checking `upstream` and draining while `drain_file` exists.
pub(crate) fn service(upstream: String, drain_file: PathBuf) -> ServiceBuilder {
    Service::builder("health_checks")
        .health_check("upstream", move || upstream_reachable(upstream.clone()))
        .health_check("drain", move || not_draining(drain_file.clone()))
}

#[tokio::main]
async fn main() -> Result<(), BootError> {
    let upstream = std::env::var("UPSTREAM_ADDR").unwrap_or_else(|_| "127.0.0.1:6379".into());
    let drain_file = std::env::var_os("DRAIN_FILE").map_or_else(|| PathBuf::from("drain"), PathBuf::from);
    service(upstream, drain_file).config(ServiceConfig::from_env()?).run().await
}
