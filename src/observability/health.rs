//! Readiness checks: named async probes, run concurrently, each under a timeout.
//!
//! A check that fails, panics or does not answer within its timeout makes the
//! service unready; the report says which, and whether it failed, panicked or timed
//! out, but never a failed check's own message (error text of a database or a
//! network, say): the report is public, so that goes to the log.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;

/// What a check reports: `Ok(message)` when healthy (shown in the report),
/// `Err(message)` when not (logged; the report says only that the check failed).
pub type CheckResult = Result<String, String>;

type CheckFn = dyn Fn() -> BoxFuture<'static, CheckResult> + Send + Sync;

/// A named readiness probe (the spec's `health_checks=[...]`).
#[derive(Clone)]
pub struct HealthCheck {
    name: String,
    check: Arc<CheckFn>,
}

impl std::fmt::Debug for HealthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthCheck").field("name", &self.name).finish_non_exhaustive()
    }
}

impl HealthCheck {
    /// A check called `name` that runs `check`.
    pub fn new<F, Fut>(name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CheckResult> + Send + 'static,
    {
        Self { name: name.into(), check: Arc::new(move || Box::pin(check())) }
    }

    /// The check's name, the key in the `/readyz` report.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// One check's outcome in the `/readyz` body.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Whether it passed.
    pub healthy: bool,
    /// What it said when healthy; when not, `check failed`, `check panicked` or
    /// `timed out after N ms`.
    pub message: String,
    /// How long it took to answer, in milliseconds.
    pub latency_ms: u64,
}

/// The whole `/readyz` body.
#[derive(Debug, Clone, Serialize)]
pub struct ReadinessReport {
    /// `healthy` or `unhealthy`.
    pub status: &'static str,
    /// Each check by name.
    pub checks: BTreeMap<String, CheckOutcome>,
}

impl ReadinessReport {
    /// Whether every check passed.
    pub fn is_healthy(&self) -> bool {
        self.status == "healthy"
    }
}

/// The public message of a check that returned an error.
pub const FAILED: &str = "check failed";

/// Runs every check at once, each limited to `timeout`.
pub async fn run_checks(checks: &[HealthCheck], timeout: Duration) -> ReadinessReport {
    let runs = checks.iter().map(|c| {
        let fut = (c.check)();
        async move {
            let started = std::time::Instant::now();
            // Spawned so that a panicking check is reported, not propagated.
            let (healthy, message) = match tokio::time::timeout(timeout, tokio::spawn(fut)).await {
                Ok(Ok(Ok(message))) => (true, message),
                Ok(Ok(Err(message))) => {
                    tracing::warn!(check = %c.name, error = %message, "readiness check failed");
                    (false, FAILED.to_owned())
                }
                Ok(Err(_)) => {
                    tracing::warn!(check = %c.name, "readiness check panicked");
                    (false, "check panicked".into())
                }
                Err(_) => {
                    let message = format!("timed out after {} ms", timeout.as_millis());
                    tracing::warn!(check = %c.name, error = %message, "readiness check failed");
                    (false, message)
                }
            };
            let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            (c.name.clone(), CheckOutcome { healthy, message, latency_ms })
        }
    });
    let checks: BTreeMap<_, _> = futures::future::join_all(runs).await.into_iter().collect();
    let healthy = checks.values().all(|c| c.healthy);
    ReadinessReport { status: if healthy { "healthy" } else { "unhealthy" }, checks }
}
