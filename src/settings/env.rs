//! The one table of environment variables, and the reader that applies it.
//!
//! Every variable the kernel reads is a row of [`ENV_VARS`]; nothing else in the
//! crate calls `std::env::var`. An empty value counts as unset. With a prefix
//! (`ServiceConfig::from_env_prefixed("MY_APP_")`) every name is read as
//! `MY_APP_NAME`.

use super::SettingsError;

/// One environment variable the kernel reads.
#[derive(Debug, Clone, Copy)]
pub struct EnvVar {
    /// Its name, without prefix.
    pub name: &'static str,
    /// What values it accepts.
    pub accepted: &'static str,
    /// Its default when unset.
    pub default: &'static str,
    /// What it sets.
    pub description: &'static str,
    /// Whether its value is a secret (never echoed in errors or logs).
    pub secret: bool,
}

const fn var(name: &'static str, accepted: &'static str, default: &'static str, description: &'static str) -> EnvVar {
    EnvVar { name, accepted, default, description, secret: false }
}

const fn secret(
    name: &'static str,
    accepted: &'static str,
    default: &'static str,
    description: &'static str,
) -> EnvVar {
    EnvVar { name, accepted, default, description, secret: true }
}

const BOOL: &str = "true, false, 1, 0, yes, no, on, off";

/// Every environment variable, in the order the docs print them.
pub const ENV_VARS: &[EnvVar] = &[
    secret(
        "JWT_SECRET",
        "at least 32 bytes (any length with DEBUG)",
        "random per process, with a warning",
        "HMAC secret of access and refresh tokens",
    ),
    var("JWT_EXPIRY_MINUTES", "a positive integer", "15", "access token lifetime in minutes"),
    var("JWT_EXPIRY_HOURS", "a positive integer", "unset", "access token lifetime in hours (wins over minutes)"),
    var(
        "JWT_ALGORITHM",
        "HS256, RS256, ES256",
        "HS256",
        "the one token algorithm accepted (RS256/ES256: external mode)",
    ),
    var(
        "JWT_PUBLIC_KEY",
        "a PEM public key (-----BEGIN ...; \\n for newlines)",
        "unset",
        "external mode: the issuer's key",
    ),
    var("JWT_ISSUER", "any string", "unset", "required iss claim"),
    var("JWT_AUDIENCE", "any string", "unset", "required aud claim"),
    var("JWT_TRUST_ROLE_CLAIM", BOOL, "false", "external mode: take the role from the token's role claim"),
    var("AUTH_ENABLED", BOOL, "true", "enforce authentication (false only with DEBUG)"),
    var("ALLOW_SELF_SIGNUP", BOOL, "false", "allow POST /auth/register"),
    secret(
        "DATABASE_URL",
        "sqlite://PATH, postgres://..., mysql://...",
        "unset",
        "full database URL; wins over DATABASE_*",
    ),
    var("DATABASE_TYPE", "sqlite, postgres, mysql", "sqlite", "database engine"),
    var("DATABASE_NAME", "a file path (sqlite) or database name", "./data/SERVICE.db", "database file or name"),
    var("DATABASE_HOST", "a host name or address", "localhost", "database server host"),
    var("DATABASE_PORT", "an integer 1..=65535", "5432 / 3306", "database server port"),
    var("DATABASE_USER", "any string", "unset", "database user"),
    secret("DATABASE_PASSWORD", "any string", "unset", "database password"),
    var(
        "DATABASE_SCHEMA",
        "closed, additive",
        "closed",
        "whether a save may create tables and add columns (additive: development)",
    ),
    var(
        "DATABASE_ACQUIRE_TIMEOUT_MS",
        "an integer 1..=60000 (milliseconds)",
        "1000",
        "server engines: longest wait for a pool connection before a 503 database_unavailable",
    ),
    var("DATABASE_SCHEMA_MAX_COLUMNS", "a positive integer", "64", "additive: columns a save may take a table to"),
    var("DATABASE_SCHEMA_MAX_NEW_COLUMNS", "a positive integer", "16", "additive: columns one save may add"),
    secret("REDIS_URL", "redis://... or rediss://...", "unset", "Redis for shared limits, leases and jobs"),
    var("REDIS_KEY_PREFIX", "any string", "app:", "prefix of every Redis key"),
    var("CORS_ORIGINS", "* or comma-separated http(s)://host[:port] origins", "*", "allowed CORS origins"),
    var(
        "TRUSTED_PROXIES",
        "comma-separated IP addresses or networks (10.0.0.0/8)",
        "none",
        "proxies whose X-Forwarded-For names the client",
    ),
    var("RATE_LIMIT_REQUESTS", "a positive integer", "100", "requests per window per caller"),
    var("RATE_LIMIT_WINDOW", "a positive integer (seconds)", "60", "rate limit window"),
    var(
        "IDEMPOTENCY_MAX_RECORD_BYTES",
        "a positive integer (bytes)",
        "65536",
        "largest response kept for an Idempotency-Key replay",
    ),
    var("IDEMPOTENCY_MAX_KEYS_PER_CALLER", "a positive integer", "1000", "Idempotency-Key records kept per caller"),
    var("DEBUG", BOOL, "false", "debug mode: permits a weak secret and AUTH_ENABLED=false"),
    var("HOST", "an IP address or host name", "127.0.0.1", "listen address"),
    var("PORT", "an integer 0..=65535", "8000", "listen port"),
    var(
        "SHUTDOWN_DRAIN_SECONDS",
        "a non-negative integer (seconds)",
        "0",
        "after SIGTERM: keep accepting while /readyz answers 503, for a load balancer to notice",
    ),
    var(
        "HEADER_READ_TIMEOUT",
        "a non-negative integer (seconds; 0 turns it off)",
        "10",
        "time to send a request head, and to keep an idle HTTP/1 connection",
    ),
    var(
        "IDLE_TIMEOUT",
        "a non-negative integer (seconds; 0 turns it off)",
        "60",
        "a connection silent this long is closed",
    ),
    var("MAX_CONNECTIONS", "a positive integer", "1024", "connections served at once; more wait"),
    var(
        "WORKER_HTTP_ADDR",
        "a port (binds 127.0.0.1) or IP:port",
        "unset (off)",
        "the worker role's own /metrics and /healthz",
    ),
    var("LOG_LEVEL", "trace, debug, info, warn, error (any case)", "info", "log verbosity"),
    var("LOG_FORMAT", "json, pretty", "json", "log line format"),
    var("ADMIN_EMAIL", "an email address", "unset", "first admin, created at start-up if none exists"),
    secret("ADMIN_PASSWORD", "at least 8 characters", "unset", "first admin's password"),
    var("KERNEL_ENABLE_HEALTH", BOOL, "true", "mount /healthz and /readyz"),
    var("KERNEL_ENABLE_METRICS", BOOL, "true", "mount /metrics"),
    var("KERNEL_PROTECT_METRICS", "admin, internal, none", "admin", "who may read /metrics"),
    var("KERNEL_ENABLE_AUTH", BOOL, "true", "mount the auth routes (local mode)"),
    var("KERNEL_AUTH_MODE", "local, apikey, external", "local", "how callers authenticate"),
    var("KERNEL_ALLOW_SIGNUP", BOOL, "false", "same as ALLOW_SELF_SIGNUP"),
    var("KERNEL_ENABLE_AUDIT", BOOL, "false", "mount GET /audit for admins"),
    var("KERNEL_ENABLE_JOBS_ADMIN", BOOL, "true", "mount the admins' jobs view (/admin/jobs and its JSON routes)"),
];

