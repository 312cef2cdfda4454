//! [`Kernel`]: the service's state, complete when built, and the sub-state each
//! concept's extractors take from it ([`FromRef`]): [`Db`], [`Auth`],
//! [`JobClient`], [`StreamLeases`], [`TrustedProxies`]. A route that needs a part
//! the router's state cannot give does not compile.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::auth::Auth;
use crate::client_addr::TrustedProxies;
use crate::db::Db;
use crate::jobs::{JobClient, Worker};
use crate::observability::health::HealthCheck;
use crate::settings::KernelSettings;
use crate::streaming::StreamLeases;

/// The kernel's state: frozen settings and the shared handles (database, auth,
/// jobs, stream leases).
///
/// Cheap to clone. It is the state of the app's routers (`Router<Kernel>`, the
/// [`Routes`](super::Routes) given to the builder); the extractors take their part
/// of it: [`Db`], `CurrentUser`, [`JobClient`], [`StreamLeases`], or the whole
/// `Kernel`.
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
    auth: Auth,
    jobs: JobClient,
    streams: StreamLeases,
    proxies: TrustedProxies,
    /// Set at SIGTERM: `/readyz` answers 503 from then on.
    draining: std::sync::atomic::AtomicBool,
}

/// The parts of a [`Kernel`], each opened by its concept.
pub(crate) struct KernelParts {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) description: String,
    pub(crate) settings: KernelSettings,
    pub(crate) db: Db,
    pub(crate) health_checks: Vec<HealthCheck>,
    pub(crate) auth: Auth,
    pub(crate) jobs: JobClient,
    pub(crate) streams: StreamLeases,
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
    pub(crate) fn new(p: KernelParts) -> Self {
        let proxies = TrustedProxies::new(&p.settings.server.trusted_proxies);
        Self {
            inner: Arc::new(Inner {
                name: p.name,
                version: p.version,
                description: p.description,
                settings: p.settings,
                db: p.db,
                health_checks: p.health_checks,
                auth: p.auth,
                jobs: p.jobs,
                streams: p.streams,
                proxies,
                draining: std::sync::atomic::AtomicBool::new(false),
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
    pub fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    /// The job client (the spec's `get_job_client()`).
    pub fn jobs(&self) -> &JobClient {
        &self.inner.jobs
    }

    /// The stream lease limiter (the spec's `stream_lease`).
    pub fn streams(&self) -> &StreamLeases {
        &self.inner.streams
    }

    /// A worker for this kernel's jobs, on its database (what the `worker`
    /// command runs).
    pub fn worker(&self) -> Worker {
        Worker::new(self.inner.jobs.clone(), self.inner.db.clone())
    }

    /// Whether the service is shutting down (`/readyz` answers 503).
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn start_draining(&self) {
        self.inner.draining.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn proxies(&self) -> &TrustedProxies {
        &self.inner.proxies
    }

    pub(crate) fn health_checks(&self) -> &[HealthCheck] {
        &self.inner.health_checks
    }
}

// The kernel itself, from the router's state.
state_extractor!(Kernel);

macro_rules! sub_state {
    ($($part:ty => $field:ident),* $(,)?) => {$(
        impl FromRef<Kernel> for $part {
            fn from_ref(kernel: &Kernel) -> Self {
                kernel.inner.$field.clone()
            }
        }
    )*};
}

sub_state!(Db => db, Auth => auth, JobClient => jobs, StreamLeases => streams, TrustedProxies => proxies);
