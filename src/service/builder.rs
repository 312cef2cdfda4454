//! [`ServiceBuilder`]: the spec's `create_service`, as a builder.

use std::future::Future;

use axum::Router;
use futures::future::BoxFuture;

use super::kernel::KernelParts;
use super::BootError;
use super::{docs, routes, stack, Kernel, Routes, Service};
use crate::db::Db;
use crate::error::ApiError;
use crate::observability::health::{CheckResult, HealthCheck};
use crate::observability::{logging, metrics};
use crate::settings::{KernelSettings, ServiceConfig};

/// What a start-up or shutdown hook returns; any error type converts with `?`.
pub type HookResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

type Hook<T> = Box<dyn FnOnce(T) -> BoxFuture<'static, HookResult> + Send>;

fn hook<T, F, Fut>(f: F) -> Hook<T>
where
    F: FnOnce(T) -> Fut + Send + 'static,
    Fut: Future<Output = HookResult> + Send + 'static,
{
    Box::new(move |t| Box::pin(f(t)))
}

/// Builds a [`Service`]: routers, configuration, hooks, checks.
///
/// ```no_run
/// # async fn run() -> Result<(), app_kernel::BootError> {
/// use app_kernel::{Routes, Service, ServiceConfig};
/// use axum::routing::get;
///
/// let widgets = Routes::new().route("/widgets", get(|| async { "[]" }));
/// Service::builder("widget_service")
///     .config(ServiceConfig::from_env()?)
///     .routes(widgets) // served at /api/v1/widgets
///     .build()
///     .await?
///     .serve()
///     .await
/// # }
/// ```
#[must_use]
pub struct ServiceBuilder {
    name: String,
    version: String,
    description: String,
    config: Option<ServiceConfig>,
    settings: Option<KernelSettings>,
    routes: Routes,
    routers: Vec<Router<Kernel>>,
    root_routers: Vec<Router<Kernel>>,
    openapi: Vec<utoipa::openapi::OpenApi>,
    schema_init: Option<Hook<Db>>,
    migrations: Option<crate::db::Migrations>,
    tables: Vec<crate::db::EntityTable>,
    health_checks: Vec<HealthCheck>,
    on_startup: Vec<Hook<Kernel>>,
    on_shutdown: Vec<Hook<Kernel>>,
    tasks: crate::jobs::JobRegistry,
}

impl std::fmt::Debug for ServiceBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceBuilder").field("name", &self.name).finish_non_exhaustive()
    }
}

