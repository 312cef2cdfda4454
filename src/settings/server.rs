//! Server, features, stack, CORS and security-header settings: the part of
//! [`KernelSettings`](super::KernelSettings) the service and its stack read.

use std::time::Duration;

use crate::auth::AuthMode;

/// Where the server listens and what it accepts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerSettings {
    /// Bind address (default `127.0.0.1`).
    pub host: String,
    /// Bind port (default 8000; 0 picks a free one).
    pub port: u16,
    /// Prefix of app routers and kernel API routes (default `/api/v1`).
    pub api_prefix: String,
    /// Largest request body in bytes (default 1 MiB); larger gets 413.
    pub max_body_bytes: usize,
    /// Longest a request may take (default 30 s); then 503 `request_timeout`.
    pub request_timeout: Duration,
    /// How long in-flight requests may run after SIGTERM (default 30 s).
    pub shutdown_grace: Duration,
    /// After SIGTERM, how long the server keeps accepting connections while
    /// `/readyz` answers 503 (default 0): the time a load balancer needs to see the
    /// instance unready and stop sending it new clients. Then the listener closes
    /// and in-flight requests get `shutdown_grace`.
    pub drain_delay: Duration,
    /// How long a client has to send a whole request head, counted from when the
    /// server starts waiting for it (default 10 s; `None` turns it off): a partial
    /// or trickled head is cut off, and an HTTP/1 keep-alive connection waiting for
    /// its next request is closed after it too (hyper counts both the same way), as
    /// is a connection that sends nothing at all.
    pub header_read_timeout: Option<Duration>,
    /// A connection on which no byte moves either way for this long is closed
    /// (default 60 s; `None` turns it off): a stalled upload, a client that stops
    /// reading, an idle HTTP/2 or upgraded connection.
    pub idle_timeout: Option<Duration>,
    /// Connections served at once (default 1024); further clients wait in the
    /// listen backlog until one closes. Keep it under the process's file limit.
    pub max_connections: usize,
    /// Proxies whose `X-Forwarded-For` is believed (default none): a request from one
    /// of these addresses or networks is attributed to the last address in that
    /// header that is not a trusted proxy (for the rate limit, the login throttle and
    /// `internal` metrics).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Where the `worker` role serves its own `/metrics` and `/healthz` (default
    /// `None`: it serves no HTTP). `WORKER_HTTP_ADDR`; a port alone binds loopback.
    pub worker_http_addr: Option<std::net::SocketAddr>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8000,
            api_prefix: "/api/v1".into(),
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            drain_delay: Duration::ZERO,
            header_read_timeout: Some(Duration::from_secs(10)),
            idle_timeout: Some(Duration::from_secs(60)),
            max_connections: 1024,
            trusted_proxies: Vec::new(),
            worker_http_addr: None,
        }
    }
}

/// Who may read `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetricsProtection {
    /// An admin bearer token or API key (the default).
    #[default]
    Admin,
    /// Requests from a loopback or private address.
    Internal,
    /// Anyone.
    None,
}

impl MetricsProtection {
    /// Parses `admin`, `internal` or `none`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "admin" => Some(Self::Admin),
            "internal" => Some(Self::Internal),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

/// Which kernel routes are mounted, and where (the spec's `FeatureSettings`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FeatureSettings {
    /// Mount `/healthz` and `/readyz` (default on).
    pub enable_health_routes: bool,
    /// Liveness path.
    pub health_path: String,
    /// Readiness path.
    pub ready_path: String,
    /// Longest one readiness check may take (default 2 s).
    pub ready_check_timeout: Duration,
    /// Mount `/metrics` (default on).
    pub enable_metrics: bool,
    /// Metrics path.
    pub metrics_path: String,
    /// Who may read metrics (default admin).
    pub protect_metrics: MetricsProtection,
    /// Mount the auth routes in local mode (default on).
    pub enable_auth_routes: bool,
    /// How callers authenticate (default local).
    pub auth_mode: AuthMode,
    /// Allow `POST /auth/register` (default off).
    pub allow_self_signup: bool,
    /// Auth routes' prefix under `api_prefix` (default `/auth`).
    pub auth_prefix: String,
    /// Mount `GET /audit` for admins (default off).
    pub enable_audit_routes: bool,
    /// Mount the admins' jobs view: the JSON routes under `{api_prefix}/admin/jobs`
    /// and the page at `/admin/jobs` (default on; every route requires an admin).
    pub enable_jobs_admin: bool,
    /// Mount `/openapi.json` and `/docs` (default on).
    pub enable_docs: bool,
    /// OpenAPI document path.
    pub openapi_path: String,
    /// Swagger UI path.
    pub docs_path: String,
}

