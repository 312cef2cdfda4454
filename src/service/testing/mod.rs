//! A test kit for apps built on the kernel (cargo feature `test-util`): [`TestApp`]
//! builds your [`ServiceBuilder`] in process on a database of its own and drives it
//! without a port.
//!
//! What it guarantees:
//! - **Isolation.** Each `TestApp` owns a new database: a SQLite file in a directory
//!   of its own (the default), or, given a server URL, a new PostgreSQL schema (the
//!   app's connections select it with `search_path`) or a new MySQL/MariaDB
//!   database. Two apps, in one test or in tests running in parallel, never see each
//!   other's rows.
//! - **Cleanup.** That database is dropped by [`TestApp::cleanup`], or when the app is
//!   dropped, a failed test included.
//! - **The real stack.** Requests go through [`Service::router`]: every middleware
//!   part, the kernel's routes and the app's, as a client over HTTP would meet them,
//!   from the address 127.0.0.1.
//! - **Test settings over the app's.** The app's own configuration (`.config` or
//!   `.settings` on its builder) is kept, except: the test database, a fixed JWT
//!   secret ([`TEST_JWT_SECRET`]), `warn` logs, no Redis (the shared stores live in the
//!   test database or in process), no admin created from `ADMIN_EMAIL`. [`TestAppBuilder::settings`] changes more.
//!
//! ```no_run
//! # async fn demo() {
//! use app_kernel::testing::TestApp;
//! use app_kernel::Service;
//!
//! let app = TestApp::new(Service::builder("my_service")).await;
//! let ann = app.user("ann").await;
//! let me = app.get("/api/v1/auth/me").bearer(&ann.access_token).send().await;
//! assert_eq!(me.json::<serde_json::Value>()["username"], "ann");
//! # }
//! ```
//!
//! Its helpers panic with a message instead of returning errors: they are for tests.

mod request;
mod scratch;

pub use request::{TestRequest, TestResponse};

use axum::Router;
use http::Method;

use crate::auth::{NewUser, UserIdentity, ADMIN_ROLE, USER_ROLE};
use crate::db::{AuditEvent, AuditFilter, AuditLog};
use crate::jobs::RunReport;
use crate::service::{Service, ServiceBuilder};
use crate::settings::KernelSettings;
use crate::Kernel;
use scratch::Scratch;

/// The JWT secret of every [`TestApp`]: tokens signed with it in a test are accepted.
pub const TEST_JWT_SECRET: &str = "app-kernel-test-secret-0123456789abcdef";

/// [`TestApp::run_jobs`] gives up after this many rounds with work in each: a task
/// that enqueues itself forever would otherwise never let the test end.
const MAX_JOB_ROUNDS: usize = 1000;

/// An app built in process for tests, on a database of its own (see the
/// [module docs](self)).
#[derive(Debug)]
pub struct TestApp {
    service: Service,
    router: Router,
    scratch: Scratch,
}

/// A change to the test settings, applied in order by [`TestAppBuilder::build`].
type SettingsEdit = Box<dyn FnOnce(&mut KernelSettings) + Send>;

/// Builds a [`TestApp`] on another database or with other settings.
#[must_use]
pub struct TestAppBuilder {
    service: ServiceBuilder,
    database_url: Option<String>,
    edits: Vec<SettingsEdit>,
}

impl std::fmt::Debug for TestAppBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestAppBuilder").field("service", &self.service).finish_non_exhaustive()
    }
}

/// An account made by [`TestApp::user`] or [`TestApp::admin`], with its tokens.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TestUser {
    /// The user id.
    pub id: String,
    /// The login name.
    pub username: String,
    /// `USERNAME@example.test`.
    pub email: String,
    /// The password, for a test of the login route.
    pub password: String,
    /// `user` or `admin`.
    pub role: String,
    /// An access token (`Authorization: Bearer`).
    pub access_token: String,
    /// A refresh token of a new family.
    pub refresh_token: String,
}

impl TestUser {
    /// The identity handlers see for this user.
    pub fn identity(&self) -> UserIdentity {
        UserIdentity::new(&self.id, &self.username).with_email(&self.email).with_role(&self.role)
    }
}

impl TestAppBuilder {
    /// Runs the app on the server `url` names (`postgres://...`, `mysql://...`), in a
    /// new schema or database created for it, instead of SQLite.
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }

    /// Changes the settings after the test defaults are applied (several calls apply
    /// in order).
    pub fn settings(mut self, edit: impl FnOnce(&mut KernelSettings) + Send + 'static) -> Self {
        self.edits.push(Box::new(edit));
        self
    }

    /// Creates the database and builds the service on it.
    ///
    /// # Panics
    /// The app's settings are invalid, the database cannot be created, or the service
    /// does not build (the message names the [`BootError`](crate::BootError)).
    pub async fn build(self) -> TestApp {
        let Self { service, database_url, edits } = self;
        let mut settings = service.resolved_settings().unwrap_or_else(|e| panic!("TestApp: the app's settings: {e}"));
        let (scratch, database) = match &database_url {
            Some(url) => Scratch::on_server(url).await,
            None => Scratch::sqlite(),
        };
        settings.database = crate::db::DatabaseSettings { schema: settings.database.schema, ..database };
        settings.auth.token_secret = Some(TEST_JWT_SECRET.to_owned().into());
        settings.auth.admin_email = None;
        settings.auth.admin_password = None;
        settings.redis.url = None;
        settings.observability.log_level = "warn".into();
        for edit in edits {
            edit(&mut settings);
        }
        // The scratch lives in this frame until the service is built, so a failed build
        // still drops what it created.
        let service = service.settings(settings).build().await.unwrap_or_else(|e| panic!("TestApp: {e}"));
        let router = service.router();
        TestApp { service, router, scratch }
    }
}

