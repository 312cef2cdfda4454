//! Shared test support: reaching the real backing services.
#![allow(dead_code, unreachable_pub)]

pub mod db;

/// The URL of a backing service from `var` (`KERNEL_TEST_POSTGRES_URL`, ...).
///
/// Unset: prints `skipped: ...` and returns `None`, unless
/// `KERNEL_TEST_REQUIRE_SERVICES=1`, which makes a missing service a failure.
pub fn service_url(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("KERNEL_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{test}: {var} is not set but KERNEL_TEST_REQUIRE_SERVICES=1");
            }
            eprintln!("skipped: {test} ({var} not set)");
            None
        }
    }
}

/// A name unique to this test run, for a database, schema or key prefix.
pub fn unique_name(stem: &str) -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("{stem}_{}", &id[id.len() - 12..])
}
