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

/// Counter: jobs enqueued, by `task` (`enqueue_in` counts at the insert, even if the
/// app's transaction is rolled back later).
pub const JOBS_ENQUEUED_TOTAL: &str = "kernel_jobs_enqueued_total";
/// Counter: job attempts a worker started, by `task` (an attempt whose ack was refused
/// because its lease passed to another worker is counted here only).
pub const JOBS_STARTED_TOTAL: &str = "kernel_jobs_started_total";
/// Counter: jobs that finished successfully, by `task`.
pub const JOBS_COMPLETED_TOTAL: &str = "kernel_jobs_completed_total";
/// Counter: job attempts that failed (an error, a panic, a timeout), by `task`; each is
/// then retried or dead.
pub const JOBS_FAILED_TOTAL: &str = "kernel_jobs_failed_total";
/// Counter: failed attempts that will be retried, by `task`.
pub const JOBS_RETRIED_TOTAL: &str = "kernel_jobs_retried_total";
/// Counter: jobs that failed their last attempt, by `task`.
pub const JOBS_DEAD_TOTAL: &str = "kernel_jobs_dead_total";
/// Histogram: seconds from when a job was due (`run_at`: its enqueue, its delay or its
/// retry time) to its claim by a worker, by `task`. A job claimed again after a lease
/// expired counts from its `run_at` too.
pub const JOBS_PICKUP_LATENCY_SECONDS: &str = "kernel_jobs_pickup_latency_seconds";
/// Histogram: seconds one attempt of a job ran, by `task`.
pub const JOBS_RUN_DURATION_SECONDS: &str = "kernel_jobs_run_duration_seconds";
/// Gauge: unfinished jobs in the queue, by `state`: `due` (pending or retrying, their
/// `run_at` come), `scheduled` (their `run_at` ahead), `running`; sampled at scrape time,
/// at most every few seconds.
pub const JOBS_QUEUE_DEPTH: &str = "kernel_jobs_queue_depth";

/// Gauge: the database pool's connections, by `engine` and `state` (`in_use`, `idle`),
/// sampled at scrape time.
pub const DB_POOL_CONNECTIONS: &str = "kernel_db_pool_connections";
/// Counter: statements that waited for a pool connection (none was free), by `engine`.
/// On PostgreSQL and MySQL the start of a transaction is not counted (sqlx opens it on
/// a connection of its own choosing); on SQLite it is (it waits for the writer).
pub const DB_POOL_ACQUIRE_WAITS_TOTAL: &str = "kernel_db_pool_acquire_waits_total";
/// Histogram: seconds a statement waited for a pool connection, by `engine` (only the
/// waits: a connection that was free at once is not recorded).
pub const DB_POOL_ACQUIRE_WAIT_SECONDS: &str = "kernel_db_pool_acquire_wait_seconds";
/// Counter: statements the database refused or could not run, by `kind` (`query`,
/// `conflict`, `connect`, `closed`, `schema_changed`, `other`).
pub const DB_QUERY_ERRORS_TOTAL: &str = "kernel_db_query_errors_total";

/// Counter: requests refused by the rate limiter (429).
pub const RATE_LIMIT_REFUSALS_TOTAL: &str = "kernel_rate_limit_refusals_total";
/// Counter: requests let through unlimited because the rate limit store failed.
pub const RATE_LIMIT_STORE_FAILURES_TOTAL: &str = "kernel_rate_limit_store_failures_total";
/// Counter: responses replayed for a repeated `Idempotency-Key`.
pub const IDEMPOTENCY_REPLAYS_TOTAL: &str = "kernel_idempotency_replays_total";
/// Counter: requests refused for their `Idempotency-Key`, by `reason` (`in_progress`,
/// `key_reused`, `response_not_kept`).
pub const IDEMPOTENCY_CONFLICTS_TOTAL: &str = "kernel_idempotency_conflicts_total";
/// Counter: idempotency store operations that failed (the request ran without its key).
pub const IDEMPOTENCY_STORE_FAILURES_TOTAL: &str = "kernel_idempotency_store_failures_total";

