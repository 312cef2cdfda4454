//! The environment table: every variable read, and a bad value of each refused
//! with a message naming the variable, the value and what is accepted.

use std::collections::HashMap;

use app_kernel::settings::env::ENV_VARS;
use app_kernel::settings::{AuthMode, DatabaseKind, LogFormat, MetricsProtection, ServiceConfig, SettingsError};
use secrecy::ExposeSecret;

fn config(vars: &[(&str, &str)]) -> Result<ServiceConfig, SettingsError> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    ServiceConfig::from_lookup("", |k| map.get(k).cloned())
}

#[test]
fn defaults_follow_the_spec() {
    let c = config(&[]).unwrap();
    assert!(c.jwt_secret.is_none());
    assert_eq!((c.jwt_expiry_minutes, c.jwt_expiry_hours), (15, None));
    assert_eq!(c.clone().into_settings("svc").unwrap().auth.access_token_expires_minutes, 15);
    assert!(c.auth_enabled);
    assert!(!c.allow_self_signup);
    assert_eq!(c.database_type, DatabaseKind::Sqlite);
    assert_eq!(c.database_host, "localhost");
    assert_eq!(c.database_acquire_timeout, std::time::Duration::from_millis(1000));
    assert_eq!(c.cors_origins, ["*"]);
    assert_eq!((c.rate_limit_requests, c.rate_limit_window), (100, 60));
    assert!(!c.debug);
    assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 8000));
    assert_eq!(c.features.protect_metrics, MetricsProtection::Admin);
    assert!(!c.features.enable_audit_routes);
}

