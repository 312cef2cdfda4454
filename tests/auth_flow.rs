//! Authentication on the database, through HTTP: the docs/CONTRACT.md auth routes on
//! SQLite always, and on PostgreSQL and MariaDB (ignored when their URLs are unset).

mod common;

use app_kernel::auth::AuthMode;
use app_kernel::settings::KernelSettings;
use axum::body::Body;
use axum::Router;
use common::db::TestDb;
use common::trials::{self, test, Engine, Server};
use common::{assert_problem, call, send, service, Reply};
use http::Request;
use serde_json::{json, Value};

const AUTH: &str = "/api/v1/auth";

fn open(s: &mut KernelSettings) {
    s.features.allow_self_signup = true;
}

async fn post(router: &Router, path: &str, bearer: Option<&str>, body: Value) -> Reply {
    call(router, "POST", &format!("{AUTH}{path}"), bearer, Some(body)).await
}

async fn register(router: &Router, username: &str, email: Option<&str>, password: &str) -> Reply {
    post(router, "/register", None, json!({"username": username, "email": email, "password": password})).await
}

async fn login(router: &Router, username: &str, password: &str) -> Reply {
    post(router, "/login", None, json!({"username": username, "password": password})).await
}

/// Registers and logs in; returns (user id, access token, refresh token).
async fn signed_in(router: &Router, username: &str) -> (String, String, String) {
    let reg = register(router, username, Some(&format!("{username}@example.com")), "correct horse").await;
    assert_eq!(reg.status, 201, "{}", reg.text());
    let reply = login(router, username, "correct horse").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    (
        reg.json()["id"].as_str().unwrap().to_owned(),
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn full_flow(router: &Router) {
    let reg = register(router, "ann", Some("Ann@Example.com"), "correct horse").await;
    assert_eq!(reg.status, 201, "{}", reg.text());
    let user = reg.json();
    assert_eq!(
        (user["username"].as_str(), user["email"].as_str(), user["role"].as_str()),
        (Some("ann"), Some("ann@example.com"), Some("user"))
    );
    assert!(user.get("password_hash").is_none());

    let reply = login(router, "ann@example.com", "correct horse").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let pair = reply.json();
    assert_eq!(pair["token_type"], "bearer");
    assert!(pair["expires_in"].as_u64().unwrap() > 0);
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let refresh = pair["refresh_token"].as_str().unwrap().to_owned();

    let me = call(router, "GET", &format!("{AUTH}/me"), Some(&access), None).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json(), user);

    let rotated = post(router, "/refresh", None, json!({"refresh_token": refresh})).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text());
    let refresh2 = rotated.json()["refresh_token"].as_str().unwrap().to_owned();
    let access2 = rotated.json()["access_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh2, refresh);
    assert_problem(&post(router, "/refresh", None, json!({"refresh_token": access2})).await, 401, "wrong_token_type");

    let wrong = post(
        router,
        "/change-password",
        Some(&access2),
        json!({"old_password": "nope nope", "new_password": "battery staple"}),
    )
    .await;
    assert_problem(&wrong, 400, "wrong_password");
    let short = post(
        router,
        "/change-password",
        Some(&access2),
        json!({"old_password": "correct horse", "new_password": "short"}),
    )
    .await;
    let body = assert_problem(&short, 422, "validation_failed");
    assert_eq!(body["errors"][0]["loc"], json!(["body", "new_password"]));
    let changed = post(
        router,
        "/change-password",
        Some(&access2),
        json!({"old_password": "correct horse", "new_password": "battery staple"}),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert_eq!(changed.json(), json!({"message": "Password changed successfully"}));

    assert_problem(&post(router, "/refresh", None, json!({"refresh_token": refresh2})).await, 401, "token_revoked");
    assert_problem(&login(router, "ann", "correct horse").await, 401, "invalid_credentials");

    let fresh = login(router, "ann", "battery staple").await.json();
    let (access3, refresh3) = (fresh["access_token"].as_str().unwrap(), fresh["refresh_token"].as_str().unwrap());
    let out = post(router, "/logout", Some(access3), json!({"refresh_token": refresh3})).await;
    assert_eq!(out.status, 200);
    assert_eq!(out.json(), json!({"message": "Logged out successfully"}));
    assert_problem(&post(router, "/refresh", None, json!({"refresh_token": refresh3})).await, 401, "token_revoked");
    let me = call(router, "GET", &format!("{AUTH}/me"), Some(access3), None).await;
    assert_problem(&me, 401, "token_revoked");
    let fresh = login(router, "ann", "battery staple").await.json();
    let access4 = fresh["access_token"].as_str().unwrap();
    let bare = call(router, "POST", &format!("{AUTH}/logout"), Some(access4), None).await;
    assert_eq!(bare.status, 200, "{}", bare.text());
}

async fn full_flow_on_sqlite() {
    let svc = service(vec![], open).await;
    full_flow(&svc.router()).await;
}

async fn full_flow_on(engine: Engine) {
    let db = TestDb::new(&engine).await;
    let settings = db.settings().clone();
    let svc = service(vec![], |s| {
        open(s);
        s.database = settings;
    })
    .await;
    full_flow(&svc.router()).await;
    let (_, access, _) = signed_in(&svc.router(), "bob").await;
    assert_eq!(call(&svc.router(), "GET", &format!("{AUTH}/me"), Some(&access), None).await.status, 200);
    svc.service.kernel().db().close().await;
    db.finish().await;
}

async fn full_flow_on_postgres(url: String) {
    full_flow_on(Engine::Postgres(url)).await;
}

async fn full_flow_on_mysql(url: String) {
    full_flow_on(Engine::Mysql(url)).await;
}

async fn self_signup_is_off_by_default() {
    let svc = service(vec![], |_| {}).await;
    assert_problem(&register(&svc.router(), "ann", None, "correct horse").await, 403, "signup_disabled");
}

async fn duplicates_are_409() {
    let svc = service(vec![], open).await;
    let router = svc.router();
    assert_eq!(register(&router, "ann", Some("ann@example.com"), "correct horse").await.status, 201);
    assert_problem(&register(&router, "ann", None, "correct horse").await, 409, "conflict");
    assert_problem(&register(&router, "other", Some("ANN@example.com"), "correct horse").await, 409, "conflict");
}

async fn validation_names_each_field() {
    let svc = service(vec![], open).await;
    let body =
        assert_problem(&register(&svc.router(), "an", Some("not-an-email"), "short").await, 422, "validation_failed");
    let locs: Vec<Value> = body["errors"].as_array().unwrap().iter().map(|e| e["loc"].clone()).collect();
    assert_eq!(locs, vec![json!(["body", "username"]), json!(["body", "email"]), json!(["body", "password"])]);
    for e in body["errors"].as_array().unwrap() {
        assert!(e["msg"].is_string() && e["type"].is_string());
    }
    let missing = post(&svc.router(), "/register", None, json!({"username": "ann"})).await;
    assert_eq!(missing.status, 422);
}

async fn login_accepts_the_oauth2_password_form() {
    let svc = service(vec![], open).await;
    let router = svc.router();
    assert_eq!(register(&router, "ann", None, "correct horse").await.status, 201);
    let req = Request::post(format!("{AUTH}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("grant_type=password&username=ann&password=correct+horse&scope="))
        .unwrap();
    let reply = send(&router, req).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["token_type"], "bearer");
}

async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let svc = service(vec![], open).await;
    let router = svc.router();
    assert_eq!(register(&router, "ann", None, "correct horse").await.status, 201);
    let unknown = assert_problem(&login(&router, "nobody", "correct horse").await, 401, "invalid_credentials");
    let wrong = assert_problem(&login(&router, "ann", "wrong horse").await, 401, "invalid_credentials");
    assert_eq!(unknown["detail"], wrong["detail"]);
}

async fn repeated_failures_are_throttled() {
    let svc = service(vec![], |s| {
        open(s);
        s.auth.login_throttle.max_failures_per_username = 2;
    })
    .await;
    let router = svc.router();
    assert_eq!(register(&router, "ann", None, "correct horse").await.status, 201);
    for _ in 0..2 {
        assert_problem(&login(&router, "ann", "wrong horse").await, 401, "invalid_credentials");
    }
    let reply = login(&router, "ann", "correct horse").await;
    assert_problem(&reply, 429, "login_throttled");
    assert!(reply.header("retry-after").unwrap().parse::<u64>().unwrap() > 0);
}

async fn a_reused_refresh_token_revokes_its_family() {
    let svc = service(vec![], open).await;
    let router = svc.router();
    let (_, _, first) = signed_in(&router, "ann").await;
    let second = post(&router, "/refresh", None, json!({"refresh_token": first})).await.json();
    let second = second["refresh_token"].as_str().unwrap().to_owned();
    assert_problem(&post(&router, "/refresh", None, json!({"refresh_token": first})).await, 401, "token_revoked");
    assert_problem(&post(&router, "/refresh", None, json!({"refresh_token": second})).await, 401, "token_revoked");
}

async fn a_deactivated_users_token_is_refused() {
    let svc = service(vec![], open).await;
    let router = svc.router();
    let (id, access, refresh) = signed_in(&router, "ann").await;
    let me = call(&router, "GET", &format!("{AUTH}/me"), Some(&access), None).await;
    assert_eq!(me.status, 200, "the identity is now cached");
    // The kernel's store (the one its identity cache belongs to) takes effect at once.
    svc.service.kernel().auth().users().unwrap().clone().set_active(&id, false).await.unwrap();
    assert_problem(&call(&router, "GET", &format!("{AUTH}/me"), Some(&access), None).await, 401, "inactive_user");
    assert_problem(&post(&router, "/refresh", None, json!({"refresh_token": refresh})).await, 401, "token_revoked");
    let right = assert_problem(&login(&router, "ann", "correct horse").await, 401, "invalid_credentials");
    let wrong = assert_problem(&login(&router, "ann", "wrong horse").await, 401, "invalid_credentials");
    assert_eq!(right["detail"], wrong["detail"], "no oracle for a deactivated account's password");
}

async fn wrong_old_passwords_are_throttled() {
    let svc = service(vec![], open).await;
    let router = svc.router();
    let (_, access, _) = signed_in(&router, "ann").await;
    let guess = json!({"old_password": "guess guess", "new_password": "battery staple"});
    for _ in 0..5 {
        assert_problem(&post(&router, "/change-password", Some(&access), guess.clone()).await, 400, "wrong_password");
    }
    let reply = post(&router, "/change-password", Some(&access), guess).await;
    assert_problem(&reply, 429, "login_throttled");
    assert!(reply.header("retry-after").is_some());
}

fn with_admin(s: &mut KernelSettings) {
    open(s);
    s.features.enable_audit_routes = true;
    s.auth.admin_email = Some("root@example.com".into());
    s.auth.admin_password = Some("admin password".to_owned().into());
}

async fn the_audit_route_is_for_admins() {
    let svc = service(vec![], with_admin).await;
    let router = svc.router();
    let (_, user_token, _) = signed_in(&router, "ann").await;
    assert_problem(&login(&router, "ann", "wrong horse").await, 401, "invalid_credentials");
    assert_problem(&call(&router, "GET", "/api/v1/audit", None, None).await, 401, "not_authenticated");
    assert_problem(&call(&router, "GET", "/api/v1/audit", Some(&user_token), None).await, 403, "not_admin");
    let admin = login(&router, "root", "admin password").await;
    assert_eq!(admin.status, 200, "{}", admin.text());
    let admin_token = admin.json()["access_token"].as_str().unwrap().to_owned();
    let page = call(&router, "GET", "/api/v1/audit?limit=2", Some(&admin_token), None).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let page = page.json();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert!(page["next_cursor"].is_string());
    let failed = call(&router, "GET", "/api/v1/audit?action=auth.login_failed", Some(&admin_token), None).await.json();
    let items = failed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["details"]["username"], "ann");
    assert!(!failed.to_string().contains("wrong horse"), "never the password");
    let actions: Vec<String> = call(&router, "GET", "/api/v1/audit?limit=100", Some(&admin_token), None).await.json()
        ["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    for action in ["auth.register", "auth.login", "auth.login_failed"] {
        assert!(actions.iter().any(|a| a == action), "{action} in {actions:?}");
    }
}

async fn api_keys_are_created_used_and_revoked() {
    let svc = service(vec![], |s| {
        with_admin(s);
        s.features.auth_mode = AuthMode::ApiKey;
    })
    .await;
    let router = svc.router();
    assert_eq!(login(&router, "root", "admin password").await.status, 404, "no login route in apikey mode");
    let kernel = svc.service.kernel();
    let store = kernel.auth().users().unwrap().clone();
    let admin = store.find_by_login("root@example.com").await.unwrap().unwrap().identity;
    let token = kernel.auth().tokens().issue_access(&admin).unwrap().token;

    let created = call(&router, "POST", &format!("{AUTH}/api-keys"), Some(&token), Some(json!({"name": "ci"}))).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let created = created.json();
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("ak_"));

    let with_key =
        |k: String| Request::get(format!("{AUTH}/api-keys")).header("x-api-key", k).body(Body::empty()).unwrap();
    let listed = send(&router, with_key(key.clone())).await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    let listed = listed.json();
    assert_eq!(listed["items"][0]["id"], id.as_str());
    assert!(listed["items"][0]["last_used_at"].is_string());
    assert!(!listed.to_string().contains(&key[3..]), "no secrets in the list");

    let revoked = call(&router, "DELETE", &format!("{AUTH}/api-keys/{id}"), Some(&token), None).await;
    assert_eq!(revoked.status, 204, "{}", revoked.text());
    assert_problem(&send(&router, with_key(key)).await, 401, "invalid_api_key");
    assert_eq!(call(&router, "DELETE", &format!("{AUTH}/api-keys/{id}"), Some(&token), None).await.status, 404);
}