impl ServiceBuilder {
    pub(super) fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: "1.0.0".into(),
            description: String::new(),
            config: None,
            settings: None,
            routes: Routes::new(),
            routers: Vec::new(),
            root_routers: Vec::new(),
            openapi: Vec::new(),
            schema_init: None,
            migrations: None,
            tables: Vec::new(),
            health_checks: Vec::new(),
            on_startup: Vec::new(),
            on_shutdown: Vec::new(),
            tasks: crate::jobs::JobRegistry::new(),
        }
    }

    /// The spec's flat configuration (default: `ServiceConfig::default()`).
    pub fn config(mut self, config: ServiceConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Explicit kernel settings; they win over [`config`](Self::config).
    pub fn settings(mut self, settings: KernelSettings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// App routes, each registered under `api_prefix` (default `/api/v1`) at its
    /// full path: the cheapest way to serve them (see [`Routes`]).
    pub fn routes(mut self, routes: Routes) -> Self {
        self.routes = self.routes.merge(routes);
        self
    }

    /// An axum router, nested under `api_prefix` (default `/api/v1`): for a router
    /// with its own layers or fallback. axum serves a nested route through a
    /// prefix-stripping layer; plain routes are cheaper as [`Routes`](Self::routes).
    pub fn router(mut self, router: Router<Kernel>) -> Self {
        self.routers.push(router);
        self
    }

    /// An app router mounted at the root as it is (manual initialization).
    pub fn root_router(mut self, router: Router<Kernel>) -> Self {
        self.root_routers.push(router);
        self
    }

    /// OpenAPI paths and schemas of the app's routes, merged into `/openapi.json`.
    pub fn openapi(mut self, doc: utoipa::openapi::OpenApi) -> Self {
        self.openapi.push(doc);
        self
    }

    /// An entity table the app's routes use, with its fields and indexes: created, or
    /// completed with the columns and indexes it lacks, at start-up before
    /// `schema_init` (safe when several instances start at once). With the default
    /// schema policy (closed) the entity API saves only into declared columns.
    pub fn table(mut self, table: crate::db::EntityTable) -> Self {
        self.tables.push(table);
        self
    }

    /// Versioned SQL migrations ([`migrations!`](crate::migrations) or
    /// [`Migrations::from_dir`](crate::db::Migrations::from_dir)): the pending ones are
    /// applied at start-up, one runner at a time across instances, after the kernel's own
    /// tables and before declared tables and `schema_init`; also `migrate` and `migrate status`.
    pub fn migrations(mut self, migrations: crate::db::Migrations) -> Self {
        self.migrations = Some(migrations);
        self
    }

    /// Run once at start-up with the database, before serving (the spec's `schema_init`).
    pub fn schema_init<F, Fut>(mut self, f: F) -> Self
    where
        F: FnOnce(Db) -> Fut + Send + 'static,
        Fut: Future<Output = HookResult> + Send + 'static,
    {
        self.schema_init = Some(hook(f));
        self
    }

    /// A readiness check reported by `/readyz` under `name`.
    pub fn health_check<F, Fut>(mut self, name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CheckResult> + Send + 'static,
    {
        self.health_checks.push(HealthCheck::new(name, check));
        self
    }

    /// Run after the kernel is up, before serving.
    pub fn on_startup<F, Fut>(mut self, f: F) -> Self
    where
        F: FnOnce(Kernel) -> Fut + Send + 'static,
        Fut: Future<Output = HookResult> + Send + 'static,
    {
        self.on_startup.push(hook(f));
        self
    }

    /// Run after the server stopped, before the pools close.
    pub fn on_shutdown<F, Fut>(mut self, f: F) -> Self
    where
        F: FnOnce(Kernel) -> Fut + Send + 'static,
        Fut: Future<Output = HookResult> + Send + 'static,
    {
        self.on_shutdown.push(hook(f));
        self
    }

    /// A background task, run by the `worker` command (the spec's `tasks={...}`).
    pub fn task<P, R, E, F, Fut>(mut self, name: impl Into<String>, handler: F) -> Self
    where
        P: serde::de::DeserializeOwned + Send + 'static,
        R: serde::Serialize + Send + 'static,
        E: Into<crate::jobs::TaskError> + Send + 'static,
        F: Fn(P, crate::jobs::JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        self.tasks.register(name, handler);
        self
    }

    /// Every task of `registry`.
    pub fn tasks(mut self, registry: crate::jobs::JobRegistry) -> Self {
        self.tasks.merge(registry);
        self
    }

    /// The API version (default `1.0.0`).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// The API description shown in the docs.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Validates the settings, opens the database, runs `schema_init` and the
    /// start-up hooks, and assembles the router.
    ///
    /// # Errors
    /// A [`BootError`] naming the setting or hook at fault.
    pub async fn build(self) -> Result<Service, BootError> {
        let (kernel, http) = self.start_kernel().await?;
        let routes = http.routes.merge(crate::jobs::routes::routes());
        let settings = kernel.settings();
        let (redis, prefix) = (redis_url(settings), &settings.redis.key_prefix);
        let reliability = crate::reliability::Parts::open(&settings.reliability, redis, prefix, kernel.db()).await?;
        let (router, stack) = assemble(&kernel, routes, http.routers, http.root_routers, http.openapi, reliability);
        tracing::info!(service = kernel.name(), stack = %stack.join(" > "), "kernel ready");
        Ok(Service { kernel, router, stack, on_shutdown: http.on_shutdown })
    }

    /// The kernel alone (settings, database, migrations, tables, auth, jobs, leases,
    /// start-up hooks), without the HTTP side: what the `worker` and the admin
    /// commands run on. The HTTP parts come back unused.
    pub(super) async fn start_kernel(self) -> Result<(Kernel, HttpParts), BootError> {
        let http = HttpParts {
            routes: self.routes,
            routers: self.routers,
            root_routers: self.root_routers,
            openapi: self.openapi,
            on_shutdown: self.on_shutdown,
        };
        let settings = match self.settings {
            Some(s) => {
                s.validate()?;
                s
            }
            None => self.config.unwrap_or_default().into_settings(&self.name)?,
        };
        // Before the subscriber, which then also exports the app's spans.
        let exporting = crate::observability::otel::start(&self.name);
        logging::init(&settings.observability);
        match exporting {
            Ok(true) => tracing::info!("exporting spans over OTLP"),
            Ok(false) => {}
            Err(why) => tracing::warn!(reason = %why, "OTLP export off"),
        }
        let _ = metrics::prometheus();
        let mut database = settings.database.clone();
        database.warn_full_scans |= settings.debug; // a development aid: see db::DatabaseSettings
        let db = Db::connect(&database, &self.name).await?;
        let (redis, prefix) = (redis_url(&settings), &settings.redis.key_prefix);
        let auth = crate::auth::open(&settings.auth, settings.features.auth_mode, &db, redis, prefix).await?;
        if let Some(migrations) = &self.migrations {
            db.migrate(migrations).await?;
        }
        for table in &self.tables {
            db.declare(table).await?;
        }
        if let Some(init) = self.schema_init {
            init(db.clone()).await.map_err(|e| BootError::Hook { stage: "schema_init", message: e.to_string() })?;
        }
        let jobs = crate::jobs::JobClient::from_settings(&settings.jobs, db.clone(), self.tasks, redis, prefix).await?;
        let streams = crate::streaming::open(&settings.streaming, redis, prefix, &db).await?;
        let health_checks = self.health_checks;
        #[cfg(feature = "redis")]
        let health_checks = match redis {
            Some(url) => {
                let check =
                    crate::redis_conn::readiness_check(url).await.map_err(|e| BootError::Redis(e.to_string()))?;
                std::iter::once(check).chain(health_checks).collect()
            }
            None => health_checks,
        };
        let kernel = Kernel::new(KernelParts {
            name: self.name,
            version: self.version,
            description: self.description,
            settings,
            db,
            health_checks,
            auth,
            jobs,
            streams,
        });
        for startup in self.on_startup {
            startup(kernel.clone())
                .await
                .map_err(|e| BootError::Hook { stage: "on_startup", message: e.to_string() })?;
        }
        Ok((kernel, http))
    }
}

/// What only the HTTP side of a service uses.
pub(super) struct HttpParts {
    routes: Routes,
    routers: Vec<Router<Kernel>>,
    root_routers: Vec<Router<Kernel>>,
    openapi: Vec<utoipa::openapi::OpenApi>,
    on_shutdown: Vec<Hook<Kernel>>,
}

impl ServiceBuilder {
    /// The settings [`build`](Self::build) would start with: the explicit settings, else
    /// the configuration's, validated.
    pub(crate) fn resolved_settings(&self) -> Result<KernelSettings, BootError> {
        match &self.settings {
            Some(s) => {
                s.validate()?;
                Ok(s.clone())
            }
            None => Ok(self.config.clone().unwrap_or_default().into_settings(&self.name)?),
        }
    }

    /// The `migrate` command: with `status_only`, prints each migration's state and
    /// changes nothing (no kernel start-up); otherwise starts the kernel (which applies
    /// the pending migrations, then declared tables and `schema_init`) and prints the
    /// state after. Exit status 1 when an applied file changed or is gone.
    pub(super) async fn migrate_command(self, status_only: bool) -> Result<(), BootError> {
        let migrations = self.migrations.clone().unwrap_or_default();
        let db = if status_only {
            Db::connect(&self.resolved_settings()?.database, &self.name).await?
        } else {
            self.start_kernel().await?.0.db().clone()
        };
        let status = db.migration_status(&migrations).await;
        db.close().await;
        let status = status?;
        print!("{}", super::cli::status_table(&status));
        let applied_or_pending = [crate::db::MigrationState::Applied, crate::db::MigrationState::Pending];
        let broken = status.iter().filter(|s| !applied_or_pending.contains(&s.state)).count();
        if broken > 0 {
            let message = format!("{broken} applied migration(s) changed or missing; start-up refuses to run");
            return Err(BootError::Command { command: "migrate", message });
        }
        Ok(())
    }
}

fn assemble(
    kernel: &Kernel,
    app_routes: Routes,
    routers: Vec<Router<Kernel>>,
    root: Vec<Router<Kernel>>,
    openapi: Vec<utoipa::openapi::OpenApi>,
    reliability: crate::reliability::Parts,
) -> (Router, Vec<&'static str>) {
    let settings = kernel.settings();
    let prefix = &settings.server.api_prefix;
    let mut doc = utoipa::openapi::OpenApi::default();
    let mut app = routes::kernel_routes(kernel, &mut doc);
    app = app_routes.mount(app, prefix, &mut doc);
    if !routers.is_empty() {
        let api = routers.into_iter().fold(Router::new(), Router::merge);
        app = if prefix.is_empty() { app.merge(api) } else { app.nest(prefix, api) };
    }
    for r in root {
        app = app.merge(r);
    }
    if settings.features.enable_docs {
        app = app.merge(docs::routes(kernel, docs::document(kernel, doc, openapi)));
    }
    let app = app.fallback(|| async { ApiError::not_found("No route matches this path") }).with_state(kernel.clone());
    stack::apply(app, kernel, reliability)
}

pub(super) async fn run_hooks(hooks: Vec<Hook<Kernel>>, kernel: &Kernel) {
    for h in hooks {
        if let Err(e) = h(kernel.clone()).await {
            tracing::error!(error = %e, "on_shutdown hook failed");
        }
    }
}

/// The Redis URL, when one is set: the shared stores' home.
fn redis_url(settings: &KernelSettings) -> Option<&str> {
    use secrecy::ExposeSecret;
    settings.redis.url.as_ref().map(|url| url.expose_secret())
}
