//! Run: cargo run --release --example plain_axum
//!
//! The load harness's baseline: the widget example's routes written with plain
//! axum and no kernel, on the fastest SQLite path we know (rusqlite, one writer and
//! four reader connections, every call in `spawn_blocking`, cached statements, WAL,
//! `synchronous=NORMAL`) and the same HS256 bearer check, so `bench/load.py` can
//! print the kernel's cost as a ratio measured in the same run.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rusqlite::Connection;
use serde_json::{json, Map, Value};

struct Pool {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next: AtomicUsize,
    key: DecodingKey,
    validation: Validation,
}

type Shared = Arc<Pool>;

fn open(path: &str) -> Connection {
    let conn = Connection::open(path).expect("open");
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;").unwrap();
    conn
}

fn user_id(pool: &Pool, headers: &HeaderMap) -> Result<String, StatusCode> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(StatusCode::UNAUTHORIZED)?;
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &pool.key, &pool.validation)
        .map_err(|_| StatusCode::UNAUTHORIZED)?;
    if data.claims.get("type").and_then(Value::as_str) != Some("access") {
        return Err(StatusCode::UNAUTHORIZED);
    }
    data.claims.get("sub").and_then(Value::as_str).map(str::to_owned).ok_or(StatusCode::UNAUTHORIZED)
}

async fn list(State(pool): State<Shared>, headers: HeaderMap) -> Result<Json<Vec<Value>>, StatusCode> {
    let owner = user_id(&pool, &headers)?;
    let rows = tokio::task::spawn_blocking(move || {
        let i = pool.next.fetch_add(1, Ordering::Relaxed) % pool.readers.len();
        let conn = pool.readers[i].lock().unwrap();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, owner, name, size, created_at, updated_at FROM widgets WHERE owner = ?1 \
                 ORDER BY created_at DESC LIMIT 100",
            )
            .unwrap();
        let rows = stmt.query_map([owner], |r| {
            Ok(json!({"id": r.get::<_, String>(0)?, "owner": r.get::<_, String>(1)?, "name": r.get::<_, String>(2)?,
                "size": r.get::<_, i64>(3)?, "created_at": r.get::<_, String>(4)?, "updated_at": r.get::<_, String>(5)?}))
        });
        rows.and_then(Iterator::collect::<Result<Vec<_>, _>>)
    })
    .await
    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(Json(rows))
}

async fn create(
    State(pool): State<Shared>,
    headers: HeaderMap,
    Json(data): Json<Map<String, Value>>,
) -> Result<Json<Value>, StatusCode> {
    let owner = user_id(&pool, &headers)?;
    let name = data.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let size = data.get("size").and_then(Value::as_i64).unwrap_or_default();
    let row = tokio::task::spawn_blocking(move || {
        let id = uuid::Uuid::now_v7().to_string();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let conn = pool.writer.lock().unwrap();
        conn.prepare_cached(
            "INSERT INTO widgets (id, owner, name, size, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        )
        .and_then(|mut s| s.execute(rusqlite::params![id, owner, name, size, now]))
        .map(|_| json!({"id": id, "owner": owner, "name": name, "size": size, "created_at": now, "updated_at": now}))
    })
    .await
    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(Json(row))
}

#[tokio::main]
async fn main() {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8001".into());
    let path = std::env::var("DATABASE_NAME").unwrap_or_else(|_| "./data/plain_axum.db".into());
    if let Some(dir) = std::path::Path::new(&path).parent() {
        std::fs::create_dir_all(dir).expect("data dir");
    }
    let writer = open(&path);
    writer
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS widgets (id TEXT PRIMARY KEY, owner TEXT, name TEXT, size INTEGER, \
             created_at TEXT, updated_at TEXT); \
             CREATE INDEX IF NOT EXISTS widgets_owner_created_at_idx ON widgets (owner, created_at);",
        )
        .unwrap();
    let secret = std::env::var("JWT_SECRET").expect("JWT_SECRET");
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 5;
    let pool = Arc::new(Pool {
        writer: Mutex::new(writer),
        readers: (0..4).map(|_| Mutex::new(open(&path))).collect(),
        next: AtomicUsize::new(0),
        key: DecodingKey::from_secret(secret.as_bytes()).expect("a non-empty JWT_SECRET"),
        validation,
    });
    let app = Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(|| async { Json(json!({"status": "healthy"})) }))
        .route("/api/v1/widgets", get(list).post(create))
        .with_state(pool);
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