async fn oversized_credentials_are_422_before_any_work() {
    let svc = service(vec![], open).await;
    let router = svc.router();
    let audit_rows = || async {
        let rows = svc.service.kernel().db().fetch_all("SELECT [id] FROM [kernel_audit]", &[]).await.unwrap();
        rows.len()
    };
    assert_problem(&login(&router, "nobody", "correct horse").await, 401, "invalid_credentials");
    let before = audit_rows().await;
    let huge = "a".repeat(512 * 1024);
    let body = assert_problem(&login(&router, &huge, "correct horse").await, 422, "validation_failed");
    assert_eq!(body["errors"][0]["loc"], json!(["body", "username"]));
    assert_problem(&login(&router, &"a".repeat(255), "correct horse").await, 422, "validation_failed");
    let body = assert_problem(&login(&router, "ann", &"p".repeat(1025)).await, 422, "validation_failed");
    assert_eq!(body["errors"][0]["loc"], json!(["body", "password"]));
    assert_eq!(audit_rows().await, before, "nothing recorded for refused input");
    assert_problem(&login(&router, &"a".repeat(254), "correct horse").await, 401, "invalid_credentials");

    let body = assert_problem(&register(&router, "ann", None, &"p".repeat(1025)).await, 422, "validation_failed");
    assert_eq!(body["errors"][0]["loc"], json!(["body", "password"]));
    let (_, access, _) = signed_in(&router, "ann").await;
    let change = json!({"old_password": "p".repeat(2048), "new_password": "battery staple"});
    let body =
        assert_problem(&post(&router, "/change-password", Some(&access), change).await, 422, "validation_failed");
    assert_eq!(body["errors"][0]["loc"], json!(["body", "old_password"]));
}

