//! The service: [`Service::builder`] (the spec's `create_service`), the [`Kernel`]
//! state handle, the auto-mounted routes, the middleware stack and graceful
//! shutdown.
//!
//! `serve()` binds `HOST:PORT` and serves connections within the limits of
//! [`ServerSettings`] (header read and idle timeouts, a connection limit); on
//! SIGINT or SIGTERM it stops accepting, lets in-flight requests finish within
//! `shutdown_grace`, runs the `on_shutdown` hooks and closes the pools.

mod api_routes;
mod audit_route;
mod boot_error;
mod builder;
mod cli;
mod docs;
mod docs_response;
mod kernel;
mod routes;
mod server;
pub mod stack;
#[cfg(feature = "test-util")]
pub mod testing;
mod watchdog;
mod worker_http;

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;

pub use crate::settings::{
    CorsSettings, FeatureSettings, MetricsProtection, SecurityHeadersSettings, ServerSettings, StackSettings,
};
pub use api_routes::Routes;
pub use builder::{HookResult, ServiceBuilder};
pub use cli::{Command, MigrateAction};
pub use kernel::Kernel;

use crate::settings::KernelSettings;
pub use boot_error::BootError;

/// A built service: the kernel and the full router, ready to serve.
#[must_use]
pub struct Service {
    kernel: Kernel,
    router: Router,
    stack: Vec<&'static str>,
    on_shutdown: Vec<Box<dyn FnOnce(Kernel) -> futures::future::BoxFuture<'static, HookResult> + Send>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("kernel", &self.kernel).finish_non_exhaustive()
    }
}

impl Service {
    /// Starts building a service called `name`.
    pub fn builder(name: impl Into<String>) -> ServiceBuilder {
        ServiceBuilder::new(name)
    }

    /// The kernel of this service (settings, database, ...).
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// The middleware parts that run, outermost first (see [`stack`]).
    pub fn stack(&self) -> &[&'static str] {
        &self.stack
    }

    /// The full router: app and kernel routes inside the stack. For tests
    /// (`tower::ServiceExt::oneshot`) or to serve it yourself.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Binds `HOST:PORT` and serves until SIGINT or SIGTERM.
    ///
    /// # Errors
    /// The address cannot be bound, or the server fails.
    pub async fn serve(self) -> Result<(), BootError> {
        let server = &self.kernel.settings().server;
        let addr = format!("{}:{}", server.host, server.port);
        let listener = TcpListener::bind(&addr).await.map_err(|source| BootError::Bind { addr, source })?;
        self.serve_with_shutdown(listener, shutdown_signal()).await
    }

    /// Serves on `listener` until `signal` completes, then shuts down gracefully.
    ///
    /// # Errors
    /// The server fails.
    pub async fn serve_with_shutdown(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), BootError> {
        let Self { kernel, router, on_shutdown, .. } = self;
        let local = listener.local_addr()?;
        tracing::info!(address = %local, service = kernel.name(), "listening");
        crate::observability::metrics::spawn_upkeep();
        let (grace, drain) = (kernel.settings().server.shutdown_grace, kernel.settings().server.drain_delay);
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let draining = kernel.clone();
        let signal = async move {
            signal.await;
            draining.start_draining();
            if !drain.is_zero() {
                tracing::info!(
                    drain_ms = drain.as_millis() as u64,
                    "shutting down: /readyz answers 503, still accepting"
                );
                tokio::time::sleep(drain).await;
            }
            tracing::info!(grace_ms = grace.as_millis() as u64, "shutting down: draining in-flight requests");
            let _ = stopping_tx.send(());
        };
        let limits = server::Limits::new(&kernel.settings().server);
        let server = server::serve(listener, router, limits, Some(kernel.clone()), signal);
        let deadline = async move {
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = server => {}
            () = deadline => tracing::warn!("shutdown grace expired; abandoning in-flight requests"),
        }
        builder::run_hooks(on_shutdown, &kernel).await;
        kernel.db().close().await;
        tracing::info!("stopped");
        crate::observability::otel::flush();
        crate::observability::log_sink::flush();
        Ok(())
    }
}

/// Attaches the kernel to an app's own router with explicit settings (the spec's
/// `init_app_kernel`): the app's routes stay where they are, the kernel adds its
/// routes and wraps everything in its stack.
///
/// # Errors
/// As [`ServiceBuilder::build`].
pub async fn init_app_kernel(name: &str, app: Router<Kernel>, settings: KernelSettings) -> Result<Service, BootError> {
    Service::builder(name).settings(settings).root_router(app).build().await
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
