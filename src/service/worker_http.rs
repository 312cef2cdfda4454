//! The `worker` role: runs the job worker and, when `WORKER_HTTP_ADDR` is set, serves
//! its own `/healthz` and `/metrics` on that address, so a scrape of each process
//! shows its own work (jobs started, run times, pool waits, `process_*`).
//!
//! The worker's `/metrics` is the API's handler: the same `KERNEL_PROTECT_METRICS`
//! decides who may read it (an admin token by default), because an operator who binds
//! the port beyond loopback should not expose it by accident. `/healthz` is open, as
//! on the API. Both keep answering while the worker drains its jobs at shutdown.

use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use super::{BootError, Kernel};

/// The worker's routes: liveness and metrics, at the API's paths.
fn router(kernel: &Kernel) -> Router {
    let f = &kernel.settings().features;
    let mut router = Router::new().route(&f.health_path, get(super::routes::healthz));
    if f.enable_metrics {
        router = router.route(&f.metrics_path, get(super::routes::metrics_text));
    }
    router.with_state(kernel.clone())
}

/// Runs the worker until SIGINT or SIGTERM, serving its HTTP port meanwhile if one is
/// configured; then closes the pools.
///
/// # Errors
/// The worker's address cannot be bound.
pub(super) async fn run_worker(kernel: &Kernel) -> Result<(), BootError> {
    // The job histograms are drained into their buckets between scrapes, as on the API.
    crate::observability::metrics::spawn_upkeep();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let http = match kernel.settings().server.worker_http_addr {
        Some(addr) => Some(serve(kernel, addr, stopped).await?),
        None => None,
    };
    tracing::info!(service = kernel.name(), "worker ready (no API routes, no rate limit or idempotency stores)");
    kernel.worker().run_until_stopped(super::shutdown_signal()).await;
    let _ = stop.send(true);
    if let Some(http) = http {
        if let Err(e) = http.await {
            tracing::warn!(error = %e, "the worker's HTTP server stopped abnormally");
        }
    }
    kernel.db().close().await;
    Ok(())
}

async fn serve(
    kernel: &Kernel,
    addr: SocketAddr,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, BootError> {
    let listener =
        TcpListener::bind(addr).await.map_err(|source| BootError::Bind { addr: addr.to_string(), source })?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, "worker listening");
    let until = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    // The API's connection loop, with the same limits (head and idle timeouts, at most
    // `max_connections`): a port bound beyond loopback is a public port too.
    let limits = super::server::Limits::new(&kernel.settings().server);
    Ok(tokio::spawn(super::server::serve(listener, router(kernel), limits, None, until)))
}