#[test]
fn every_variable_is_read() {
    let c = config(&[
        ("JWT_SECRET", "s3cret-s3cret-s3cret-s3cret-s3cret!"),
        ("JWT_EXPIRY_HOURS", "2"),
        ("JWT_EXPIRY_MINUTES", "30"),
        ("AUTH_ENABLED", "false"),
        ("ALLOW_SELF_SIGNUP", "yes"),
        ("DATABASE_URL", "postgres://u:p@db:5432/app"),
        ("DATABASE_TYPE", "mysql"),
        ("DATABASE_NAME", "shop"),
        ("DATABASE_HOST", "db.internal"),
        ("DATABASE_PORT", "3307"),
        ("DATABASE_USER", "app"),
        ("DATABASE_PASSWORD", "pw"),
        ("DATABASE_ACQUIRE_TIMEOUT_MS", "250"),
        ("REDIS_URL", "redis://127.0.0.1:6379/0"),
        ("REDIS_KEY_PREFIX", "shop:"),
        ("CORS_ORIGINS", "http://localhost:3000, https://app.example.com"),
        ("TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
        ("RATE_LIMIT_REQUESTS", "7"),
        ("RATE_LIMIT_WINDOW", "9"),
        ("IDEMPOTENCY_MAX_RECORD_BYTES", "4096"),
        ("IDEMPOTENCY_MAX_KEYS_PER_CALLER", "50"),
        ("DEBUG", "1"),
        ("HOST", "0.0.0.0"),
        ("PORT", "9000"),
        ("HEADER_READ_TIMEOUT", "5"),
        ("IDLE_TIMEOUT", "0"),
        ("MAX_CONNECTIONS", "64"),
        ("LOG_LEVEL", "DEBUG"),
        ("LOG_FORMAT", "pretty"),
        ("ADMIN_EMAIL", "root@example.com"),
        ("ADMIN_PASSWORD", "correct horse"),
        ("KERNEL_ENABLE_HEALTH", "off"),
        ("KERNEL_ENABLE_METRICS", "false"),
        ("KERNEL_PROTECT_METRICS", "internal"),
        ("KERNEL_ENABLE_AUTH", "0"),
        ("KERNEL_AUTH_MODE", "apikey"),
        ("KERNEL_ALLOW_SIGNUP", "true"),
        ("KERNEL_ENABLE_AUDIT", "on"),
        ("KERNEL_ENABLE_JOBS_ADMIN", "no"),
    ])
    .unwrap();
    assert_eq!(c.jwt_secret.as_ref().unwrap().expose_secret(), "s3cret-s3cret-s3cret-s3cret-s3cret!");
    assert_eq!(c.jwt_expiry_hours, Some(2));
    assert_eq!(c.jwt_expiry_minutes, 30);
    assert!(!c.auth_enabled);
    assert!(c.allow_self_signup);
    assert_eq!(c.database_url.as_ref().unwrap().expose_secret(), "postgres://u:p@db:5432/app");
    assert_eq!(c.database_type, DatabaseKind::Mysql);
    assert_eq!(c.database_name.as_deref(), Some("shop"));
    assert_eq!(c.database_host, "db.internal");
    assert_eq!(c.database_port, Some(3307));
    assert_eq!(c.database_user.as_deref(), Some("app"));
    assert_eq!(c.database_password.as_ref().unwrap().expose_secret(), "pw");
    assert_eq!(c.database_acquire_timeout, std::time::Duration::from_millis(250));
    assert_eq!(c.redis_url.as_ref().unwrap().expose_secret(), "redis://127.0.0.1:6379/0");
    assert_eq!(c.redis_key_prefix, "shop:");
    assert_eq!(c.cors_origins, ["http://localhost:3000", "https://app.example.com"]);
    assert_eq!(c.trusted_proxies, ["10.0.0.0/8".parse::<ipnet::IpNet>().unwrap(), "::1/128".parse().unwrap()]);
    assert_eq!((c.rate_limit_requests, c.rate_limit_window), (7, 9));
    assert_eq!((c.idempotency_max_record_bytes, c.idempotency_max_keys_per_caller), (4096, 50));
    assert!(c.debug);
    assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", 9000));
    assert_eq!((c.header_read_timeout, c.idle_timeout), (Some(std::time::Duration::from_secs(5)), None));
    assert_eq!(c.max_connections, 64);
    assert_eq!(c.log_level, "debug");
    assert_eq!(c.log_format, LogFormat::Pretty);
    assert_eq!(c.admin_email.as_deref(), Some("root@example.com"));
    assert_eq!(c.admin_password.as_ref().unwrap().expose_secret(), "correct horse");
    let f = &c.features;
    assert!(!f.enable_health_routes && !f.enable_metrics && !f.enable_auth_routes);
    assert_eq!(f.protect_metrics, MetricsProtection::Internal);
    assert_eq!(f.auth_mode, AuthMode::ApiKey);
    assert!(f.allow_self_signup && f.enable_audit_routes);
    assert!(!f.enable_jobs_admin);

    // The URL decides the engine over DATABASE_TYPE.
    let settings = c.into_settings("shop").unwrap();
    assert_eq!(settings.database.kind, DatabaseKind::Postgres);
    assert_eq!(settings.auth.access_token_expires_minutes, 120);
    let r = &settings.reliability;
    assert_eq!((r.idempotency_max_record_bytes, r.idempotency_max_keys_per_caller), (4096, 50));
}

/// A bad value of every variable that has a format, with what must be in the error.
const BAD: &[(&str, &str)] = &[
    ("JWT_EXPIRY_HOURS", "-1"),
    ("JWT_EXPIRY_MINUTES", "0"),
    ("AUTH_ENABLED", "maybe"),
    ("JWT_ALGORITHM", "HS512"),
    ("JWT_PUBLIC_KEY", "not-a-pem"),
    ("JWT_TRUST_ROLE_CLAIM", "sometimes"),
    ("ALLOW_SELF_SIGNUP", "2"),
    ("DATABASE_URL", "oracle://x"),
    ("DATABASE_TYPE", "oracle"),
    ("DATABASE_PORT", "70000"),
    ("DATABASE_SCHEMA", "auto"),
    ("DATABASE_ACQUIRE_TIMEOUT_MS", "0"),
    ("DATABASE_SCHEMA_MAX_COLUMNS", "0"),
    ("DATABASE_SCHEMA_MAX_NEW_COLUMNS", "many"),
    ("REDIS_URL", "http://localhost:6379"),
    ("CORS_ORIGINS", "localhost:3000"),
    ("TRUSTED_PROXIES", "10.0.0.0/33"),
    ("RATE_LIMIT_REQUESTS", "0"),
    ("RATE_LIMIT_WINDOW", "soon"),
    ("IDEMPOTENCY_MAX_RECORD_BYTES", "0"),
    ("IDEMPOTENCY_MAX_KEYS_PER_CALLER", "many"),
    ("DEBUG", "verbose"),
    ("HOST", "bad host!"),
    ("PORT", "eighty"),
    ("HEADER_READ_TIMEOUT", "10s"),
    ("SHUTDOWN_DRAIN_SECONDS", "-1"),
    ("IDLE_TIMEOUT", "-1"),
    ("MAX_CONNECTIONS", "0"),
    ("WORKER_HTTP_ADDR", "localhost:9100"),
    ("LOG_LEVEL", "loud"),
    ("LOG_FORMAT", "xml"),
    ("ADMIN_EMAIL", "root"),
    ("ADMIN_PASSWORD", "short"),
    ("KERNEL_ENABLE_HEALTH", "y"),
    ("KERNEL_ENABLE_METRICS", "enabled"),
    ("KERNEL_PROTECT_METRICS", "everyone"),
    ("KERNEL_ENABLE_AUTH", "t"),
    ("KERNEL_AUTH_MODE", "oauth"),
    ("KERNEL_ALLOW_SIGNUP", "sure"),
    ("KERNEL_ENABLE_AUDIT", "nah"),
    ("KERNEL_ENABLE_JOBS_ADMIN", "maybe"),
];

#[test]
fn a_bad_value_of_each_variable_names_variable_value_and_what_is_accepted() {
    for (var, value) in BAD {
        let err = config(&[(var, value)]).expect_err(var);
        let row = ENV_VARS.iter().find(|r| r.name == *var).unwrap();
        let msg = err.to_string();
        assert!(msg.contains(var), "{msg}");
        assert!(msg.contains(row.accepted), "{msg}");
        if row.secret {
            assert!(!msg.contains(value), "secret echoed: {msg}");
        } else {
            assert!(msg.contains(value), "{msg}");
        }
    }
}

#[test]
fn every_formatted_variable_has_a_bad_value_test() {
    let free_text = [
        "JWT_SECRET",
        "JWT_ISSUER",
        "JWT_AUDIENCE",
        "DATABASE_NAME",
        "DATABASE_HOST",
        "DATABASE_USER",
        "DATABASE_PASSWORD",
        "REDIS_KEY_PREFIX",
    ];
    for row in ENV_VARS {
        assert!(
            free_text.contains(&row.name) || BAD.iter().any(|(v, _)| *v == row.name),
            "{} has no bad-value case",
            row.name
        );
    }
}

#[test]
fn a_prefix_applies_to_every_name_and_empty_means_unset() {
    let map: HashMap<&str, &str> = [("MY_APP_PORT", "9100"), ("PORT", "1"), ("MY_APP_REDIS_URL", "")].into();
    let c = ServiceConfig::from_lookup("MY_APP_", |k| map.get(k).map(|v| (*v).to_owned())).unwrap();
    assert_eq!(c.port, 9100);
    assert!(c.redis_url.is_none());
    let err = ServiceConfig::from_lookup("MY_APP_", |k| (k == "MY_APP_PORT").then(|| "x".to_owned())).unwrap_err();
    assert!(err.to_string().contains("MY_APP_PORT"));
}

#[test]
fn a_weak_or_placeholder_secret_stops_start_up_unless_debug() {
    for secret in ["dev-secret-change-me", "too-short"] {
        let err = config(&[("JWT_SECRET", secret)]).unwrap().into_settings("svc").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("JWT_SECRET") && !msg.contains(secret), "{msg}");
        assert!(config(&[("JWT_SECRET", secret), ("DEBUG", "true")]).unwrap().into_settings("svc").is_ok());
    }
    let err = config(&[("AUTH_ENABLED", "false")]).unwrap().into_settings("svc").unwrap_err();
    assert!(err.to_string().contains("AUTH_ENABLED"));
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let c =
        config(&[("JWT_SECRET", "s3cret-s3cret-s3cret-s3cret-s3cret!"), ("DATABASE_PASSWORD", "hunter22")]).unwrap();
    let dump = format!("{c:?} {:?}", c.clone().into_settings("svc").unwrap());
    assert!(!dump.contains("s3cret") && !dump.contains("hunter22"), "{dump}");
}

