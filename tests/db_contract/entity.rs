//! The entity API: value types, saves, finds, deletes, schema and bad input.

use super::*;

pub(crate) async fn values_round_trip_with_their_types(t: TestDb) -> TestDb {
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
pub(crate) async fn save_answers_what_a_read_returns(t: TestDb) -> TestDb {
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

pub(crate) async fn save_upserts_and_keeps_created_at(t: TestDb) -> TestDb {
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

pub(crate) async fn find_filters_orders_and_pages(t: TestDb) -> TestDb {
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

pub(crate) async fn soft_delete_hides_and_delete_removes(t: TestDb) -> TestDb {
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

pub(crate) async fn missing_tables_read_as_empty(t: TestDb) -> TestDb {
    assert!(t.db.find_entities("ghosts", Find::new().limit(5)).await.unwrap().is_empty());
    assert!(t.db.get_entity("ghosts", "x").await.unwrap().is_none());
    assert_eq!(t.db.count_entities("ghosts", Find::new()).await.unwrap(), 0);
    assert!(!t.db.delete_entity("ghosts", "x").await.unwrap());
    assert!(!t.db.soft_delete_entity("ghosts", "x").await.unwrap());
    t
}

pub(crate) async fn values_must_fit_their_column(t: TestDb) -> TestDb {
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

pub(crate) async fn bad_identifiers_and_shapes_are_clear_errors(t: TestDb) -> TestDb {
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
        assert!(matches!(err, DbError::InvalidFieldNames { .. }), "{field}: {err}");
        assert_eq!(ApiError::from(err).status(), StatusCode::UNPROCESSABLE_ENTITY);
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
    assert!(matches!(err, DbError::UnsafeFilter(_)), "{err}");
    let err = t.db.find_entities("shapes", Find::new().filter("[a] = ?", Vec::<Value>::new())).await;
    assert!(err.is_err());
    t
}

pub(crate) async fn sql_shaped_values_are_stored_as_data(t: TestDb) -> TestDb {
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

pub(crate) async fn portable_sql_is_translated(t: TestDb) -> TestDb {
    t.db.save_entity("msgs", json!({"note": "what?"})).await.unwrap();
    t.db.save_entity("msgs", json!({"note": "x"})).await.unwrap();
    t.db.save_entity("msgs", json!({"note": "y"})).await.unwrap();
    let q = Find::new().filter("[note] = 'what?' OR [note] = ?", ["x"]).order_by("[note]");
    let found = t.db.find_entities("msgs", q).await.unwrap();
    assert_eq!(found.iter().map(|r| r["note"].clone()).collect::<Vec<_>>(), [json!("what?"), json!("x")]);
    let q = "SELECT COUNT(*) AS n FROM [msgs] WHERE [note] <> ? -- a comment? yes\n AND [note] <> '[x]?'";
    assert_eq!(t.db.fetch_all(q, &[json!("y")]).await.unwrap()[0]["n"], json!(2));

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
