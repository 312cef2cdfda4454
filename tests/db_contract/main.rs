//! The database contract: one suite, every engine.
//!
//! SQLite runs in the default run; PostgreSQL and MariaDB/MySQL when
//! `KERNEL_TEST_POSTGRES_URL` / `KERNEL_TEST_MYSQL_URL` are set (and the `postgres` /
//! `mysql` features are on). Each test gets its own schema or database.
//!
//! The suite runs under a harness of its own (libtest-mimic, `harness = false`), so
//! that a test of an engine whose URL is not set is reported as ignored with the
//! reason (`test postgres::... ignored (KERNEL_TEST_POSTGRES_URL not set)`) and counted
//! as such in the run's closing line, instead of passing having done nothing; with
//! `KERNEL_TEST_REQUIRE_SERVICES` on it fails. Names, filters and flags are libtest's.

mod audit;
#[path = "../common/mod.rs"]
mod common;
mod entity;
mod list_json;
mod migrations;
mod schema_policy;
mod transactions;

use std::time::Duration;

use app_kernel::db::{AuditFilter, AuditLog, DatabaseKind, Db, DbError, Find, SchemaPolicy};
use app_kernel::ApiError;
use common::db::TestDb;
use common::trials::{self, Engine, Server};
use http::StatusCode;
use libtest_mimic::Trial;
use serde_json::{json, Value};

use audit::*;
use entity::*;
use list_json::*;
use migrations::*;
use schema_policy::*;
use transactions::*;

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        /// Every test on every engine built in.
        fn trials() -> Vec<Trial> {
            let mut out = Vec::new();
            for kind in engines() {
                $(out.push(trial(kind, stringify!($name), $name));)*
            }
            out
        }
    };
}

contract!(
    values_round_trip_with_their_types,
    save_answers_what_a_read_returns,
    save_upserts_and_keeps_created_at,
    find_filters_orders_and_pages,
    soft_delete_hides_and_delete_removes,
    missing_tables_read_as_empty,
    closed_schema_refuses_unknown_tables_and_fields,
    a_field_spray_is_stopped_at_the_limits,
    odd_field_names_are_refused_before_any_ddl,
    concurrent_column_adds_stay_within_the_cap,
    declared_tables_get_their_columns_and_indexes,
    field_names_from_input_cannot_carry_sql,
    kernel_tables_and_fields_are_the_kernels,
    a_big_users_rows_do_not_slow_another_users_list,
    development_warns_of_a_find_that_scans_a_large_table,
    values_must_fit_their_column,
    bad_identifiers_and_shapes_are_clear_errors,
    sql_shaped_values_are_stored_as_data,
    portable_sql_is_translated,
    the_list_path_writes_the_bytes_the_rows_serialize_to,
    the_list_path_sees_columns_added_elsewhere,
    the_list_path_reads_the_apps_own_tables,
    transaction_commits,
    transaction_rolls_back_on_error,
    transaction_rolls_back_on_drop,
    save_many_is_all_or_nothing,
    concurrent_saves_and_reads_lose_nothing,
    two_processes_share_a_new_table,
    processes_starting_together_create_the_kernel_tables,
    transactions_recover_from_columns_added_elsewhere,
    audit_log_pages_by_cursor,
    audit_events_stay_small_whatever_they_are_given,
    migrations_apply_in_order_and_once,
    changed_gone_or_late_files_are_refused,
    a_failing_migration_names_its_file_and_statement,
    instances_starting_together_apply_each_file_once,
    a_service_runs_migrations_before_its_tables_and_schema_init,
);

/// The engines this build can test: SQLite, and PostgreSQL and MySQL with their features.
fn engines() -> Vec<DatabaseKind> {
    let mut out = vec![DatabaseKind::Sqlite];
    #[cfg(feature = "postgres")]
    out.push(DatabaseKind::Postgres);
    #[cfg(feature = "mysql")]
    out.push(DatabaseKind::Mysql);
    out
}

/// `ENGINE::NAME`, run on a runtime of its own with a fresh database; ignored when the
/// engine's URL is not set (a failure if services are required).
fn trial<F, Fut>(kind: DatabaseKind, name: &'static str, test: F) -> Trial
where
    F: FnOnce(TestDb) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = TestDb>,
{
    let engine = match kind {
        DatabaseKind::Sqlite => "sqlite",
        DatabaseKind::Postgres => "postgres",
        DatabaseKind::Mysql => "mysql",
    };
    let mut trial = trials::test(format!("{engine}::{name}")).threads(4);
    if let Some(server) = Server::of(kind) {
        trial = trial.needs(server);
    }
    trial.run(move |urls| async move {
        let t = TestDb::new(&Engine::database(kind, &urls)).await;
        test(t).await.finish().await;
    })
}

fn main() {
    trials::run(trials());
}