impl Default for FeatureSettings {
    fn default() -> Self {
        Self {
            enable_health_routes: true,
            health_path: "/healthz".into(),
            ready_path: "/readyz".into(),
            ready_check_timeout: Duration::from_secs(2),
            enable_metrics: true,
            metrics_path: "/metrics".into(),
            protect_metrics: MetricsProtection::Admin,
            enable_auth_routes: true,
            auth_mode: AuthMode::Local,
            allow_self_signup: false,
            auth_prefix: "/auth".into(),
            enable_audit_routes: false,
            enable_jobs_admin: true,
            enable_docs: true,
            openapi_path: "/openapi.json".into(),
            docs_path: "/docs".into(),
        }
    }
}

/// Cross-origin requests.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CorsSettings {
    /// `["*"]` (the default): any origin, never with credentials. A list: those
    /// origins only, with credentials.
    pub origins: Vec<String>,
    /// Seconds a preflight answer may be cached (default 600).
    pub max_age_secs: u64,
}

impl Default for CorsSettings {
    fn default() -> Self {
        Self { origins: vec!["*".into()], max_age_secs: 600 }
    }
}

impl CorsSettings {
    /// Whether any origin is allowed (which rules out credentials).
    pub fn is_wildcard(&self) -> bool {
        self.origins.iter().any(|o| o == "*")
    }
}

/// Headers that harden every response.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SecurityHeadersSettings {
    /// Send `Strict-Transport-Security` (default off: turn on behind HTTPS).
    pub hsts: bool,
    /// `max-age` of HSTS in seconds (default one year).
    pub hsts_max_age_secs: u64,
    /// `Content-Security-Policy` of API responses (not `/docs`).
    pub content_security_policy: String,
}

impl Default for SecurityHeadersSettings {
    fn default() -> Self {
        Self {
            hsts: false,
            hsts_max_age_secs: 31_536_000,
            content_security_policy: "default-src 'none'; frame-ancestors 'none'".into(),
        }
    }
}

/// Each part of the middleware stack, switchable. All on by default.
#[derive(Debug, Clone)]
#[non_exhaustive]
#[allow(clippy::struct_excessive_bools)]
pub struct StackSettings {
    /// Accept or assign `X-Request-ID`.
    pub request_id: bool,
    /// One log line per request.
    pub access_log: bool,
    /// Request count, latency and in-flight metrics.
    pub http_metrics: bool,
    /// `nosniff`, `DENY`, referrer policy, CSP, cache control, HSTS.
    pub security_headers: bool,
    /// CORS per [`CorsSettings`].
    pub cors: bool,
    /// 413 past `max_body_bytes`.
    pub body_limit: bool,
    /// 503 past `request_timeout`.
    pub timeout: bool,
    /// A panic becomes a 500 problem+json.
    pub catch_panic: bool,
}

impl Default for StackSettings {
    fn default() -> Self {
        Self {
            request_id: true,
            access_log: true,
            http_metrics: true,
            security_headers: true,
            cors: true,
            body_limit: true,
            timeout: true,
            catch_panic: true,
        }
    }
}
