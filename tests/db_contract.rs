//! The database contract: one suite, every engine.
//!
//! SQLite runs in the default run; PostgreSQL and MariaDB/MySQL when
//! `KERNEL_TEST_POSTGRES_URL` / `KERNEL_TEST_MYSQL_URL` are set (and the `postgres` /
//! `mysql` features are on). Each test gets its own schema or database.

mod common;

use std::time::Duration;

use app_kernel::db::{AuditFilter, AuditLog, DatabaseKind, Db, DbError, Find};
use app_kernel::ApiError;
use common::db::TestDb;
use http::StatusCode;
use serde_json::{json, Value};

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() { super::run(app_kernel::db::DatabaseKind::Sqlite, stringify!($name), super::$name).await })*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() { super::run(app_kernel::db::DatabaseKind::Postgres, stringify!($name), super::$name).await })*
        }
        #[cfg(feature = "mysql")]
        mod mysql {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() { super::run(app_kernel::db::DatabaseKind::Mysql, stringify!($name), super::$name).await })*
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
    auto_schema_off_refuses_unknown_tables_and_fields,
    values_must_fit_their_column,
    bad_identifiers_and_shapes_are_clear_errors,
    sql_shaped_values_are_stored_as_data,
    portable_sql_is_translated,
    transaction_commits,
    transaction_rolls_back_on_error,
    transaction_rolls_back_on_drop,
    save_many_is_all_or_nothing,
    concurrent_saves_and_reads_lose_nothing,
    audit_log_pages_by_cursor,
);

