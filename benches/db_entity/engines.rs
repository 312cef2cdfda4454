//! The engines both entity benchmarks run on, and the three operations each one is
//! measured with: through the kernel's entity API, and as the same statements
//! written by hand on the engine's usual driver (the baseline).
//!
//! SQLite always; PostgreSQL when `KERNEL_TEST_POSTGRES_URL` is set and MySQL/MariaDB
//! when `KERNEL_TEST_MYSQL_URL` is (with their cargo features on), each in a schema
//! or database of the bench's own, dropped at the end.

use app_kernel::db::{Db, Find};
use rusqlite::types::Value as SqlValue;
use serde_json::json;

use super::sqlite_raw::{self, RawPool, FIND_SQL, GET_SQL, ROWS, SAVE_SQL, TABLE};

/// One measured operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// One entity by id.
    Get,
    /// An upsert of an existing entity (the answer is the stored row).
    Save,
    /// One owner's 100 entities, ordered.
    Find100,
}

impl Op {
    pub(crate) const ALL: [Op; 3] = [Op::Get, Op::Save, Op::Find100];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Save => "save",
            Op::Find100 => "find100",
        }
    }
}

/// `op` on item `i` through the entity API.
pub(crate) async fn kernel(db: &Db, op: Op, i: u64) {
    let i = i % ROWS;
    match op {
        Op::Get => assert!(db.get_entity(TABLE, &format!("item-{i}")).await.expect("get").is_some()),
        Op::Save => {
            let item = json!({"id": format!("item-{i}"), "owner": format!("o{}", i % 10), "n": i, "name": "renamed"});
            db.save_entity(TABLE, item).await.expect("save");
        }
        Op::Find100 => {
            let q = Find::new().filter("[owner] = ?", [format!("o{}", i % 10)]).order_by("[n] DESC").limit(100);
            assert_eq!(db.find_entities(TABLE, q).await.expect("find").len(), 100);
        }
    }
}

/// The hand-written side of one engine.
pub(crate) enum Baseline {
    Sqlite(RawPool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "mysql")]
    Mysql(sqlx::MySqlPool),
}

impl Baseline {
    /// `op` on item `i`, written by hand; rows become JSON objects, as a service answers them.
    pub(crate) async fn run(&self, op: Op, i: u64) {
        let i = i % ROWS;
        let rows = match self {
            Baseline::Sqlite(pool) => sqlite(pool, op, i).await,
            #[cfg(feature = "postgres")]
            Baseline::Postgres(pool) => super::pg::run(pool, op, i).await,
            #[cfg(feature = "mysql")]
            Baseline::Mysql(pool) => super::mysql::run(pool, op, i).await,
        };
        assert_eq!(rows, if op == Op::Find100 { 100 } else { 1 });
    }
}

async fn sqlite(pool: &RawPool, op: Op, i: u64) -> usize {
    let text = SqlValue::Text;
    match op {
        Op::Get => pool.read(GET_SQL, vec![text(format!("item-{i}")), SqlValue::Integer(1)]).await.len(),
        Op::Save => {
            let now = now();
            let n = i64::try_from(i).expect("small");
            let params = vec![
                text(format!("item-{i}")),
                text(format!("o{}", i % 10)),
                SqlValue::Integer(n),
                text("renamed".into()),
                text(now.clone()),
                text(now),
            ];
            pool.write(SAVE_SQL, params).await.len()
        }
        Op::Find100 => pool.read(FIND_SQL, vec![text(format!("o{}", i % 10)), SqlValue::Integer(100)]).await.len(),
    }
}

/// The timestamp a hand-written service stamps rows with.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// One engine, seeded: the kernel's handle and the baseline on the same data.
pub(crate) struct Engine {
    pub(crate) name: &'static str,
    pub(crate) db: Db,
    pub(crate) raw: Baseline,
    /// An admin handle and the statement that drops the bench's schema or database.
    teardown: Option<(Db, String)>,
}

impl Engine {
    /// Closes both sides and drops what the bench created.
    pub(crate) fn close(self, rt: &tokio::runtime::Runtime) {
        rt.block_on(self.db.close());
        match self.raw {
            Baseline::Sqlite(_) => {}
            #[cfg(feature = "postgres")]
            Baseline::Postgres(pool) => rt.block_on(pool.close()),
            #[cfg(feature = "mysql")]
            Baseline::Mysql(pool) => rt.block_on(pool.close()),
        }
        if let Some((admin, drop)) = self.teardown {
            rt.block_on(admin.execute(&drop, &[])).expect("drop the bench's schema");
            rt.block_on(admin.close());
        }
    }
}

/// The SQLite engine, on `fixture`'s database.
pub(crate) fn sqlite_engine(fixture: &sqlite_raw::Fixture) -> Engine {
    Engine { name: "sqlite", db: fixture.db.clone(), raw: Baseline::Sqlite(fixture.pool.clone()), teardown: None }
}

/// PostgreSQL and MySQL, for those whose URL is set (a note on standard error for the others).
pub(crate) fn server_engines(rt: &tokio::runtime::Runtime) -> Vec<Engine> {
    #[cfg(feature = "postgres")]
    let postgres: Option<Start> = Some(super::pg::engine);
    #[cfg(not(feature = "postgres"))]
    let postgres: Option<Start> = None;
    #[cfg(feature = "mysql")]
    let mysql: Option<Start> = Some(super::mysql::engine);
    #[cfg(not(feature = "mysql"))]
    let mysql: Option<Start> = None;
    let engines = [("postgres", "KERNEL_TEST_POSTGRES_URL", postgres), ("mysql", "KERNEL_TEST_MYSQL_URL", mysql)];
    engines
        .into_iter()
        .filter_map(|(name, var, start)| match (std::env::var(var), start) {
            (Ok(url), Some(start)) => Some(start(rt, &url)),
            _ => {
                eprintln!("skipped: {name} ({var} unset or feature `{name}` off)");
                None
            }
        })
        .collect()
}

/// Seeds an engine on a server at a URL.
type Start = fn(&tokio::runtime::Runtime, &str) -> Engine;

/// A seeded engine on a server: `create` runs on `url` (a schema or database of the
/// bench's own), the kernel and `raw` use `scoped` (the URL that points into it), and
/// `drop` removes it at the end.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn server_engine(
    rt: &tokio::runtime::Runtime,
    kind: app_kernel::db::DatabaseKind,
    (url, scoped): (&str, &str),
    (create, drop): (&str, String),
    raw: impl FnOnce(&tokio::runtime::Runtime, &str) -> Baseline,
) -> Engine {
    let mut settings = app_kernel::db::DatabaseSettings::default();
    settings.kind = kind;
    settings.url = Some(url.to_owned().into());
    let admin = rt.block_on(Db::connect(&settings, "bench")).expect("connect");
    rt.block_on(admin.execute(create, &[])).expect(create);
    settings.url = Some(scoped.to_owned().into());
    let db = rt.block_on(Db::connect(&settings, "bench")).expect("connect scoped");
    rt.block_on(sqlite_raw::seed(&db));
    let name = if kind == app_kernel::db::DatabaseKind::Postgres { "postgres" } else { "mysql" };
    Engine { name, db, raw: raw(rt, scoped), teardown: Some((admin, drop)) }
}
