//! Names that are API: metric names, label names, log targets. Dashboards and
//! alerts depend on them; change them only with a major version.

/// Counter: finished HTTP requests, by `method`, `route`, `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "http_requests_total";
/// Histogram: HTTP request latency in seconds, by `method`, `route`, `status`.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "http_request_duration_seconds";
/// Gauge: HTTP requests being served.
pub const HTTP_REQUESTS_IN_FLIGHT: &str = "http_requests_in_flight";
/// Counter: readiness checks that failed, by `check`.
pub const READINESS_CHECK_FAILURES_TOTAL: &str = "kernel_readiness_check_failures_total";

/// Counter: entity saves refused by the schema policy or the field-name rules, by
/// `table` and `reason` (the refusal's code: `unknown_fields`, `too_many_columns`, ...).
pub const ENTITY_SCHEMA_REFUSALS_TOTAL: &str = "kernel_entity_schema_refusals_total";

/// Counter (development only, `DEBUG`): filtered finds that read every row of a large
/// table, by `table`.
pub const ENTITY_FULL_SCANS_TOTAL: &str = "kernel_entity_full_scans_total";

/// Label: HTTP method.
pub const LABEL_METHOD: &str = "method";
/// Label: the matched route template (`/api/v1/widgets/{id}`), never the raw path.
pub const LABEL_ROUTE: &str = "route";
/// Label: HTTP status code.
pub const LABEL_STATUS: &str = "status";
/// The `route` of a request that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Audit action: a successful login (actor: the user).
pub const AUDIT_LOGIN: &str = "auth.login";
/// Audit action: a refused login (no actor; details carry the username tried, never the password).
pub const AUDIT_LOGIN_FAILED: &str = "auth.login_failed";
/// Audit action: a self-registered account.
pub const AUDIT_REGISTER: &str = "auth.register";
/// Audit action: a password change (all refresh tokens revoked).
pub const AUDIT_PASSWORD_CHANGE: &str = "auth.password_change";
/// Audit action: an API key was created (never the key itself).
pub const AUDIT_API_KEY_CREATE: &str = "auth.api_key.create";
/// Audit action: an API key was revoked.
pub const AUDIT_API_KEY_REVOKE: &str = "auth.api_key.revoke";
/// Audit action: an existing account was made an admin by `promote-admin`.
pub const AUDIT_ADMIN_PROMOTE: &str = "auth.admin_promote";
/// Audit action: an admin retried a failed or dead job (the jobs view).
pub const AUDIT_JOB_RETRY: &str = "jobs.retry";
/// Audit action: an admin cancelled a waiting job (the jobs view).
pub const AUDIT_JOB_CANCEL: &str = "jobs.cancel";
/// Audit action: an admin purged finished jobs (the jobs view).
pub const AUDIT_JOBS_PURGE: &str = "jobs.purge";

/// Log target of the one line per request.
pub const ACCESS_LOG_TARGET: &str = "http.access";
