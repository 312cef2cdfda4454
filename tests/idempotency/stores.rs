//! The idempotency store contract, on every store: in process (memory, SQL on SQLite)
//! as `stores::NAME`; on PostgreSQL, MariaDB and Redis as `SERVER::stores::NAME`,
//! ignored when the server's `KERNEL_TEST_*_URL` is unset.

use std::sync::Arc;
use std::time::Duration;

use app_kernel::reliability::{Begin, IdempotencyStore, MemoryIdempotencyStore, Record, StoredResponse};

use super::common;
use common::trials::{test, Engine, Server};
use libtest_mimic::Trial;

/// The stores under test, and the databases of the SQL ones (dropped by `done`).
struct Stores {
    list: Vec<(&'static str, Arc<dyn IdempotencyStore>)>,
    dbs: Vec<common::db::TestDb>,
}

impl Stores {
    async fn done(self) {
        for db in self.dbs {
            db.finish().await;
        }
    }
}

/// The SQL store on `on`'s database (SQLite for [`Engine::Local`]), keeping
/// `per_caller` keys per caller.
async fn sql_stores(on: &Engine, per_caller: usize) -> Stores {
    use app_kernel::reliability::SqlIdempotencyStore;
    let Some(name) = on.sql_name() else { return Stores { list: Vec::new(), dbs: Vec::new() } };
    let db = common::db::TestDb::new(on).await;
    let store = SqlIdempotencyStore::open(db.db.clone()).await.expect("table").with_max_keys_per_caller(per_caller);
    Stores { list: vec![(name, Arc::new(store))], dbs: vec![db] }
}

/// Every store of `on` (in process: memory and SQLite), each keeping `per_caller` keys
/// per caller.
async fn stores(on: &Engine, per_caller: usize) -> Stores {
    let mut all = sql_stores(on, per_caller).await;
    match on {
        Engine::Local => {
            all.list.push(("memory", Arc::new(MemoryIdempotencyStore::default().with_max_keys_per_caller(per_caller))));
        }
        #[cfg(feature = "redis")]
        Engine::Redis(url) => {
            let prefix = format!("{}:", common::unique_name("idem"));
            let store = app_kernel::reliability::RedisIdempotencyStore::connect(url, &prefix).await.expect("redis");
            all.list.push(("redis", Arc::new(store.with_max_keys_per_caller(per_caller))));
        }
        _ => {}
    }
    all
}

/// The contract's trials: `stores::NAME` in process, and on each server as `SERVER::stores::NAME`.
pub(crate) fn trials() -> Vec<Trial> {
    let servers = [Server::Postgres, Server::Mysql, Server::Redis];
    let mut all = Vec::new();
    all.extend(
        test("stores::a_store_starts_once_then_answers_running_done_or_other")
            .on_each(&servers, a_store_starts_once_then_answers_running_done_or_other),
    );
    all.extend(
        test("stores::a_store_keeps_a_bounded_number_of_keys_per_caller_oldest_out_first")
            .on_each(&servers, a_store_keeps_a_bounded_number_of_keys_per_caller_oldest_out_first),
    );
    all.extend(
        test("stores::the_sql_stores_bound_holds_when_checked_now_and_then")
            .on_each(&servers[..2], the_sql_stores_bound_holds_when_checked_now_and_then),
    );
    all.extend(
        test("stores::two_instances_on_one_database_start_a_key_once")
            .on_each(&servers[..2], two_instances_on_one_database_start_a_key_once),
    );
    all.push(
        test("stores::the_memory_store_holds_a_bounded_number_of_bytes")
            .run(|_| the_memory_store_holds_a_bounded_number_of_bytes()),
    );
    all
}

async fn a_store_starts_once_then_answers_running_done_or_other(on: Engine) {
    let (short, day) = (Duration::from_millis(300), Duration::from_secs(86_400));
    let stores = stores(&on, 10).await;
    for (name, store) in &stores.list {
        assert_eq!(store.begin("u", "k", "fp1", day).await.unwrap(), Begin::Started, "{name}");
        assert_eq!(store.begin("u", "k", "fp1", day).await.unwrap(), Begin::Running, "{name}");
        assert_eq!(store.begin("u", "k", "fp2", day).await.unwrap(), Begin::OtherRequest, "{name}");
        assert_eq!(store.begin("v", "k", "fp2", day).await.unwrap(), Begin::Started, "{name}: another caller's key");
        let response = StoredResponse {
            status: 201,
            headers: vec![("content-type".into(), "application/json".into())],
            body: b"{\"n\":1}".to_vec(),
        };
        store.finish("u", "k", Record::done("fp1".into(), response.clone()), day).await.unwrap();
        assert_eq!(store.begin("u", "k", "fp1", day).await.unwrap(), Begin::Done(response), "{name}");
        assert_eq!(store.begin("u", "k", "fp2", day).await.unwrap(), Begin::OtherRequest, "{name}");
        store.forget("u", "k").await.unwrap();
        assert_eq!(store.begin("u", "k", "fp2", short).await.unwrap(), Begin::Started, "{name}: forgotten");
        // A running record of an instance that died lets the key go after its ttl.
        tokio::time::sleep(short + Duration::from_millis(100)).await;
        assert_eq!(store.begin("u", "k", "fp1", day).await.unwrap(), Begin::Started, "{name}: expired");
        // An answer too large to keep is remembered by its status only.
        store.finish("u", "k", Record::too_large("fp1".into(), 201), day).await.unwrap();
        assert_eq!(store.begin("u", "k", "fp1", day).await.unwrap(), Begin::TooLarge(201), "{name}");
    }
    stores.done().await;
}

async fn a_store_keeps_a_bounded_number_of_keys_per_caller_oldest_out_first(on: Engine) {
    let day = Duration::from_secs(86_400);
    let stores = stores(&on, 3).await;
    for (name, store) in &stores.list {
        for key in ["a", "b", "c"] {
            assert_eq!(store.begin("u", key, "fp", day).await.unwrap(), Begin::Started, "{name}");
        }
        assert_eq!(store.begin("other", "x", "fp", day).await.unwrap(), Begin::Started, "{name}");
        // A fourth key of `u` pushes out its oldest ("a"), and nobody else's.
        assert_eq!(store.begin("u", "d", "fp", day).await.unwrap(), Begin::Started, "{name}");
        assert_eq!(store.begin("u", "b", "fp", day).await.unwrap(), Begin::Running, "{name}: b kept");
        assert_eq!(store.begin("u", "d", "fp", day).await.unwrap(), Begin::Running, "{name}: d kept");
        assert_eq!(store.begin("other", "x", "fp", day).await.unwrap(), Begin::Running, "{name}: other kept");
        // A finished record that was evicted meanwhile is not brought back.
        assert_eq!(store.begin("u", "e", "fp", day).await.unwrap(), Begin::Started, "{name}");
        let ok = StoredResponse { status: 200, headers: vec![], body: b"late".to_vec() };
        store.finish("u", "b", Record::done("fp".into(), ok), day).await.unwrap();
        assert_eq!(store.begin("u", "a", "fp", day).await.unwrap(), Begin::Started, "{name}: a was evicted");
        assert_eq!(store.begin("u", "c", "fp", day).await.unwrap(), Begin::Started, "{name}: c was evicted");
        assert_eq!(store.begin("u", "b", "fp", day).await.unwrap(), Begin::Started, "{name}: b was evicted");
    }
    stores.done().await;
}

/// A bound of 1,000s is checked on one begin in `max/64` (the SQL store's question
/// reads that many index entries): a caller past it loses its oldest keys, and holds
/// about the bound, never much more.
async fn the_sql_stores_bound_holds_when_checked_now_and_then(on: Engine) {
    let day = Duration::from_secs(86_400);
    let bound = 192; // checked on one begin in 3
    let stores = sql_stores(&on, bound).await;
    for (db, (name, store)) in stores.dbs.iter().zip(&stores.list) {
        for i in 0..600 {
            assert_eq!(store.begin("u", &format!("k{i}"), "fp", day).await.unwrap(), Begin::Started, "{name}");
        }
        let count = "SELECT COUNT(*) AS n FROM [kernel_idempotency] WHERE [caller] = ?";
        let row = db.db.fetch_optional(count, &[serde_json::json!("u")]).await.unwrap().unwrap();
        let held = row["n"].as_u64().unwrap();
        // 40 begins in a row without a check: (2/3)^40, about one run in 10 million.
        assert!((bound as u64..bound as u64 + 40).contains(&held), "{name}: {held} records held, bound {bound}");
        assert_eq!(store.begin("u", "k599", "fp", day).await.unwrap(), Begin::Running, "{name}: the newest kept");
        assert_eq!(store.begin("u", "k0", "fp", day).await.unwrap(), Begin::Started, "{name}: the oldest evicted");
    }
    stores.done().await;
}

/// Two instances on one database and no Redis: a burst of 20 requests with one key,
/// half through each instance's own pool, starts the work exactly once.
async fn two_instances_on_one_database_start_a_key_once(on: Engine) {
    use app_kernel::reliability::SqlIdempotencyStore;
    let day = Duration::from_secs(86_400);
    let stores = sql_stores(&on, 1000).await;
    for (db, (name, _)) in stores.dbs.iter().zip(&stores.list) {
        let one = SqlIdempotencyStore::open(db.connect(app_kernel::db::SchemaPolicy::Closed).await).await.unwrap();
        let two = SqlIdempotencyStore::open(db.connect(app_kernel::db::SchemaPolicy::Closed).await).await.unwrap();
        let burst = (0..20).map(|i| {
            let store = if i % 2 == 0 { one.clone() } else { two.clone() };
            async move { store.begin("user:ann", "burst", "fp", day).await.unwrap() }
        });
        let answers = futures::future::join_all(burst).await;
        let started = answers.iter().filter(|a| **a == Begin::Started).count();
        assert_eq!(started, 1, "{name}: {answers:?}");
        assert!(answers.iter().all(|a| matches!(a, Begin::Started | Begin::Running)), "{name}: {answers:?}");
    }
    stores.done().await;
}

async fn the_memory_store_holds_a_bounded_number_of_bytes() {
    let day = Duration::from_secs(86_400);
    let store = MemoryIdempotencyStore::default().with_max_bytes(10_000);
    for i in 0..10 {
        let key = format!("k{i}");
        assert_eq!(store.begin(&format!("caller{i}"), &key, "fp", day).await.unwrap(), Begin::Started);
        let big = StoredResponse { status: 200, headers: vec![], body: vec![b'x'; 3000] };
        store.finish(&format!("caller{i}"), &key, Record::done("fp".into(), big), day).await.unwrap();
    }
    // Three records of 3 KB fit in 10 KB: the newest stay, the oldest went.
    assert!(matches!(store.begin("caller9", "k9", "fp", day).await.unwrap(), Begin::Done(_)));
    assert!(matches!(store.begin("caller7", "k7", "fp", day).await.unwrap(), Begin::Done(_)));
    assert_eq!(store.begin("caller0", "k0", "fp", day).await.unwrap(), Begin::Started);
    assert_eq!(store.begin("caller5", "k5", "fp", day).await.unwrap(), Begin::Started);
}