/// Counter: login attempts, by `outcome` (`success`, `bad_credentials`, `throttled`,
/// `busy`, `invalid`, `error`).
pub const AUTH_LOGINS_TOTAL: &str = "kernel_auth_logins_total";

/// Label: a job's registered task name.
pub const LABEL_TASK: &str = "task";
/// Label: the database engine (`sqlite`, `postgres`, `mysql`).
pub const LABEL_ENGINE: &str = "engine";
/// Label: a pool connection's state (`in_use`, `idle`), a queued job's (`due`,
/// `scheduled`, `running`).
pub const LABEL_STATE: &str = "state";
/// Label: the kind of a failure.
pub const LABEL_KIND: &str = "kind";
/// Label: why a request was refused.
pub const LABEL_REASON: &str = "reason";
/// Label: how an attempt ended.
pub const LABEL_OUTCOME: &str = "outcome";

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

/// What a metric family is, as Prometheus's `# TYPE` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up (`_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets (`_bucket`, `_sum`, `_count`).
    Histogram,
}

impl MetricKind {
    /// Its `# TYPE` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// One metric family the kernel exports: the README's `## Metrics` table and the
/// `# HELP` lines both come from [`METRICS`].
#[derive(Debug, Clone, Copy)]
pub struct MetricDoc {
    /// Its name (units in the name: `_seconds`, `_bytes`, `_total`).
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// Its labels, each with a bounded set of values.
    pub labels: &'static [&'static str],
    /// What it counts or measures (its `# HELP`).
    pub help: &'static str,
}

