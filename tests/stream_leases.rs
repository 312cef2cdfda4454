//! Stream leases: the store contract on every store (in process: memory, SQL on SQLite;
//! on PostgreSQL, MariaDB and Redis as `SERVER::NAME`, each ignored when its
//! `KERNEL_TEST_*_URL` is unset), the guard's release on drop and keep-alive,
//! and a streaming route that holds a lease while its body is open.

mod common;

use std::sync::Arc;
use std::time::Duration;

use app_kernel::auth::NewUser;
use app_kernel::streaming::{LeaseStore, MemoryLeaseStore, StreamError, StreamLeases};
use axum::body::Body;
use axum::routing::get;
use axum::Router;
use common::trials::{self, test, Engine, Server};
use common::{assert_problem, send, service};
use futures::StreamExt;
use http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The stores under test, and the databases of the SQL ones (dropped by `done`).
struct Stores {
    list: Vec<(&'static str, Arc<dyn LeaseStore>)>,
    dbs: Vec<common::db::TestDb>,
}

impl Stores {
    async fn done(self) {
        for db in self.dbs {
            db.finish().await;
        }
    }
}

/// The SQL store on `on`'s database (SQLite for [`Engine::Local`]), with the database.
async fn sql_stores(on: &Engine) -> Stores {
    let Some(name) = on.sql_name() else { return Stores { list: Vec::new(), dbs: Vec::new() } };
    let db = common::db::TestDb::new(on).await;
    let store = app_kernel::streaming::SqlLeaseStore::open(db.db.clone()).await.expect("tables");
    Stores { list: vec![(name, Arc::new(store))], dbs: vec![db] }
}

/// Every store of `on` (in process: memory and SQLite), by name; Redis stores get a
/// key prefix of their own.
async fn stores(on: &Engine) -> Stores {
    let mut all = sql_stores(on).await;
    match on {
        Engine::Local => all.list.push(("memory", Arc::new(MemoryLeaseStore::default()))),
        #[cfg(feature = "redis")]
        Engine::Redis(url) => {
            let prefix = format!("{}:", common::unique_name("sl"));
            let store = app_kernel::streaming::RedisLeaseStore::connect(url, &prefix).await.expect("redis");
            all.list.push(("redis", Arc::new(store)));
        }
        _ => {}
    }
    all
}

async fn a_store_holds_at_most_max_leases_per_user(on: Engine) {
    let ttl = Duration::from_secs(60);
    let stores = stores(&on).await;
    for (name, store) in &stores.list {
        assert!(store.acquire("ann", "a1", 2, ttl).await.unwrap(), "{name}");
        assert!(store.acquire("ann", "a2", 2, ttl).await.unwrap(), "{name}");
        assert!(!store.acquire("ann", "a3", 2, ttl).await.unwrap(), "{name}: the third is refused");
        assert!(store.acquire("bob", "b1", 2, ttl).await.unwrap(), "{name}: another user counts apart");
        store.release("ann", "a1").await.unwrap();
        assert!(store.acquire("ann", "a3", 2, ttl).await.unwrap(), "{name}: a release frees a place");
        store.release("ann", "gone").await.unwrap();
    }
    stores.done().await;
}

async fn an_unrefreshed_lease_expires_and_a_refreshed_one_lives_on(on: Engine) {
    let ttl = Duration::from_secs(1);
    let stores = stores(&on).await;
    for (name, store) in &stores.list {
        assert!(store.acquire("ann", "kept", 2, ttl).await.unwrap());
        assert!(store.acquire("ann", "left", 2, ttl).await.unwrap());
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            assert!(store.refresh("ann", "kept", ttl).await.unwrap(), "{name}: kept alive");
        }
        // 1.2 s on, the unrefreshed lease is gone (a crashed instance's lease, say).
        assert!(!store.refresh("ann", "left", ttl).await.unwrap(), "{name}: expired");
        assert!(store.acquire("ann", "new", 2, ttl).await.unwrap(), "{name}: its place is free");
        assert!(!store.acquire("ann", "more", 2, ttl).await.unwrap(), "{name}: the refreshed one still counts");
    }
    stores.done().await;
}

/// Acquires a lease for `user`, waiting up to 5 s for a place (a dropped lease is
/// released in the background).
async fn acquire_soon(leases: &StreamLeases, user: &str) -> app_kernel::streaming::StreamLease {
    for _ in 0..100 {
        if let Ok(lease) = leases.acquire(user).await {
            return lease;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no place freed for {user}");
}

async fn concurrent_acquires_never_exceed_the_limit(on: Engine) {
    let stores = stores(&on).await;
    for (name, store) in &stores.list {
        let tries: Vec<_> = (0..50)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.acquire("ann", &format!("l{i}"), 5, Duration::from_secs(60)).await })
            })
            .collect();
        let mut taken = 0;
        for t in tries {
            taken += usize::from(t.await.unwrap().unwrap());
        }
        assert_eq!(taken, 5, "{name}");
    }
    stores.done().await;
}