async fn usernames_are_canonical_and_unique_in_that_form() {
    let svc = service(vec![], open).await;
    let router = svc.router();
    let reg = register(&router, "Alice", None, "correct horse").await;
    assert_eq!((reg.status.as_u16(), reg.json()["username"].as_str()), (201, Some("alice")), "{}", reg.text());
    for same in ["alice", "ALICE", "ＡＬＩＣＥ"] {
        assert_problem(&register(&router, same, None, "correct horse").await, 409, "conflict");
    }
    // Zero-width space, Cyrillic а, newline, bidi override, space, an email, a non-ASCII letter.
    for bad in ["alice\u{200b}", "\u{430}lice", "alice\n", "ali\u{202e}ce", "ali ce", "al@ice.io", "\u{e9}lise"] {
        let body = assert_problem(&register(&router, bad, None, "correct horse").await, 422, "validation_failed");
        assert_eq!(body["errors"][0]["loc"], json!(["body", "username"]), "{bad:?}");
    }
    for spelled in ["alice", "ALICE", "Alice", "ａｌｉｃｅ"] {
        assert_eq!(login(&router, spelled, "correct horse").await.status, 200, "{spelled}");
    }
}

fn main() {
    trials::run(vec![
        test("full_flow_on_sqlite").run(|_| full_flow_on_sqlite()),
        test("full_flow_on_postgres")
            .needs(Server::Postgres)
            .run(|urls| full_flow_on_postgres(urls.get(Server::Postgres))),
        test("full_flow_on_mysql").needs(Server::Mysql).run(|urls| full_flow_on_mysql(urls.get(Server::Mysql))),
        test("self_signup_is_off_by_default").run(|_| self_signup_is_off_by_default()),
        test("duplicates_are_409").run(|_| duplicates_are_409()),
        test("validation_names_each_field").run(|_| validation_names_each_field()),
        test("login_accepts_the_oauth2_password_form").run(|_| login_accepts_the_oauth2_password_form()),
        test("unknown_user_and_wrong_password_get_the_same_answer")
            .run(|_| unknown_user_and_wrong_password_get_the_same_answer()),
        test("repeated_failures_are_throttled").run(|_| repeated_failures_are_throttled()),
        test("a_reused_refresh_token_revokes_its_family").run(|_| a_reused_refresh_token_revokes_its_family()),
        test("a_deactivated_users_token_is_refused").run(|_| a_deactivated_users_token_is_refused()),
        test("wrong_old_passwords_are_throttled").run(|_| wrong_old_passwords_are_throttled()),
        test("the_audit_route_is_for_admins").run(|_| the_audit_route_is_for_admins()),
        test("api_keys_are_created_used_and_revoked").run(|_| api_keys_are_created_used_and_revoked()),
        test("oversized_credentials_are_422_before_any_work").run(|_| oversized_credentials_are_422_before_any_work()),
        test("usernames_are_canonical_and_unique_in_that_form")
            .run(|_| usernames_are_canonical_and_unique_in_that_form()),
    ]);
}