async fn run<F, Fut>(kind: app_kernel::db::DatabaseKind, name: &str, test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: std::future::Future<Output = TestDb>,
{
    let Some(t) = TestDb::new(kind, name).await else { return };
    test(t).await.finish().await;
}

async fn values_round_trip_with_their_types(t: TestDb) -> TestDb {
    let input = json!({
        "count": 42, "big": i64::MAX, "neg": -7, "ratio": 1.5, "done": true, "off": false,
        "nothing": null, "name": "héllo 🌍", "looks_like_json": "{\"a\": 1}", "numeric_text": "123",
        "tags": [1, "x", null, {"k": [true]}], "meta": {"nested": {"deep": 1.25}}, "empty": "",
    });
    let saved = t.db.save_entity("items", &input).await.unwrap();
    let id = saved["id"].as_str().unwrap().to_owned();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
    let got = t.db.get_entity("items", &id).await.unwrap().expect("saved item");
    for (k, v) in input.as_object().unwrap() {
        assert_eq!(&got[k], v, "field {k} (saved: {})", saved[k]);
        assert_eq!(&saved[k], v, "field {k} as returned by save");
    }
    for stamp in ["created_at", "updated_at"] {
        chrono::DateTime::parse_from_rfc3339(got[stamp].as_str().unwrap()).unwrap();
    }
    // A later save of other shapes into the JSON column keeps them too.
    let again =
        t.db.save_entity("items", json!({"id": id, "nothing": "now a string", "tags": {"a": 1}})).await.unwrap();
    assert_eq!(again["nothing"], json!("now a string"));
    assert_eq!(again["tags"], json!({"a": 1}));
    assert_eq!(again["count"], json!(42), "a save merges: fields not given keep their values");
    t
}

/// A save's answer is the stored row, whichever way the engine produces it: column
/// defaults the app declared and values the column's type converts included.
async fn save_answers_what_a_read_returns(t: TestDb) -> TestDb {
    let all_kinds = json!({"n": 3, "f": 2, "b": true, "s": "x", "j": {"a": [1.5]}, "none": null});
    let saved = t.db.save_entity("kinds", &all_kinds).await.unwrap();
    let again = t.db.save_entity("kinds", json!({"s": "y"})).await.unwrap();
    for row in [saved, again] {
        let got = t.db.get_entity("kinds", row["id"].as_str().unwrap()).await.unwrap().unwrap();
        assert_eq!(row, got, "a fresh save answers the row a read gives, other columns null");
    }
    t.db.execute(
        "CREATE TABLE [tickets] ([id] VARCHAR(64) PRIMARY KEY, [title] VARCHAR(200), \
         [status] VARCHAR(20) DEFAULT 'open', [created_at] VARCHAR(64), [updated_at] VARCHAR(64))",
        &[],
    )
    .await
    .unwrap();
    let ticket = t.db.save_entity("tickets", json!({"title": "t"})).await.unwrap();
    assert_eq!(ticket["status"], "open", "the column default is in the answer");
    assert_eq!(Some(ticket.clone()), t.db.get_entity("tickets", ticket["id"].as_str().unwrap()).await.unwrap());
    if t.db.kind() == DatabaseKind::Sqlite {
        // DATETIME has NUMERIC affinity: SQLite stores the text "2024" as the integer 2024.
        t.db.execute(
            "CREATE TABLE [days] ([id] TEXT PRIMARY KEY, [day] DATETIME, [created_at] TEXT, [updated_at] TEXT)",
            &[],
        )
        .await
        .unwrap();
        let day = t.db.save_entity("days", json!({"day": "2024"})).await.unwrap();
        assert_eq!(Some(day.clone()), t.db.get_entity("days", day["id"].as_str().unwrap()).await.unwrap());
    }
    t
}

async fn save_upserts_and_keeps_created_at(t: TestDb) -> TestDb {
    let first = t.db.save_entity("projects", json!({"id": "p1", "name": "a", "owner": "u1"})).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = t.db.save_entity("projects", json!({"id": "p1", "name": "b"})).await.unwrap();
    assert_eq!(second["id"], "p1");
    assert_eq!(second["name"], "b");
    assert_eq!(second["owner"], "u1");
    assert_eq!(second["created_at"], first["created_at"]);
    assert!(second["updated_at"].as_str() > first["updated_at"].as_str());
    assert_eq!(t.db.count_entities("projects", Find::new()).await.unwrap(), 1);
    let err = t.db.require_entity("projects", "nope").await.unwrap_err();
    assert!(matches!(err, DbError::NotFound { .. }));
    assert_eq!(ApiError::from(err).status(), StatusCode::NOT_FOUND);
    t
}

async fn find_filters_orders_and_pages(t: TestDb) -> TestDb {
    for (i, owner) in ["a", "b", "a", "a", "b"].iter().enumerate() {
        t.db.save_entity("tasks", json!({"owner": owner, "rank": i})).await.unwrap();
    }
    let q = Find::new().filter("[owner] = ?", ["a"]).order_by("[rank] DESC").limit(2).offset(1);
    let ranks: Vec<Value> = t.db.find_entities("tasks", q).await.unwrap().iter().map(|r| r["rank"].clone()).collect();
    assert_eq!(ranks, vec![json!(2), json!(0)]);
    let all = t.db.find_entities("tasks", Find::new().order_by("owner, [rank] desc")).await.unwrap();
    assert_eq!(all.iter().map(|r| r["rank"].as_i64().unwrap()).collect::<Vec<_>>(), [3, 2, 0, 4, 1]);
    let skipped = t.db.find_entities("tasks", Find::new().order_by("[rank]").offset(3)).await.unwrap();
    assert_eq!(skipped.len(), 2);
    let two = Find::new().filter("[owner] = ?", ["a"]).filter("[rank] > ?", [0]);
    assert_eq!(t.db.count_entities("tasks", two).await.unwrap(), 2);
    t
}

async fn soft_delete_hides_and_delete_removes(t: TestDb) -> TestDb {
    let a = t.db.save_entity("notes", json!({"text": "a"})).await.unwrap();
    let b = t.db.save_entity("notes", json!({"text": "b"})).await.unwrap();
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    assert!(t.db.soft_delete_entity("notes", a).await.unwrap());
    assert!(!t.db.soft_delete_entity("notes", a).await.unwrap());
    assert!(t.db.get_entity("notes", a).await.unwrap().is_none());
    assert_eq!(t.db.find_entities("notes", Find::new()).await.unwrap().len(), 1);
    assert_eq!(t.db.count_entities("notes", Find::new()).await.unwrap(), 1);
    let with_deleted = t.db.find_entities("notes", Find::new().include_deleted()).await.unwrap();
    assert_eq!(with_deleted.len(), 2);
    assert!(t.db.delete_entity("notes", b).await.unwrap());
    assert!(!t.db.delete_entity("notes", b).await.unwrap());
    assert!(t.db.get_entity("notes", b).await.unwrap().is_none());
    t
}

async fn missing_tables_read_as_empty(t: TestDb) -> TestDb {
    assert!(t.db.find_entities("ghosts", Find::new().limit(5)).await.unwrap().is_empty());
    assert!(t.db.get_entity("ghosts", "x").await.unwrap().is_none());
    assert_eq!(t.db.count_entities("ghosts", Find::new()).await.unwrap(), 0);
    assert!(!t.db.delete_entity("ghosts", "x").await.unwrap());
    assert!(!t.db.soft_delete_entity("ghosts", "x").await.unwrap());
    t
}

async fn auto_schema_off_refuses_unknown_tables_and_fields(t: TestDb) -> TestDb {
    let strict = t.connect(false).await;
    let err = strict.save_entity("widgets", json!({"name": "w"})).await.unwrap_err();
    assert!(matches!(err, DbError::MissingTable { .. }), "{err}");
    assert_eq!(ApiError::from(err).status(), StatusCode::INTERNAL_SERVER_ERROR);
    strict
        .execute(
            "CREATE TABLE [widgets] ([id] VARCHAR(64) PRIMARY KEY, [name] TEXT NOT NULL, [qty] INTEGER, \
             [created_at] TEXT, [updated_at] TEXT)",
            &[],
        )
        .await
        .unwrap();
    let w = strict.save_entity("widgets", json!({"name": "w", "qty": 3})).await.unwrap();
    assert_eq!((w["name"].clone(), w["qty"].clone()), (json!("w"), json!(3)));
    let err = strict.save_entity("widgets", json!({"name": "w", "colour": "red"})).await.unwrap_err();
    assert!(matches!(err, DbError::UnknownColumn { ref column, .. } if column == "colour"), "{err}");
    assert_eq!(ApiError::from(err).status(), StatusCode::UNPROCESSABLE_ENTITY);
    strict.close().await;
    t
}

async fn values_must_fit_their_column(t: TestDb) -> TestDb {
    t.db.save_entity("counters", json!({"n": 1, "label": "x", "on": true})).await.unwrap();
    for bad in [json!({"n": "1"}), json!({"n": 1.5}), json!({"label": 5}), json!({"on": "yes"})] {
        let err = t.db.save_entity("counters", &bad).await.unwrap_err();
        assert!(matches!(err, DbError::TypeMismatch { .. }), "{bad}: {err}");
        assert_eq!(ApiError::from(err).status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let err = t.db.save_entity("counters", json!({"id": {"x": 1}})).await.unwrap_err();
    assert!(matches!(err, DbError::TypeMismatch { .. }), "{err}");
    t
}

async fn bad_identifiers_and_shapes_are_clear_errors(t: TestDb) -> TestDb {
    for table in ["a b", "x;drop table y", "a\"b", "a`b", "1abc", "", "t'--"] {
        let err = t.db.save_entity(table, json!({"a": 1})).await.unwrap_err();
        assert!(matches!(err, DbError::InvalidIdentifier { .. }), "{table}: {err}");
        let err = t.db.find_entities(table, Find::new()).await.unwrap_err();
        assert!(matches!(err, DbError::InvalidIdentifier { .. }), "{table}: {err}");
        assert_eq!(ApiError::from(err).status(), StatusCode::BAD_REQUEST);
    }
    for field in ["my field", "x\"y", "a;b", "n'--", "a)"] {
        let mut obj = serde_json::Map::new();
        obj.insert(field.to_owned(), json!(1));
        let err = t.db.save_entity("shapes", Value::Object(obj)).await.unwrap_err();
        assert!(matches!(err, DbError::InvalidIdentifier { .. }), "{field}: {err}");
    }
    for not_object in [json!([1, 2]), json!("text"), json!(3), json!(null)] {
        let err = t.db.save_entity("shapes", &not_object).await.unwrap_err();
        assert!(matches!(err, DbError::NotAnObject { .. }), "{not_object}: {err}");
        assert_eq!(ApiError::from(err).status(), StatusCode::BAD_REQUEST);
    }
    t.db.save_entity("shapes", json!({"a": 1})).await.unwrap();
    for order in ["a; DROP TABLE shapes", "(SELECT 1)", "a DESC NULLS FIRST", "[a b]"] {
        let err = t.db.find_entities("shapes", Find::new().order_by(order)).await.unwrap_err();
        assert!(matches!(err, DbError::InvalidOrderBy { .. }), "{order}: {err}");
    }
    let err = t.db.find_entities("shapes", Find::new().filter("[a] = 'open", Vec::<Value>::new())).await.unwrap_err();
    assert!(matches!(err, DbError::MalformedSql(_)), "{err}");
    let err = t.db.find_entities("shapes", Find::new().filter("[a] = ?", Vec::<Value>::new())).await;
    assert!(err.is_err());
    t
}

async fn sql_shaped_values_are_stored_as_data(t: TestDb) -> TestDb {
    let evil = ["'; DROP TABLE docs; --", "[id] = ? OR 1=1", "\" OR \"\"=\"", "\\'; --", "/* ? */", "$$ ? $$"];
    for text in evil {
        let saved = t.db.save_entity("docs", json!({"body": text})).await.unwrap();
        let id = saved["id"].as_str().unwrap();
        assert_eq!(t.db.get_entity("docs", id).await.unwrap().unwrap()["body"], json!(text));
        let found = t.db.find_entities("docs", Find::new().filter("[body] = ?", [text])).await.unwrap();
        assert_eq!(found.len(), 1, "{text}");
    }
    assert_eq!(t.db.count_entities("docs", Find::new()).await.unwrap(), evil.len() as u64);
    t
}

async fn portable_sql_is_translated(t: TestDb) -> TestDb {
    t.db.save_entity("msgs", json!({"note": "what?"})).await.unwrap();
    t.db.save_entity("msgs", json!({"note": "x"})).await.unwrap();
    t.db.save_entity("msgs", json!({"note": "y"})).await.unwrap();
    let q = Find::new().filter("[note] = 'what?' OR [note] = ?", ["x"]).order_by("[note]");
    let found = t.db.find_entities("msgs", q).await.unwrap();
    assert_eq!(found.iter().map(|r| r["note"].clone()).collect::<Vec<_>>(), [json!("what?"), json!("x")]);
    let q = Find::new().filter("[note] <> ? -- a comment? yes\n AND [note] <> '[x]?'", ["y"]);
    assert_eq!(t.db.count_entities("msgs", q).await.unwrap(), 2);

    t.db.execute("CREATE TABLE [kv] ([k] VARCHAR(64) PRIMARY KEY, [v] INTEGER, [note] TEXT)", &[]).await.unwrap();
    let n =
        t.db.execute("INSERT INTO [kv] ([k], [v], [note]) VALUES (?, ?, '?')", &[json!("a"), json!(1)]).await.unwrap();
    assert_eq!(n, 1);
    t.db.execute("INSERT INTO [kv] ([k], [v], [note]) VALUES (?, ?, ?)", &[json!("b"), json!(2), json!(null)])
        .await
        .unwrap();
    let rows =
        t.db.fetch_all("SELECT [k], [v], [note] FROM [kv] WHERE [v] >= ? ORDER BY [k]", &[json!(1)]).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0]["k"].clone(), rows[0]["v"].clone(), rows[0]["note"].clone()),
        (json!("a"), json!(1), json!("?"))
    );
    assert_eq!(rows[1]["note"], Value::Null);
    let none = t.db.fetch_optional("SELECT [k] FROM [kv] WHERE [k] = ?", &[json!("zz")]).await.unwrap();
    assert!(none.is_none());
    let err = t.db.fetch_all("SELECT [k] FROM [kv] WHERE [k] = ?", &[]).await.unwrap_err();
    assert!(matches!(err, DbError::ParamCount { expected: 1, got: 0 }), "{err}");
    let err = t.db.fetch_all("SELECT [k;] FROM [kv]", &[]).await.unwrap_err();
    assert!(matches!(err, DbError::InvalidIdentifier { .. }), "{err}");
    t
}

