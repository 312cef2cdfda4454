use secrecy::SecretString;

use super::env::{self, EnvReader};
use super::*;

/// The spec's flat, friendly configuration of a service. Every field has the
/// spec's default; [`ServiceConfig::from_env`] fills it from the environment and
/// [`ServiceConfig::into_settings`] turns it into [`KernelSettings`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// JWT signing secret. Unset: a random per-process secret, with a warning.
    pub jwt_secret: Option<SecretString>,
    /// Access token lifetime in minutes (default 15).
    pub jwt_expiry_minutes: u64,
    /// Access token lifetime in hours; when set, it wins over `jwt_expiry_minutes`
    /// (default unset; the Python kernel's 24 h tokens outlived logout).
    pub jwt_expiry_hours: Option<u64>,
    /// The one accepted token algorithm (default HS256).
    pub jwt_algorithm: crate::auth::JwtAlgorithm,
    /// External mode: the issuer's PEM public key (RS256/ES256).
    pub jwt_public_key: Option<String>,
    /// Required `iss` claim.
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim.
    pub jwt_audience: Option<String>,
    /// External mode: believe the token's `role` claim (default false).
    pub jwt_trust_role_claim: bool,
    /// Enforce authentication (default true).
    pub auth_enabled: bool,
    /// Allow `/auth/register` (default false).
    pub allow_self_signup: bool,
    /// Full database URL; wins over the parts below.
    pub database_url: Option<SecretString>,
    /// Database name or SQLite file path (default `./data/SERVICE.db`).
    pub database_name: Option<String>,
    /// `sqlite` (default), `postgres` or `mysql`.
    pub database_type: DatabaseKind,
    /// Database host (default `localhost`).
    pub database_host: String,
    /// Database port (`None`: the engine's default).
    pub database_port: Option<u16>,
    /// Database user.
    pub database_user: Option<String>,
    /// Database password.
    pub database_password: Option<SecretString>,
    /// What a save may change in the schema (default closed).
    pub database_schema: SchemaPolicy,
    /// Longest wait for a pool connection (default 1 s).
    pub database_acquire_timeout: std::time::Duration,
    /// Redis URL: shares limits, leases and jobs across instances.
    pub redis_url: Option<SecretString>,
    /// Prefix of every Redis key (default `app:`).
    pub redis_key_prefix: String,
    /// CORS origins (default `["*"]`).
    pub cors_origins: Vec<String>,
    /// Proxies whose `X-Forwarded-For` is believed (default none).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Requests per window (default 100).
    pub rate_limit_requests: u32,
    /// Window in seconds (default 60).
    pub rate_limit_window: u64,
    /// Largest response kept for an idempotent replay, in bytes (default 64 KiB).
    pub idempotency_max_record_bytes: usize,
    /// Idempotency records kept per caller (default 1000).
    pub idempotency_max_keys_per_caller: usize,
    /// Debug mode (default false).
    pub debug: bool,
    /// Listen address (default `127.0.0.1`).
    pub host: String,
    /// Listen port (default 8000).
    pub port: u16,
    /// After SIGTERM, keep accepting this long while `/readyz` answers 503 (default 0).
    pub drain_delay: std::time::Duration,
    /// Time to send a request head, and to keep an idle HTTP/1 connection (default 10 s).
    pub header_read_timeout: Option<std::time::Duration>,
    /// A connection silent this long is closed (default 60 s).
    pub idle_timeout: Option<std::time::Duration>,
    /// Connections served at once (default 1024).
    pub max_connections: usize,
    /// The `worker` role's own HTTP address for `/metrics` and `/healthz` (default
    /// `None`: none).
    pub worker_http_addr: Option<std::net::SocketAddr>,
    /// Log level (default `info`).
    pub log_level: String,
    /// Log format (default JSON).
    pub log_format: LogFormat,
    /// First admin's email.
    pub admin_email: Option<String>,
    /// First admin's password.
    pub admin_password: Option<SecretString>,
    /// Which kernel routes are mounted.
    pub features: FeatureSettings,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            jwt_expiry_minutes: 15,
            jwt_algorithm: crate::auth::JwtAlgorithm::HS256,
            jwt_public_key: None,
            jwt_issuer: None,
            jwt_audience: None,
            jwt_trust_role_claim: false,
            jwt_expiry_hours: None,
            auth_enabled: true,
            allow_self_signup: false,
            database_url: None,
            database_name: None,
            database_type: DatabaseKind::Sqlite,
            database_host: "localhost".into(),
            database_port: None,
            database_user: None,
            database_password: None,
            database_schema: SchemaPolicy::Closed,
            database_acquire_timeout: crate::db::DEFAULT_ACQUIRE_TIMEOUT,
            redis_url: None,
            redis_key_prefix: "app:".into(),
            cors_origins: vec!["*".into()],
            trusted_proxies: Vec::new(),
            rate_limit_requests: 100,
            rate_limit_window: 60,
            idempotency_max_record_bytes: crate::reliability::DEFAULT_MAX_RECORD_BYTES,
            idempotency_max_keys_per_caller: crate::reliability::DEFAULT_MAX_KEYS_PER_CALLER,
            debug: false,
            host: "127.0.0.1".into(),
            port: 8000,
            drain_delay: super::ServerSettings::default().drain_delay,
            header_read_timeout: super::ServerSettings::default().header_read_timeout,
            idle_timeout: super::ServerSettings::default().idle_timeout,
            max_connections: super::ServerSettings::default().max_connections,
            worker_http_addr: None,
            log_level: "info".into(),
            log_format: LogFormat::Json,
            admin_email: None,
            admin_password: None,
            features: FeatureSettings::default(),
        }
    }
}