/// The table as a Markdown table, for docs and `--help`.
pub fn markdown_table() -> String {
    let mut out = String::from("| Variable | Accepted | Default | Sets |\n|---|---|---|---|\n");
    for v in ENV_VARS {
        out.push_str(&format!("| `{}` | {} | {} | {} |\n", v.name, v.accepted, v.default, v.description));
    }
    out
}

/// Reads variables of the table through a lookup function (the process
/// environment, or a map in tests).
pub(crate) struct EnvReader<'a> {
    prefix: &'a str,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> EnvReader<'a> {
    pub(crate) fn new(prefix: &'a str, lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { prefix, lookup }
    }

    fn row(name: &str) -> &'static EnvVar {
        ENV_VARS.iter().find(|v| v.name == name).unwrap_or_else(|| unreachable!("{name} is not in ENV_VARS"))
    }

    /// The trimmed value, `None` when unset or empty.
    pub(crate) fn string(&self, name: &str) -> Option<String> {
        let _ = Self::row(name);
        let value = (self.lookup)(&format!("{}{name}", self.prefix))?;
        let value = value.trim();
        (!value.is_empty()).then(|| value.to_owned())
    }

    /// The value parsed by `parse`; a value it refuses is an error naming the
    /// variable, the value and what is accepted.
    pub(crate) fn parse<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, SettingsError> {
        let Some(raw) = self.string(name) else {
            return Ok(None);
        };
        let row = Self::row(name);
        parse(&raw).map(Some).ok_or_else(|| SettingsError::InvalidEnv {
            var: format!("{}{name}", self.prefix),
            value: if row.secret { "<redacted>".into() } else { raw },
            accepted: row.accepted,
        })
    }

    pub(crate) fn bool(&self, name: &str) -> Result<Option<bool>, SettingsError> {
        self.parse(name, parse_bool)
    }

    pub(crate) fn positive<T: std::str::FromStr + PartialOrd + Default>(
        &self,
        name: &str,
    ) -> Result<Option<T>, SettingsError> {
        self.parse(name, |s| s.parse::<T>().ok().filter(|n| *n > T::default()))
    }
}

/// `true, 1, yes, on` / `false, 0, no, off`, any case.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// A CORS origin: `*`, or `http(s)://host[:port]` with no path.
pub(crate) fn parse_origins(s: &str) -> Option<Vec<String>> {
    let origins: Vec<String> = s.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect();
    let valid = |o: &String| {
        if o == "*" {
            return true;
        }
        let Some(rest) = o.strip_prefix("https://").or_else(|| o.strip_prefix("http://")) else {
            return false;
        };
        !rest.is_empty() && !rest.contains('/') && http::HeaderValue::from_str(o).is_ok()
    };
    (!origins.is_empty() && origins.iter().all(valid)).then_some(origins)
}

/// Comma-separated addresses or networks; an address alone is a network of one.
pub(crate) fn parse_networks(s: &str) -> Option<Vec<ipnet::IpNet>> {
    let items: Vec<&str> = s.split(',').map(str::trim).filter(|i| !i.is_empty()).collect();
    let parse = |i: &&str| {
        i.parse::<ipnet::IpNet>().ok().or_else(|| i.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
    };
    let networks: Vec<ipnet::IpNet> = items.iter().filter_map(parse).collect();
    (!networks.is_empty() && networks.len() == items.len()).then_some(networks)
}

/// A log level word or a `tracing` filter directive.
pub(crate) fn parse_log_level(s: &str) -> Option<String> {
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "trace" | "debug" | "info" | "warn" | "warning" | "error" => Some(lower.replace("warning", "warn")),
        "critical" => Some("error".into()),
        _ => None,
    }
}
