//! Readiness checks: named async probes, run concurrently, each under a timeout.
//!
//! A check that fails, panics or does not answer within its timeout makes the
//! service unready; the report says which and why.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;

/// What a check reports: `Ok(message)` when healthy, `Err(message)` when not.
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
    /// What it said, or why it failed.
    pub message: String,
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

/// Runs every check at once, each limited to `timeout`.
pub async fn run_checks(checks: &[HealthCheck], timeout: Duration) -> ReadinessReport {
    let runs = checks.iter().map(|c| {
        let fut = (c.check)();
        async move {
            // Spawned so that a panicking check is reported, not propagated.
            let outcome = match tokio::time::timeout(timeout, tokio::spawn(fut)).await {
                Ok(Ok(Ok(message))) => CheckOutcome { healthy: true, message },
                Ok(Ok(Err(message))) => CheckOutcome { healthy: false, message },
                Ok(Err(_)) => CheckOutcome { healthy: false, message: "check panicked".into() },
                Err(_) => {
                    CheckOutcome { healthy: false, message: format!("timed out after {} ms", timeout.as_millis()) }
                }
            };
            (c.name.clone(), outcome)
        }
    });
    let checks: BTreeMap<_, _> = futures::future::join_all(runs).await.into_iter().collect();
    let healthy = checks.values().all(|c| c.healthy);
    ReadinessReport { status: if healthy { "healthy" } else { "unhealthy" }, checks }
}