async fn transaction_commits(t: TestDb) -> TestDb {
    t.db.save_entity("accounts", json!({"id": "a", "balance": 10})).await.unwrap();
    let mut tx = t.db.transaction().await.unwrap();
    tx.save_entity("accounts", json!({"id": "b", "balance": 5})).await.unwrap();
    tx.execute("UPDATE [accounts] SET [balance] = [balance] - ? WHERE [id] = ?", &[json!(3), json!("a")])
        .await
        .unwrap();
    assert_eq!(tx.get_entity("accounts", "b").await.unwrap().unwrap()["balance"], json!(5), "sees its own writes");
    let in_tx = tx.fetch_optional("SELECT [balance] FROM [accounts] WHERE [id] = ?", &[json!("a")]).await.unwrap();
    assert_eq!(in_tx.unwrap()["balance"], json!(7));
    let created_in_tx = tx.save_entity("tx_created", json!({"x": 1})).await;
    if t.db.kind() == DatabaseKind::Mysql {
        let err = created_in_tx.unwrap_err();
        assert!(matches!(err, DbError::SchemaChangeInTransaction { .. }), "{err}");
        t.db.save_entity("tx_created", json!({"x": 1})).await.unwrap();
    } else {
        created_in_tx.unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(t.db.get_entity("accounts", "a").await.unwrap().unwrap()["balance"], json!(7));
    assert!(t.db.get_entity("accounts", "b").await.unwrap().is_some());
    assert_eq!(t.db.count_entities("tx_created", Find::new()).await.unwrap(), 1);
    t
}

async fn transfer(db: &Db, amount: i64) -> Result<(), DbError> {
    let mut tx = db.transaction().await?;
    tx.save_entity("ledger", json!({"id": "l1", "amount": amount})).await?;
    tx.save_entity("ledger", json!({"id": "l2", "amount": "not a number"})).await?;
    tx.commit().await
}

async fn transaction_rolls_back_on_error(t: TestDb) -> TestDb {
    t.db.save_entity("ledger", json!({"id": "l0", "amount": 0})).await.unwrap();
    let err = transfer(&t.db, 5).await.unwrap_err();
    assert!(matches!(err, DbError::TypeMismatch { .. }), "{err}");
    assert!(t.db.get_entity("ledger", "l1").await.unwrap().is_none());
    let mut tx = t.db.transaction().await.unwrap();
    tx.save_entity("ledger", json!({"id": "l3", "amount": 1})).await.unwrap();
    tx.rollback().await.unwrap();
    assert!(t.db.get_entity("ledger", "l3").await.unwrap().is_none());
    assert_eq!(t.db.count_entities("ledger", Find::new()).await.unwrap(), 1);
    t
}

async fn transaction_rolls_back_on_drop(t: TestDb) -> TestDb {
    t.db.save_entity("drafts", json!({"id": "keep", "v": 1})).await.unwrap();
    {
        let mut tx = t.db.transaction().await.unwrap();
        tx.save_entity("drafts", json!({"id": "lost", "v": 2})).await.unwrap();
        tx.save_entity("drafts", json!({"id": "keep", "v": 3})).await.unwrap();
        if t.db.kind() != DatabaseKind::Mysql {
            tx.save_entity("drafts_new_table", json!({"v": 1})).await.unwrap();
        }
    }
    // The next write waits for the rollback, then sees the old state.
    t.db.save_entity("drafts", json!({"id": "after", "v": 4})).await.unwrap();
    assert!(t.db.get_entity("drafts", "lost").await.unwrap().is_none());
    assert_eq!(t.db.get_entity("drafts", "keep").await.unwrap().unwrap()["v"], json!(1));
    // A table created in the rolled-back transaction is not wrongly cached as existing.
    t.db.save_entity("drafts_new_table", json!({"v": 5, "w": "new"})).await.unwrap();
    t
}

async fn save_many_is_all_or_nothing(t: TestDb) -> TestDb {
    // A new table, so the schema is prepared before the batch's transaction (MySQL needs that).
    let ok = t.db.save_many("batch", vec![json!({"n": 1}), json!({"n": 2}), json!({"n": 3})]).await.unwrap();
    assert_eq!(ok.len(), 3);
    let err = t.db.save_many("batch", vec![json!({"n": 4}), json!({"n": "five"})]).await.unwrap_err();
    assert!(matches!(err, DbError::TypeMismatch { .. }), "{err}");
    assert_eq!(t.db.count_entities("batch", Find::new()).await.unwrap(), 3);
    t
}

async fn concurrent_saves_and_reads_lose_nothing(t: TestDb) -> TestDb {
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let db = t.db.clone();
            tokio::spawn(async move {
                let saved = db.save_entity("hits", json!({"n": i, "who": format!("task {i}")})).await?;
                let id = saved["id"].as_str().unwrap_or_default().to_owned();
                let got = db.get_entity("hits", &id).await?;
                let listed = db.find_entities("hits", Find::new().limit(10)).await?;
                Ok::<_, DbError>((got.map(|r| r["n"].clone()), listed.len()))
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let (got, listed) = task.await.unwrap().unwrap_or_else(|e| panic!("task {i}: {e}"));
        assert_eq!(got, Some(json!(i)));
        assert!(listed >= 1);
    }
    assert_eq!(t.db.count_entities("hits", Find::new()).await.unwrap(), 200);
    t
}

async fn audit_log_pages_by_cursor(t: TestDb) -> TestDb {
    let audit = AuditLog::new(t.db.clone());
    for i in 0..5 {
        let actor = if i % 2 == 0 { "alice" } else { "bob" };
        audit.record(Some(actor), "thing.done", Some(&format!("things/{i}")), json!({"i": i})).await.unwrap();
    }
    audit.record(None, "system.boot", None, json!(null)).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    let filter = AuditFilter { action: Some("thing.done".into()), limit: Some(2), ..AuditFilter::default() };
    loop {
        let page = audit.query(&filter, cursor.as_deref()).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|e| e.details["i"].as_i64().unwrap()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, [4, 3, 2, 1, 0], "newest first, each once");
    let alice = AuditFilter { actor: Some("alice".into()), ..AuditFilter::default() };
    assert_eq!(audit.query(&alice, None).await.unwrap().items.len(), 3);
    let future = AuditFilter { since: Some("2999-01-01T00:00:00Z".into()), ..AuditFilter::default() };
    assert!(audit.query(&future, None).await.unwrap().items.is_empty());
    let all = audit.query(&AuditFilter::default(), None).await.unwrap();
    assert_eq!(all.items.len(), 6);
    assert_eq!(all.items[0].action, "system.boot");
    assert!(all.next_cursor.is_none());
    let err = audit.query(&AuditFilter::default(), Some("garbage!")).await.unwrap_err();
    assert_eq!(ApiError::from(err).status(), StatusCode::BAD_REQUEST);
    let bad_since = AuditFilter { since: Some("yesterday".into()), ..AuditFilter::default() };
    assert!(matches!(audit.query(&bad_since, None).await, Err(DbError::InvalidInput { field: "since", .. })));
    t
}