impl ServiceConfig {
    /// Reads the environment (and `.env`, if present) per [`env::ENV_VARS`].
    ///
    /// # Errors
    /// The first variable with a value it does not accept.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_env_prefixed("")
    }

    /// Like [`from_env`](Self::from_env), every name read as `PREFIX` + name.
    ///
    /// # Errors
    /// The first variable with a value it does not accept.
    pub fn from_env_prefixed(prefix: &str) -> Result<Self, SettingsError> {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(SettingsError::DotEnv(e.to_string())),
        }
        Self::from_lookup(prefix, |name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup` instead of the process environment.
    ///
    /// # Errors
    /// The first variable with a value it does not accept.
    pub fn from_lookup(prefix: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let env = EnvReader::new(prefix, &lookup);
        let mut c = Self::default();
        let secret = |name| env.string(name).map(SecretString::from);

        c.jwt_secret = secret("JWT_SECRET");
        c.jwt_expiry_minutes = env.positive("JWT_EXPIRY_MINUTES")?.unwrap_or(c.jwt_expiry_minutes);
        c.jwt_expiry_hours = env.positive("JWT_EXPIRY_HOURS")?;
        c.jwt_algorithm = env.parse("JWT_ALGORITHM", crate::auth::JwtAlgorithm::parse)?.unwrap_or(c.jwt_algorithm);
        c.jwt_public_key = env.parse("JWT_PUBLIC_KEY", parse_pem)?;
        c.jwt_issuer = env.string("JWT_ISSUER");
        c.jwt_audience = env.string("JWT_AUDIENCE");
        c.jwt_trust_role_claim = env.bool("JWT_TRUST_ROLE_CLAIM")?.unwrap_or(c.jwt_trust_role_claim);
        c.auth_enabled = env.bool("AUTH_ENABLED")?.unwrap_or(c.auth_enabled);
        c.allow_self_signup = env.bool("ALLOW_SELF_SIGNUP")?.unwrap_or(c.allow_self_signup);
        c.database_url = env.parse("DATABASE_URL", |u| DatabaseKind::from_url(u).map(|_| SecretString::from(u)))?;
        c.database_type = env.parse("DATABASE_TYPE", DatabaseKind::parse)?.unwrap_or(c.database_type);
        c.database_name = env.string("DATABASE_NAME");
        c.database_host = env.string("DATABASE_HOST").unwrap_or(c.database_host);
        c.database_port = env.parse("DATABASE_PORT", |s| s.parse::<u16>().ok().filter(|p| *p > 0))?;
        c.database_user = env.string("DATABASE_USER");
        c.database_password = secret("DATABASE_PASSWORD");
        c.database_schema = env.parse("DATABASE_SCHEMA", SchemaPolicy::parse)?.unwrap_or(c.database_schema);
        c.database_acquire_timeout = env
            .parse("DATABASE_ACQUIRE_TIMEOUT_MS", |s| s.parse().ok().filter(|ms| (1..=60_000).contains(ms)))?
            .map_or(c.database_acquire_timeout, std::time::Duration::from_millis);
        let max_columns: Option<usize> = env.positive("DATABASE_SCHEMA_MAX_COLUMNS")?;
        let max_new: Option<usize> = env.positive("DATABASE_SCHEMA_MAX_NEW_COLUMNS")?;
        if let SchemaPolicy::Additive(limits) = &mut c.database_schema {
            limits.max_columns = max_columns.unwrap_or(limits.max_columns);
            limits.max_new_columns = max_new.unwrap_or(limits.max_new_columns);
        }
        c.redis_url = env.parse("REDIS_URL", |u| {
            (u.starts_with("redis://") || u.starts_with("rediss://")).then(|| SecretString::from(u))
        })?;
        c.redis_key_prefix = env.string("REDIS_KEY_PREFIX").unwrap_or(c.redis_key_prefix);
        c.cors_origins = env.parse("CORS_ORIGINS", env::parse_origins)?.unwrap_or(c.cors_origins);
        c.trusted_proxies = env.parse("TRUSTED_PROXIES", env::parse_networks)?.unwrap_or(c.trusted_proxies);
        c.rate_limit_requests = env.positive("RATE_LIMIT_REQUESTS")?.unwrap_or(c.rate_limit_requests);
        c.rate_limit_window = env.positive("RATE_LIMIT_WINDOW")?.unwrap_or(c.rate_limit_window);
        c.idempotency_max_record_bytes =
            env.positive("IDEMPOTENCY_MAX_RECORD_BYTES")?.unwrap_or(c.idempotency_max_record_bytes);
        c.idempotency_max_keys_per_caller =
            env.positive("IDEMPOTENCY_MAX_KEYS_PER_CALLER")?.unwrap_or(c.idempotency_max_keys_per_caller);
        c.debug = env.bool("DEBUG")?.unwrap_or(c.debug);
        c.host = env.parse("HOST", parse_host)?.unwrap_or(c.host);
        c.port = env.parse("PORT", |s| s.parse::<u16>().ok())?.unwrap_or(c.port);
        c.drain_delay = env
            .parse("SHUTDOWN_DRAIN_SECONDS", |s| s.parse().ok().map(std::time::Duration::from_secs))?
            .unwrap_or(c.drain_delay);
        c.header_read_timeout = env.parse("HEADER_READ_TIMEOUT", parse_seconds)?.unwrap_or(c.header_read_timeout);
        c.idle_timeout = env.parse("IDLE_TIMEOUT", parse_seconds)?.unwrap_or(c.idle_timeout);
        c.max_connections = env.positive("MAX_CONNECTIONS")?.unwrap_or(c.max_connections);
        c.worker_http_addr = env.parse("WORKER_HTTP_ADDR", parse_worker_addr)?.or(c.worker_http_addr);
        c.log_level = env.parse("LOG_LEVEL", env::parse_log_level)?.unwrap_or(c.log_level);
        c.log_format = env.parse("LOG_FORMAT", parse_log_format)?.unwrap_or(c.log_format);
        c.admin_email = env.parse("ADMIN_EMAIL", |s| s.contains('@').then(|| s.to_owned()))?;
        c.admin_password = env.parse("ADMIN_PASSWORD", |s| (s.chars().count() >= 8).then(|| SecretString::from(s)))?;

        let f = &mut c.features;
        f.enable_health_routes = env.bool("KERNEL_ENABLE_HEALTH")?.unwrap_or(f.enable_health_routes);
        f.enable_metrics = env.bool("KERNEL_ENABLE_METRICS")?.unwrap_or(f.enable_metrics);
        f.protect_metrics = env.parse("KERNEL_PROTECT_METRICS", MetricsProtection::parse)?.unwrap_or(f.protect_metrics);
        f.enable_auth_routes = env.bool("KERNEL_ENABLE_AUTH")?.unwrap_or(f.enable_auth_routes);
        f.auth_mode = env.parse("KERNEL_AUTH_MODE", AuthMode::parse)?.unwrap_or(f.auth_mode);
        f.enable_audit_routes = env.bool("KERNEL_ENABLE_AUDIT")?.unwrap_or(f.enable_audit_routes);
        f.enable_jobs_admin = env.bool("KERNEL_ENABLE_JOBS_ADMIN")?.unwrap_or(f.enable_jobs_admin);
        let signup = env.bool("KERNEL_ALLOW_SIGNUP")?;
        c.allow_self_signup = signup.unwrap_or(c.allow_self_signup);
        c.features.allow_self_signup = c.allow_self_signup;
        Ok(c)
    }

    /// The kernel settings this configuration stands for, validated.
    ///
    /// # Errors
    /// A value that is well-formed but unsafe (see [`KernelSettings::validate`]).
    pub fn into_settings(self, service_name: &str) -> Result<KernelSettings, SettingsError> {
        let mut s = KernelSettings { debug: self.debug, ..KernelSettings::default() };
        s.server.host = self.host;
        s.server.port = self.port;
        s.server.drain_delay = self.drain_delay;
        s.server.header_read_timeout = self.header_read_timeout;
        s.server.idle_timeout = self.idle_timeout;
        s.server.max_connections = self.max_connections;
        s.server.worker_http_addr = self.worker_http_addr;
        s.server.trusted_proxies = self.trusted_proxies;
        s.auth.enabled = self.auth_enabled;
        s.auth.token_secret = self.jwt_secret;
        s.auth.algorithm = self.jwt_algorithm;
        s.auth.public_key = self.jwt_public_key;
        s.auth.issuer = self.jwt_issuer;
        s.auth.audience = self.jwt_audience;
        s.auth.trust_role_claim = self.jwt_trust_role_claim;
        s.auth.access_token_expires_minutes =
            self.jwt_expiry_hours.map_or(self.jwt_expiry_minutes, |hours| hours.saturating_mul(60));
        s.auth.admin_email = self.admin_email;
        s.auth.admin_password = self.admin_password;
        s.database = DatabaseSettings {
            kind: self.database_type,
            url: self.database_url,
            name: self.database_name,
            host: self.database_host,
            port: self.database_port,
            user: self.database_user,
            password: self.database_password,
            schema: self.database_schema,
            acquire_timeout: self.database_acquire_timeout,
            ..DatabaseSettings::default()
        };
        if let Some(url) = &s.database.url {
            if let Some(kind) = DatabaseKind::from_url(secrecy::ExposeSecret::expose_secret(url)) {
                s.database.kind = kind;
            }
        }
        s.redis = RedisSettings { url: self.redis_url, key_prefix: self.redis_key_prefix };
        s.cors.origins = self.cors_origins;
        s.reliability.rate_limit_requests = self.rate_limit_requests;
        s.reliability.rate_limit_window_seconds = self.rate_limit_window;
        s.reliability.idempotency_max_record_bytes = self.idempotency_max_record_bytes;
        s.reliability.idempotency_max_keys_per_caller = self.idempotency_max_keys_per_caller;
        s.observability.service_name = service_name.to_owned();
        s.observability.log_level = self.log_level;
        s.observability.log_format = self.log_format;
        s.features = self.features;
        s.features.allow_self_signup = self.allow_self_signup;
        s.validate()?;
        Ok(s)
    }
}

/// A PEM block, with `\n` written out as two characters taken for newlines (as a
/// one-line environment value must).
fn parse_pem(s: &str) -> Option<String> {
    let pem = s.replace("\\n", "\n");
    (pem.trim_start().starts_with("-----BEGIN ") && pem.contains("-----END ")).then_some(pem)
}

fn parse_host(s: &str) -> Option<String> {
    let ok = s.parse::<std::net::IpAddr>().is_ok()
        || s.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    ok.then(|| s.to_owned())
}

/// `PORT` (on 127.0.0.1) or `IP:PORT` (`[::1]:PORT` for IPv6).
fn parse_worker_addr(s: &str) -> Option<std::net::SocketAddr> {
    match s.parse::<u16>() {
        Ok(port) => Some(std::net::SocketAddr::from(([127, 0, 0, 1], port))),
        Err(_) => s.parse().ok(),
    }
}

/// Whole seconds; 0 is `None` (off).
fn parse_seconds(s: &str) -> Option<Option<std::time::Duration>> {
    let secs = s.parse::<u64>().ok()?;
    Some((secs > 0).then(|| std::time::Duration::from_secs(secs)))
}

fn parse_log_format(s: &str) -> Option<LogFormat> {
    match s.to_ascii_lowercase().as_str() {
        "json" => Some(LogFormat::Json),
        "pretty" | "text" => Some(LogFormat::Pretty),
        _ => None,
    }
}
