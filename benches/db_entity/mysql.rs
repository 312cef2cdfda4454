//! MySQL/MariaDB: the bench's own database, and the baseline on plain sqlx.
//!
//! MySQL has no `RETURNING`: a save is the upsert then a read of the row by id, for
//! the kernel and for the baseline alike.

use app_kernel::db::DatabaseKind;
use serde_json::json;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::Row as _;

use super::engines::{now, server_engine, Baseline, Engine, Op};

const GET: &str = "SELECT * FROM `bench_items` WHERE (`id` = ?) LIMIT ?";
const SAVE: &str =
    "INSERT INTO `bench_items` (`id`, `owner`, `n`, `name`, `created_at`, `updated_at`) VALUES (?, ?, ?, ?, ?, ?) \
     ON DUPLICATE KEY UPDATE `owner` = VALUES(`owner`), `n` = VALUES(`n`), `name` = VALUES(`name`), \
     `updated_at` = VALUES(`updated_at`)";
const BY_ID: &str = "SELECT * FROM `bench_items` WHERE `id` = ?";
const FIND: &str = "SELECT * FROM `bench_items` WHERE (`owner` = ?) ORDER BY `n` DESC LIMIT ?";

/// A row as a hand-written service answers it: a JSON object (as the SQLite baseline does).
fn item(row: &MySqlRow) -> serde_json::Value {
    let text = |c: &str| row.try_get::<String, _>(c).expect("text");
    json!({"id": text("id"), "owner": text("owner"), "n": row.try_get::<i64, _>("n").expect("n"), "name": text("name"),
        "created_at": text("created_at"), "updated_at": text("updated_at")})
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, rest) = url.rsplit_once('/').expect("a mysql:// url with a database");
    let query = rest.find('?').map_or("", |i| &rest[i..]);
    format!("{base}/{database}{query}")
}

pub(crate) fn engine(rt: &tokio::runtime::Runtime, url: &str) -> Engine {
    let database = format!("bench_{}", std::process::id());
    let scoped = with_database(url, &database);
    let statements = (&*format!("CREATE DATABASE {database}"), format!("DROP DATABASE {database}"));
    server_engine(rt, DatabaseKind::Mysql, (url, &scoped), statements, |rt, scoped| {
        Baseline::Mysql(rt.block_on(MySqlPoolOptions::new().max_connections(8).connect(scoped)).expect("raw pool"))
    })
}

/// `op` on item `i`; the number of rows answered.
pub(crate) async fn run(pool: &MySqlPool, op: Op, i: u64) -> usize {
    let n = i64::try_from(i).expect("small");
    let id = format!("item-{i}");
    let rows = match op {
        Op::Get => sqlx::query(GET).bind(&id).bind(1_i64).fetch_all(pool).await,
        Op::Save => {
            let now = now();
            let query = sqlx::query(SAVE).bind(&id).bind(format!("o{}", i % 10)).bind(n);
            query.bind("renamed").bind(&now).bind(&now).execute(pool).await.expect("save");
            sqlx::query(BY_ID).bind(&id).fetch_all(pool).await
        }
        Op::Find100 => sqlx::query(FIND).bind(format!("o{}", i % 10)).bind(100_i64).fetch_all(pool).await,
    };
    rows.expect("query").iter().map(item).collect::<Vec<_>>().len()
}