/// Two instances on one database and no Redis: 20 acquires of one user at once,
/// half through each instance's own pool, never hold more than the limit.
async fn two_instances_on_one_database_never_exceed_the_limit(on: Engine) {
    let stores = sql_stores(&on).await;
    for (db, (name, _)) in stores.dbs.iter().zip(&stores.list) {
        let mut instances = Vec::new();
        for _ in 0..2 {
            let handle = db.connect(app_kernel::db::SchemaPolicy::Closed).await;
            instances.push(app_kernel::streaming::SqlLeaseStore::open(handle).await.unwrap());
        }
        let tries: Vec<_> = (0..20)
            .map(|i| {
                let store = instances[i % 2].clone();
                tokio::spawn(async move { store.acquire("ann", &format!("l{i}"), 3, Duration::from_secs(60)).await })
            })
            .collect();
        let mut taken = 0;
        for t in tries {
            taken += usize::from(t.await.unwrap().unwrap());
        }
        assert_eq!(taken, 3, "{name}");
    }
    stores.done().await;
}

async fn a_dropped_lease_frees_its_place_and_keep_alive_outlives_the_ttl() {
    let leases = StreamLeases::new(1, Duration::from_secs(1), Arc::new(MemoryLeaseStore::default()));
    let held = leases.acquire("ann").await.unwrap();
    assert!(matches!(leases.acquire("ann").await, Err(StreamError::LimitExceeded { max: 1 })));
    drop(held);
    let kept = acquire_soon(&leases, "ann").await.keep_alive();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    kept.refresh().await.expect("still live after twice its ttl");
    assert!(leases.acquire("ann").await.is_err());
    kept.release().await.unwrap();
    assert!(leases.acquire("ann").await.is_ok());
}

async fn chat(user: app_kernel::auth::CurrentUser, leases: StreamLeases) -> Result<Body, app_kernel::ApiError> {
    let lease = leases.acquire(&user.id).await?;
    let chunks = futures::stream::iter(0..3).then(move |i| {
        let _held = &lease;
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<_, std::io::Error>(format!("chunk {i}\n"))
        }
    });
    Ok(Body::from_stream(chunks))
}

async fn a_user_gets_429_past_their_open_streams_and_a_place_back_when_one_ends() {
    let svc = service(vec![Router::new().route("/chat", get(chat))], |s| s.streaming.max_concurrent_per_user = 2).await;
    let kernel = svc.service.kernel();
    let new = NewUser { username: "ann", email: None, password: "correct horse battery", role: "user" };
    let ann = kernel.auth().users().unwrap().clone().create_user(&new).await.unwrap();
    let token = kernel.auth().tokens().issue_access(&ann).unwrap().token;
    let open = || {
        let req = Request::get("/api/v1/chat").header("authorization", format!("Bearer {token}"));
        svc.router().oneshot(req.body(Body::empty()).unwrap())
    };
    // Two streams open (their bodies not read yet: the leases are held).
    let (first, second) = (open().await.unwrap(), open().await.unwrap());
    assert_eq!((first.status(), second.status()), (http::StatusCode::OK, http::StatusCode::OK));
    let third = send(&svc.router(), {
        let req = Request::get("/api/v1/chat").header("authorization", format!("Bearer {token}"));
        req.body(Body::empty()).unwrap()
    })
    .await;
    assert_problem(&third, 429, "too_many_streams");
    // The first stream runs to its end; its lease goes with its body.
    let text = first.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(text, "chunk 0\nchunk 1\nchunk 2\n");
    // (Released in the background: wait for the place.)
    let mut status = http::StatusCode::TOO_MANY_REQUESTS;
    for _ in 0..100 {
        status = open().await.unwrap().status();
        if status == http::StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, http::StatusCode::OK);
    drop(second);
}

/// The servers of the store contract (each `SERVER::NAME`); the first two hold databases.
const SERVERS: [Server; 3] = [Server::Postgres, Server::Mysql, Server::Redis];

fn main() {
    let mut all = Vec::new();
    all.extend(
        test("a_store_holds_at_most_max_leases_per_user").on_each(&SERVERS, a_store_holds_at_most_max_leases_per_user),
    );
    all.extend(
        test("an_unrefreshed_lease_expires_and_a_refreshed_one_lives_on")
            .on_each(&SERVERS, an_unrefreshed_lease_expires_and_a_refreshed_one_lives_on),
    );
    all.extend(
        test("concurrent_acquires_never_exceed_the_limit")
            .threads(4)
            .on_each(&SERVERS, concurrent_acquires_never_exceed_the_limit),
    );
    all.extend(
        test("two_instances_on_one_database_never_exceed_the_limit")
            .threads(4)
            .on_each(&SERVERS[..2], two_instances_on_one_database_never_exceed_the_limit),
    );
    all.push(
        test("a_dropped_lease_frees_its_place_and_keep_alive_outlives_the_ttl")
            .run(|_| a_dropped_lease_frees_its_place_and_keep_alive_outlives_the_ttl()),
    );
    all.push(
        test("a_user_gets_429_past_their_open_streams_and_a_place_back_when_one_ends")
            .run(|_| a_user_gets_429_past_their_open_streams_and_a_place_back_when_one_ends()),
    );
    trials::run(all);
}