impl TestApp {
    /// `service` built on a new SQLite database with the test settings.
    ///
    /// # Panics
    /// As [`TestAppBuilder::build`].
    pub async fn new(service: ServiceBuilder) -> Self {
        Self::builder(service).build().await
    }

    /// A builder for another database or other settings.
    pub fn builder(service: ServiceBuilder) -> TestAppBuilder {
        TestAppBuilder { service, database_url: None, edits: Vec::new() }
    }

    /// The kernel: database, settings, job client, auth.
    pub fn kernel(&self) -> &Kernel {
        self.service.kernel()
    }

    /// The full router, for `tower::ServiceExt::oneshot` with requests of your own.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// The SQLite file's path, or the PostgreSQL schema's or MySQL database's name.
    pub fn database_name(&self) -> &str {
        self.scratch.name()
    }

    /// A request with `method` to `path` (with its query), sent by
    /// [`TestRequest::send`].
    pub fn request(&self, method: Method, path: &str) -> TestRequest {
        TestRequest::new(self.router.clone(), method, path)
    }

    /// A GET request.
    pub fn get(&self, path: &str) -> TestRequest {
        self.request(Method::GET, path)
    }

    /// A POST request.
    pub fn post(&self, path: &str) -> TestRequest {
        self.request(Method::POST, path)
    }

    /// A PUT request.
    pub fn put(&self, path: &str) -> TestRequest {
        self.request(Method::PUT, path)
    }

    /// A PATCH request.
    pub fn patch(&self, path: &str) -> TestRequest {
        self.request(Method::PATCH, path)
    }

    /// A DELETE request.
    pub fn delete(&self, path: &str) -> TestRequest {
        self.request(Method::DELETE, path)
    }

    /// A new account called `username` (role `user`) and a pair of tokens for it.
    ///
    /// # Panics
    /// The name is taken or invalid (3 to 50 characters), or the app keeps no
    /// accounts (`external` auth mode).
    pub async fn user(&self, username: &str) -> TestUser {
        self.account(username, USER_ROLE).await
    }

    /// As [`user`](Self::user), with role `admin`.
    ///
    /// # Panics
    /// As [`user`](Self::user).
    pub async fn admin(&self, username: &str) -> TestUser {
        self.account(username, ADMIN_ROLE).await
    }

    async fn account(&self, username: &str, role: &str) -> TestUser {
        let auth = self.kernel().auth();
        let users = auth.users().unwrap_or_else(|| panic!("TestApp: this app keeps no accounts (external auth)"));
        let email = format!("{username}@example.test");
        let password = format!("{username}-test-password");
        let new = NewUser { username, email: Some(&email), password: &password, role };
        let created = users.create_user(&new).await.unwrap_or_else(|e| panic!("TestApp: user {username}: {e}"));
        let stored = users.get_user(&created.id).await.ok().flatten().expect("TestApp: a user just created");
        let pair = users
            .issue_pair(auth.tokens(), &stored, None)
            .await
            .unwrap_or_else(|e| panic!("TestApp: tokens for {username}: {e}"));
        TestUser {
            id: created.id,
            username: created.username,
            email,
            password,
            role: role.to_owned(),
            access_token: pair.access.token,
            refresh_token: pair.refresh.token,
        }
    }

    /// Runs the enqueued jobs that are due, and those they enqueue, until none is
    /// due; returns what ran, by job id. A failed job whose retry is not yet due shows
    /// in `retried` and is not waited for.
    ///
    /// # Panics
    /// The queue fails, or jobs keep coming after 1000 rounds.
    pub async fn run_jobs(&self) -> RunReport {
        let worker = self.kernel().worker();
        let mut all = RunReport::default();
        for _ in 0..MAX_JOB_ROUNDS {
            let round = worker.run_once().await.unwrap_or_else(|e| panic!("TestApp: running jobs: {e}"));
            if round.ran() == 0 {
                return all;
            }
            all.completed.extend(round.completed);
            all.retried.extend(round.retried);
            all.dead.extend(round.dead);
            all.lost.extend(round.lost);
        }
        panic!("TestApp: jobs were still due after {MAX_JOB_ROUNDS} rounds (a task that enqueues itself?)");
    }

    /// The whole audit trail, oldest first.
    ///
    /// # Panics
    /// The database fails.
    pub async fn audit(&self) -> Vec<AuditEvent> {
        let log = AuditLog::new(self.kernel().db().clone());
        let filter = AuditFilter { limit: Some(500), ..AuditFilter::default() };
        let (mut events, mut cursor) = (Vec::new(), None);
        loop {
            let page = log.query(&filter, cursor.as_deref()).await.unwrap_or_else(|e| panic!("TestApp: audit: {e}"));
            events.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        events.reverse();
        events
    }

    /// Closes the app's connections and drops its database now (dropping the app does
    /// the same, without waiting for the pool to close).
    pub async fn cleanup(self) {
        let Self { service, router, scratch } = self;
        drop(router);
        service.kernel().db().close().await;
        drop(service);
        scratch.remove().await;
    }
}