const fn doc(name: &'static str, kind: MetricKind, labels: &'static [&'static str], help: &'static str) -> MetricDoc {
    MetricDoc { name, kind, labels, help }
}

use MetricKind::{Counter, Gauge, Histogram};

/// Every metric family the kernel exports, in the order the README lists them. The
/// `process_*` families come from the `metrics-process` collector, sampled at scrape time.
pub const METRICS: &[MetricDoc] = &[
    doc(HTTP_REQUESTS_TOTAL, Counter, &[LABEL_METHOD, LABEL_ROUTE, LABEL_STATUS], "Finished HTTP requests"),
    doc(
        HTTP_REQUEST_DURATION_SECONDS,
        Histogram,
        &[LABEL_METHOD, LABEL_ROUTE, LABEL_STATUS],
        "HTTP request latency in seconds",
    ),
    doc(HTTP_REQUESTS_IN_FLIGHT, Gauge, &[], "HTTP requests being served"),
    doc(READINESS_CHECK_FAILURES_TOTAL, Counter, &["check"], "Readiness checks that failed"),
    doc(ENTITY_SCHEMA_REFUSALS_TOTAL, Counter, &["table", LABEL_REASON], "Entity saves refused by the schema policy"),
    doc(
        ENTITY_FULL_SCANS_TOTAL,
        Counter,
        &["table"],
        "Filtered finds that read every row of a large table (DEBUG only)",
    ),
    doc(JOBS_ENQUEUED_TOTAL, Counter, &[LABEL_TASK], "Jobs enqueued"),
    doc(JOBS_STARTED_TOTAL, Counter, &[LABEL_TASK], "Job attempts started by a worker"),
    doc(JOBS_COMPLETED_TOTAL, Counter, &[LABEL_TASK], "Jobs that finished successfully"),
    doc(JOBS_FAILED_TOTAL, Counter, &[LABEL_TASK], "Job attempts that failed (then retried or dead)"),
    doc(JOBS_RETRIED_TOTAL, Counter, &[LABEL_TASK], "Failed job attempts that will be retried"),
    doc(JOBS_DEAD_TOTAL, Counter, &[LABEL_TASK], "Jobs that failed their last attempt"),
    doc(JOBS_PICKUP_LATENCY_SECONDS, Histogram, &[LABEL_TASK], "Seconds from a job's run_at to its claim by a worker"),
    doc(JOBS_RUN_DURATION_SECONDS, Histogram, &[LABEL_TASK], "Seconds one job attempt ran"),
    doc(
        JOBS_QUEUE_DEPTH,
        Gauge,
        &[LABEL_STATE],
        "Unfinished jobs by state (due, scheduled, running), sampled at scrape",
    ),
    doc(DB_POOL_CONNECTIONS, Gauge, &[LABEL_ENGINE, LABEL_STATE], "Database pool connections by state (in_use, idle)"),
    doc(DB_POOL_ACQUIRE_WAITS_TOTAL, Counter, &[LABEL_ENGINE], "Statements that waited for a pool connection"),
    doc(DB_POOL_ACQUIRE_WAIT_SECONDS, Histogram, &[LABEL_ENGINE], "Seconds a statement waited for a pool connection"),
    doc(DB_QUERY_ERRORS_TOTAL, Counter, &[LABEL_KIND], "Statements that failed, by kind"),
    doc(RATE_LIMIT_REFUSALS_TOTAL, Counter, &[], "Requests refused by the rate limiter"),
    doc(RATE_LIMIT_STORE_FAILURES_TOTAL, Counter, &[], "Requests let through unlimited: the rate limit store failed"),
    doc(IDEMPOTENCY_REPLAYS_TOTAL, Counter, &[], "Responses replayed for a repeated Idempotency-Key"),
    doc(IDEMPOTENCY_CONFLICTS_TOTAL, Counter, &[LABEL_REASON], "Requests refused for their Idempotency-Key"),
    doc(IDEMPOTENCY_STORE_FAILURES_TOTAL, Counter, &[], "Idempotency store operations that failed"),
    doc(AUTH_LOGINS_TOTAL, Counter, &[LABEL_OUTCOME], "Login attempts by outcome"),
    doc(PROCESS_RESIDENT_MEMORY_BYTES, Gauge, &[], "Resident memory size in bytes"),
    doc(PROCESS_VIRTUAL_MEMORY_BYTES, Gauge, &[], "Virtual memory size in bytes"),
    doc(PROCESS_VIRTUAL_MEMORY_MAX_BYTES, Gauge, &[], "Virtual memory limit in bytes (when one is set)"),
    doc(PROCESS_CPU_SECONDS_TOTAL, Counter, &[], "User and system CPU time spent in seconds"),
    doc(PROCESS_OPEN_FDS, Gauge, &[], "Open file descriptors"),
    doc(PROCESS_MAX_FDS, Gauge, &[], "Maximum number of open file descriptors"),
    doc(PROCESS_START_TIME_SECONDS, Gauge, &[], "Start time of the process since the Unix epoch in seconds"),
    doc(PROCESS_THREADS, Gauge, &[], "Threads of the process"),
];

/// Gauge: resident memory in bytes.
pub const PROCESS_RESIDENT_MEMORY_BYTES: &str = "process_resident_memory_bytes";
/// Gauge: virtual memory in bytes.
pub const PROCESS_VIRTUAL_MEMORY_BYTES: &str = "process_virtual_memory_bytes";
/// Gauge: the virtual memory limit in bytes.
pub const PROCESS_VIRTUAL_MEMORY_MAX_BYTES: &str = "process_virtual_memory_max_bytes";
/// Counter: CPU time (user and system) in seconds.
pub const PROCESS_CPU_SECONDS_TOTAL: &str = "process_cpu_seconds_total";
/// Gauge: open file descriptors.
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";
/// Gauge: the open file descriptor limit.
pub const PROCESS_MAX_FDS: &str = "process_max_fds";
/// Gauge: the process's start, in seconds since the Unix epoch.
pub const PROCESS_START_TIME_SECONDS: &str = "process_start_time_seconds";
/// Gauge: the process's threads.
pub const PROCESS_THREADS: &str = "process_threads";

/// The `## Metrics` table of the README: one row per family of [`METRICS`].
pub fn metrics_table() -> String {
    let mut out = String::from("| Metric | Type | Labels | Meaning |\n|---|---|---|---|\n");
    for m in METRICS {
        let labels = if m.labels.is_empty() {
            "-".to_owned()
        } else {
            m.labels.iter().map(|l| format!("`{l}`")).collect::<Vec<_>>().join(", ")
        };
        out.push_str(&format!("| `{}` | {} | {labels} | {} |\n", m.name, m.kind.as_str(), m.help));
    }
    out
}