#[test]
fn the_schema_policy_is_closed_unless_asked_and_its_limits_are_read() {
    use app_kernel::db::{SchemaLimits, SchemaPolicy};
    assert_eq!(config(&[]).unwrap().database_schema, SchemaPolicy::Closed);
    let additive = config(&[("DATABASE_SCHEMA", "additive")]).unwrap();
    assert_eq!(additive.database_schema, SchemaPolicy::Additive(SchemaLimits::new(64, 16)));
    let vars = [
        ("DATABASE_SCHEMA", "Additive"),
        ("DATABASE_SCHEMA_MAX_COLUMNS", "30"),
        ("DATABASE_SCHEMA_MAX_NEW_COLUMNS", "5"),
    ];
    let settings = config(&vars).unwrap().into_settings("svc").unwrap();
    assert_eq!(settings.database.schema, SchemaPolicy::Additive(SchemaLimits::new(30, 5)));
}

#[test]
fn an_unset_secret_is_fatal_in_a_deployment_unless_debug() {
    for deployment in [("DATABASE_URL", "postgres://u:p@db:5432/app"), ("REDIS_URL", "redis://127.0.0.1:6379")] {
        let err = config(&[deployment]).unwrap().into_settings("svc").unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
        assert!(config(&[deployment, ("DEBUG", "true")]).unwrap().into_settings("svc").is_ok());
        let secret = ("JWT_SECRET", "s3cret-s3cret-s3cret-s3cret-s3cret!");
        assert!(config(&[deployment, secret]).unwrap().into_settings("svc").is_ok());
    }
    assert!(config(&[]).unwrap().into_settings("svc").is_ok(), "SQLite alone: the examples run with no setup");
}

