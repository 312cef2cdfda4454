//! Sessions end when they should: an access token stops working after its user's
//! password change, logout, deactivation or role change, on the instance that made
//! the change at once and on another instance of the service (another process with
//! the same database) within the identity cache's window. SQLite always; PostgreSQL
//! and MariaDB ignored when their URLs are unset.

mod common;

use std::time::{Duration, Instant};

use app_kernel::db::DatabaseSettings;
use app_kernel::settings::KernelSettings;
use app_kernel::Service;
use axum::Router;
use common::db::TestDb;
use common::trials::{self, test, Engine, Server};
use common::{assert_problem, Reply};
use serde_json::{json, Value};

const AUTH: &str = "/api/v1/auth";

async fn call(router: &Router, method: &str, path: &str, bearer: Option<&str>, body: Option<Value>) -> Reply {
    common::call(router, method, &format!("{AUTH}{path}"), bearer, body).await
}

async fn me(router: &Router, token: &str) -> Reply {
    call(router, "GET", "/me", Some(token), None).await
}

/// Registers `username` (password `correct horse`) and returns a fresh access token.
async fn signed_in(router: &Router, username: &str) -> (String, String) {
    let body = json!({"username": username, "password": "correct horse"});
    let reg = call(router, "POST", "/register", None, Some(body)).await;
    assert_eq!(reg.status, 201, "{}", reg.text());
    (reg.json()["id"].as_str().unwrap().to_owned(), login(router, username, "correct horse").await)
}

