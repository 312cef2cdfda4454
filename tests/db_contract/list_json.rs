//! The list path: `find_entities_json` answers the bytes that `find_entities`' rows
//! serialize to, on every engine, whatever the values.

use super::*;
use app_kernel::db::Transaction;

/// The JSON path's bytes (asked first, so it is the one that meets a stale cache),
/// checked against the maps' bytes.
async fn same_bytes(db: &Db, table: &str, find: Find) -> String {
    let list = db.find_entities_json(table, find.clone()).await.unwrap();
    let maps = serde_json::to_vec(&db.find_entities(table, find).await.unwrap()).unwrap();
    let (list, maps) = (String::from_utf8(list.into_bytes()).unwrap(), String::from_utf8(maps).unwrap());
    assert_eq!(list, maps, "{table}");
    list
}

async fn same_bytes_in(tx: &mut Transaction, table: &str, find: Find) {
    let list = tx.find_entities_json(table, find.clone()).await.unwrap();
    let maps = serde_json::to_vec(&tx.find_entities(table, find).await.unwrap()).unwrap();
    assert_eq!(String::from_utf8_lossy(list.as_bytes()), String::from_utf8_lossy(&maps), "{table} in a transaction");
}

pub(crate) async fn the_list_path_writes_the_bytes_the_rows_serialize_to(t: TestDb) -> TestDb {
    let odd = "héllo 🌍 \"q\" \\ / \n\t\r \u{1}\u{1f}\u{7f} </script> \u{2028}";
    let first = json!({
        "count": 42, "big": i64::MAX, "small": i64::MIN, "ratio": 1.5, "tiny": 1e-7, "huge": 1.5e300,
        "done": true, "off": false, "nothing": null, "name": odd, "looks_like_json": "{\"a\": 1}",
        "numeric_text": "123", "tags": [1, "x", null, {"k": [true], "b": 2, "a": 1}],
        "meta": {"z": 1, "a": {"deep": 1.25, "odd": odd}}, "empty": "",
    });
    t.db.save_entity("things", &first).await.unwrap();
    // A float column given an integer, a JSON column given a string and a scalar,
    // and fields left out (NULLs).
    t.db.save_entity("things", json!({"ratio": 3, "tags": "just \"text\"", "meta": 7, "done": false})).await.unwrap();
    t.db.save_entity("things", json!({"name": "", "tags": "[not json", "meta": "{\"b\":1,\"a\":2}"})).await.unwrap();
    let all = same_bytes(&t.db, "things", Find::new().sort("created_at", false)).await;
    assert!(all.starts_with("[{\"big\":9223372036854775807,\"count\":42,"), "{all}");
    assert!(all.contains("\"ratio\":3.0"), "an integer in a float column reads as a float: {all}");
    assert!(all.contains("\"done\":true") && all.contains("\"done\":false"), "{all}");

    for find in [
        Find::new(),
        Find::new().eq("done", true),
        Find::new().sort("name", true).limit(2),
        Find::new().sort("created_at", false).offset(1),
        Find::new().eq("name", "nobody"),
    ] {
        same_bytes(&t.db, "things", find).await;
    }
    assert_eq!(same_bytes(&t.db, "ghosts", Find::new()).await, "[]", "a missing table has no entities");

    let mut tx = t.db.transaction().await.unwrap();
    same_bytes_in(&mut tx, "things", Find::new().sort("name", false)).await;
    tx.commit().await.unwrap();

    // Soft-deleted rows: a `deleted_at` column appears.
    let gone = t.db.save_entity("things", json!({"name": "gone"})).await.unwrap();
    t.db.soft_delete_entity("things", gone["id"].as_str().unwrap()).await.unwrap();
    same_bytes(&t.db, "things", Find::new()).await;
    same_bytes(&t.db, "things", Find::new().include_deleted()).await;
    t
}

/// A column another process added after this one cached the table is restored to
/// its kind (a boolean reads as `true`, not `1`) on the list path too.
pub(crate) async fn the_list_path_sees_columns_added_elsewhere(t: TestDb) -> TestDb {
    t.db.save_entity("gadgets", json!({"name": "a"})).await.unwrap();
    same_bytes(&t.db, "gadgets", Find::new()).await;
    let other = t.connect(SchemaPolicy::additive()).await;
    other.save_entity("gadgets", json!({"name": "b", "shiny": true, "specs": {"w": 2}})).await.unwrap();
    let list = same_bytes(&t.db, "gadgets", Find::new().sort("name", false)).await;
    assert!(list.contains("\"shiny\":true") && list.contains("\"specs\":{\"w\":2}"), "{list}");
    other.close().await;
    t
}

/// A table the app made itself, with types the entity API never creates: binary
/// data (base64 on every engine), and a boolean column.
pub(crate) async fn the_list_path_reads_the_apps_own_tables(t: TestDb) -> TestDb {
    let (ddl, insert) = match t.db.kind() {
        DatabaseKind::Sqlite => (
            "CREATE TABLE blobs (id TEXT PRIMARY KEY, data BLOB, flag BOOLEAN, price NUMERIC)",
            "INSERT INTO blobs VALUES ('a', X'00ff10', 1, 2), ('b', NULL, 0, 0.5)",
        ),
        DatabaseKind::Postgres => (
            "CREATE TABLE blobs (id TEXT PRIMARY KEY, data BYTEA, flag BOOLEAN, price DOUBLE PRECISION)",
            "INSERT INTO blobs VALUES ('a', '\\x00ff10', TRUE, 2), ('b', NULL, FALSE, 0.5)",
        ),
        DatabaseKind::Mysql => (
            "CREATE TABLE blobs (id VARCHAR(36) PRIMARY KEY, data BLOB, flag BOOLEAN, price DOUBLE)",
            "INSERT INTO blobs VALUES ('a', X'00ff10', 1, 2), ('b', NULL, 0, 0.5)",
        ),
    };
    t.db.execute_schema(ddl).await.unwrap();
    t.db.execute(insert, &[]).await.unwrap();
    let list = same_bytes(&t.db, "blobs", Find::new().order_by("[id]")).await;
    assert_eq!(
        list,
        r#"[{"data":"AP8Q","flag":true,"id":"a","price":2.0},{"data":null,"flag":false,"id":"b","price":0.5}]"#
    );
    t
}