#[test]
fn external_token_settings_come_from_the_environment() {
    let pem = "-----BEGIN PUBLIC KEY-----\\nMFkw\\n-----END PUBLIC KEY-----";
    let vars = [
        ("JWT_ALGORITHM", "es256"),
        ("JWT_PUBLIC_KEY", pem),
        ("JWT_ISSUER", "https://id.example.com/"),
        ("JWT_AUDIENCE", "widgets"),
        ("JWT_TRUST_ROLE_CLAIM", "true"),
        ("JWT_SECRET", "s3cret-s3cret-s3cret-s3cret-s3cret!"),
    ];
    let auth = config(&vars).unwrap().into_settings("svc").unwrap().auth;
    assert_eq!(auth.algorithm, app_kernel::auth::JwtAlgorithm::ES256);
    assert_eq!(auth.public_key.as_deref(), Some("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----"));
    assert_eq!((auth.issuer.as_deref(), auth.audience.as_deref()), (Some("https://id.example.com/"), Some("widgets")));
    assert!(auth.trust_role_claim);
    assert!(!config(&[]).unwrap().into_settings("svc").unwrap().auth.trust_role_claim, "off unless asked");
}

#[test]
fn the_worker_http_address_is_off_by_default_and_a_port_alone_binds_loopback() {
    let worker_addr = |value: Option<&str>| {
        let pairs: Vec<(&str, &str)> = value.map(|v| ("WORKER_HTTP_ADDR", v)).into_iter().collect();
        let settings = config(&pairs).unwrap().into_settings("svc").unwrap();
        settings.server.worker_http_addr.map(|a| a.to_string())
    };
    assert_eq!(worker_addr(None), None);
    assert_eq!(worker_addr(Some("9100")).as_deref(), Some("127.0.0.1:9100"));
    assert_eq!(worker_addr(Some("0.0.0.0:9100")).as_deref(), Some("0.0.0.0:9100"));
    assert_eq!(worker_addr(Some("[::1]:9100")).as_deref(), Some("[::1]:9100"));
}