async fn login(router: &Router, username: &str, password: &str) -> String {
    let reply = call(router, "POST", "/login", None, Some(json!({"username": username, "password": password}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

async fn services(database: DatabaseSettings, count: usize) -> (Vec<Service>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    for _ in 0..count {
        let mut s: KernelSettings = common::test_settings(dir.path());
        s.features.allow_self_signup = true;
        s.database = database.clone();
        out.push(Service::builder("sessions").settings(s).build().await.expect("service builds"));
    }
    (out, dir)
}

fn sqlite(dir: &tempfile::TempDir) -> DatabaseSettings {
    DatabaseSettings::sqlite(dir.path().join("shared.db").display().to_string())
}

async fn access_tokens_die_with_password_change_logout_deactivation_and_demotion() {
    let dir = tempfile::tempdir().unwrap();
    let (svcs, _d) = services(sqlite(&dir), 1).await;
    let router = svcs[0].router();
    let store = svcs[0].kernel().auth().users().unwrap().clone();

    let (_, before) = signed_in(&router, "ann").await;
    let second_device = login(&router, "ann", "correct horse").await;
    assert_eq!(me(&router, &before).await.status, 200);
    let body = json!({"old_password": "correct horse", "new_password": "battery staple"});
    assert_eq!(call(&router, "POST", "/change-password", Some(&before), Some(body)).await.status, 200);
    assert_problem(&me(&router, &before).await, 401, "token_revoked");
    assert_problem(&me(&router, &second_device).await, 401, "token_revoked");

    let after = login(&router, "ann", "battery staple").await;
    assert_eq!(me(&router, &after).await.status, 200, "a token issued after the change works");
    assert_eq!(call(&router, "POST", "/logout", Some(&after), None).await.status, 200);
    assert_problem(&me(&router, &after).await, 401, "token_revoked");

    let (bob, bobs) = signed_in(&router, "bob").await;
    store.set_active(&bob, false).await.unwrap();
    assert_eq!(me(&router, &bobs).await.status, 401);
    store.set_active(&bob, true).await.unwrap();
    assert_problem(&me(&router, &bobs).await, 401, "token_revoked");

    let (carol, _) = signed_in(&router, "carol").await;
    store.set_role(&carol, "admin").await.unwrap();
    let admin = login(&router, "carol", "correct horse").await;
    assert_eq!(call(&router, "GET", "/api-keys", Some(&admin), None).await.status, 200);
    store.set_role(&carol, "user").await.unwrap();
    assert_problem(&call(&router, "GET", "/api-keys", Some(&admin), None).await, 401, "token_revoked");
}

/// Instance `one` revokes; instance `two` (its own identity cache, as another
/// process has) refuses the token within the cache's window (2 s).
async fn another_instance_refuses_within_the_window(database: DatabaseSettings) {
    let (svcs, _d) = services(database, 2).await;
    let (one, two) = (svcs[0].router(), svcs[1].router());
    let (_, token) = signed_in(&one, "dave").await;
    assert_eq!(me(&two, &token).await.status, 200, "two caches dave");
    assert_eq!(call(&one, "POST", "/logout", Some(&token), None).await.status, 200);
    let started = Instant::now();
    loop {
        let reply = me(&two, &token).await;
        if reply.status == 401 {
            assert_problem(&reply, 401, "token_revoked");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "instance two still accepts the token");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for svc in svcs {
        svc.kernel().db().close().await;
    }
}

async fn another_instance_refuses_within_the_window_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    another_instance_refuses_within_the_window(sqlite(&dir)).await;
}

async fn another_instance_refuses_within_the_window_on_postgres(url: String) {
    let db = TestDb::new(&Engine::Postgres(url)).await;
    another_instance_refuses_within_the_window(db.settings().clone()).await;
    db.finish().await;
}

async fn another_instance_refuses_within_the_window_on_mysql(url: String) {
    let db = TestDb::new(&Engine::Mysql(url)).await;
    another_instance_refuses_within_the_window(db.settings().clone()).await;
    db.finish().await;
}

async fn the_default_access_token_lives_15_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let settings = app_kernel::ServiceConfig::default().into_settings("svc").unwrap();
    assert_eq!(settings.auth.access_token_expires_minutes, 15);
    let (svcs, _d) = services(sqlite(&dir), 1).await;
    let router = svcs[0].router();
    signed_in(&router, "erin").await;
    let reply = call(&router, "POST", "/login", None, Some(json!({"username": "erin", "password": "correct horse"})));
    assert_eq!(reply.await.json()["expires_in"], 900);
}

async fn a_table_made_before_token_versions_gets_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let db = app_kernel::Db::connect(&sqlite(&dir), "old").await.unwrap();
    db.execute(
        "CREATE TABLE kernel_users (id VARCHAR(36) PRIMARY KEY, username VARCHAR(50) NOT NULL UNIQUE, \
         email VARCHAR(255) UNIQUE, password_hash VARCHAR(255) NOT NULL, role VARCHAR(32) NOT NULL, \
         is_active BIGINT NOT NULL DEFAULT 1, created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32) NOT NULL)",
        &[],
    )
    .await
    .unwrap();
    db.close().await;
    let (svcs, _d) = services(sqlite(&dir), 1).await;
    let router = svcs[0].router();
    let (_, token) = signed_in(&router, "fay").await;
    assert_eq!(call(&router, "POST", "/logout", Some(&token), None).await.status, 200);
    assert_problem(&me(&router, &token).await, 401, "token_revoked");
}

fn main() {
    trials::run(vec![
        test("access_tokens_die_with_password_change_logout_deactivation_and_demotion")
            .run(|_| access_tokens_die_with_password_change_logout_deactivation_and_demotion()),
        test("another_instance_refuses_within_the_window_on_sqlite")
            .run(|_| another_instance_refuses_within_the_window_on_sqlite()),
        test("another_instance_refuses_within_the_window_on_postgres")
            .needs(Server::Postgres)
            .run(|urls| another_instance_refuses_within_the_window_on_postgres(urls.get(Server::Postgres))),
        test("another_instance_refuses_within_the_window_on_mysql")
            .needs(Server::Mysql)
            .run(|urls| another_instance_refuses_within_the_window_on_mysql(urls.get(Server::Mysql))),
        test("the_default_access_token_lives_15_minutes").run(|_| the_default_access_token_lives_15_minutes()),
        test("a_table_made_before_token_versions_gets_the_column")
            .run(|_| a_table_made_before_token_versions_gets_the_column()),
    ]);
}
