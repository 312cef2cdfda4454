use std::sync::Arc;

use axum::extract::FromRequestParts;
use http::request::Parts;

use crate::db::Db;
use crate::error::ApiError;
use crate::observability::health::HealthCheck;
use crate::settings::KernelSettings;

/// The kernel's state: frozen settings and the shared handles (database, ...).
///
/// Cheap to clone. The middleware stack puts it in every request's extensions, so
/// it (and the extractors built on it: [`Db`], `CurrentUser`, ...) works in any
/// route of any router, whatever that router's own state is.
#[derive(Clone)]
pub struct Kernel {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    version: String,
    description: String,
    settings: KernelSettings,
    db: Db,
    health_checks: Vec<HealthCheck>,
    auth: crate::auth::Auth,
    /// Set once by the builder, right after construction.
    jobs: std::sync::OnceLock<crate::jobs::JobClient>,
    /// Set by the builder when leases live in Redis; in process otherwise.
    streams: std::sync::OnceLock<crate::streaming::StreamLeases>,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("name", &self.inner.name)
            .field("version", &self.inner.version)
            .finish_non_exhaustive()
    }
}

impl Kernel {
    pub(crate) fn new(
        name: String,
        version: String,
        description: String,
        settings: KernelSettings,
        db: Db,
        health_checks: Vec<HealthCheck>,
        auth: crate::auth::Auth,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                name,
                version,
                description,
                settings,
                db,
                health_checks,
                auth,
                jobs: std::sync::OnceLock::new(),
                streams: std::sync::OnceLock::new(),
            }),
        }
    }

    /// The service name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The API version.
    pub fn version(&self) -> &str {
        &self.inner.version
    }

    /// The API description.
    pub fn description(&self) -> &str {
        &self.inner.description
    }

    /// The frozen settings.
    pub fn settings(&self) -> &KernelSettings {
        &self.inner.settings
    }

    /// The database (the spec's `get_db_connection()`).
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// Authentication: tokens, identity source, login throttle.
    pub fn auth(&self) -> &crate::auth::Auth {
        &self.inner.auth
    }

    /// The job client (the spec's `get_job_client()`).
    pub fn jobs(&self) -> &crate::jobs::JobClient {
        self.inner.jobs.get().expect("ServiceBuilder::build sets the job client before handing out the kernel")
    }

    pub(crate) fn set_jobs(&self, jobs: crate::jobs::JobClient) {
        let _ = self.inner.jobs.set(jobs);
    }

    /// The stream lease limiter (the spec's `stream_lease`).
    pub fn streams(&self) -> &crate::streaming::StreamLeases {
        self.inner.streams.get_or_init(|| {
            let s = &self.inner.settings.streaming;
            let ttl = std::time::Duration::from_secs(s.lease_ttl_seconds);
            let store = std::sync::Arc::new(crate::streaming::MemoryLeaseStore::default());
            crate::streaming::StreamLeases::new(s.max_concurrent_per_user, ttl, store)
        })
    }

    pub(crate) fn set_streams(&self, streams: crate::streaming::StreamLeases) {
        let _ = self.inner.streams.set(streams);
    }

    pub(crate) fn health_checks(&self) -> &[HealthCheck] {
        &self.inner.health_checks
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Kernel {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Kernel>().cloned().ok_or_else(|| {
            ApiError::internal("Kernel missing from request extensions: the route is outside Kernel::attach")
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for crate::streaming::StreamLeases {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Kernel::from_request_parts(parts, state).await?.streams().clone())
    }
}
