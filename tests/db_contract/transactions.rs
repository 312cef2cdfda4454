//! Transactions, `save_many` and concurrent use: all or nothing, nothing lost.

use super::*;

pub(crate) async fn transaction_commits(t: TestDb) -> TestDb {
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

pub(crate) async fn transfer(db: &Db, amount: i64) -> Result<(), DbError> {
    let mut tx = db.transaction().await?;
    tx.save_entity("ledger", json!({"id": "l1", "amount": amount})).await?;
    tx.save_entity("ledger", json!({"id": "l2", "amount": "not a number"})).await?;
    tx.commit().await
}

pub(crate) async fn transaction_rolls_back_on_error(t: TestDb) -> TestDb {
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

pub(crate) async fn transaction_rolls_back_on_drop(t: TestDb) -> TestDb {
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

pub(crate) async fn save_many_is_all_or_nothing(t: TestDb) -> TestDb {
    // A new table, so the schema is prepared before the batch's transaction (MySQL needs that).
    let ok = t.db.save_many("batch", vec![json!({"n": 1}), json!({"n": 2}), json!({"n": 3})]).await.unwrap();
    assert_eq!(ok.len(), 3);
    let err = t.db.save_many("batch", vec![json!({"n": 4}), json!({"n": "five"})]).await.unwrap_err();
    assert!(matches!(err, DbError::TypeMismatch { .. }), "{err}");
    assert_eq!(t.db.count_entities("batch", Find::new()).await.unwrap(), 3);
    t
}

pub(crate) async fn concurrent_saves_and_reads_lose_nothing(t: TestDb) -> TestDb {
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

/// Two handles on one database are two processes (a service and its worker): their
/// saves into a table neither has seen, each with a field of its own, race on creating
/// the table and its columns; nothing is lost and no caller sees an error. Then
/// columns one adds later (a field, `deleted_at`) are read right by the other, whose
/// cache did not know them.
pub(crate) async fn two_processes_share_a_new_table(t: TestDb) -> TestDb {
    let other = t.connect(SchemaPolicy::additive()).await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (db, field) = if i % 2 == 0 { (t.db.clone(), "from_one") } else { (other.clone(), "from_two") };
            tokio::spawn(async move {
                let saved = db.save_entity("shared", json!({"n": i, field: true})).await?;
                db.get_entity("shared", saved["id"].as_str().unwrap_or_default()).await
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let got = task.await.unwrap().unwrap_or_else(|e| panic!("task {i}: {e}"));
        assert_eq!(got.map(|r| r["n"].clone()), Some(json!(i)));
    }
    for db in [&t.db, &other] {
        assert_eq!(db.count_entities("shared", Find::new()).await.unwrap(), 200);
        let odd = db.find_entities("shared", Find::new().filter("[from_two] = ?", [json!(true)])).await.unwrap();
        assert_eq!(odd.len(), 100);
        // Each handle reads the other's column with its type (a boolean, not MySQL's 1).
        for row in db.find_entities("shared", Find::new()).await.unwrap() {
            let field = if row["n"].as_i64().unwrap() % 2 == 0 { "from_one" } else { "from_two" };
            assert_eq!(row[field], json!(true), "{row:?}");
        }
    }
    // A column the other handle adds later, after this one cached the table.
    let saved = other.save_entity("shared", json!({"n": 200, "later": true})).await.unwrap();
    let got = t.db.get_entity("shared", saved["id"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(got["later"], json!(true), "{got:?}");
    // A soft delete by the other handle adds `deleted_at`: this one hides the row too.
    assert!(other.soft_delete_entity("shared", saved["id"].as_str().unwrap()).await.unwrap());
    // A count returns no row to notice the new column by: past a second, it looks.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(t.db.count_entities("shared", Find::new()).await.unwrap(), 200, "the soft-deleted row is not counted");
    let listed = t.db.find_entities("shared", Find::new()).await.unwrap();
    assert_eq!(listed.len(), 200, "the soft-deleted row is hidden");
    assert_eq!(t.db.get_entity("shared", saved["id"].as_str().unwrap()).await.unwrap(), None);
    other.close().await;
    t
}

/// A service and its workers start together on an empty database: each creates the
/// kernel's own tables (jobs, accounts, audit) at the same moment, and each starts.
pub(crate) async fn processes_starting_together_create_the_kernel_tables(t: TestDb) -> TestDb {
    use app_kernel::auth::UserStore;
    use app_kernel::jobs::{JobClient, JobRegistry, JobSettings};
    let mut handles = vec![t.db.clone()];
    for _ in 0..3 {
        handles.push(t.connect(SchemaPolicy::additive()).await);
    }
    let starts: Vec<_> = handles
        .iter()
        .cloned()
        .map(|db| {
            tokio::spawn(async move {
                let (users, audit) = (UserStore::new(db.clone()), AuditLog::new(db.clone()));
                let (jobs, tables, audit) = tokio::join!(
                    JobClient::sql(db, JobRegistry::new(), JobSettings::default()),
                    users.create_tables(),
                    audit.record(None, "started", None, json!({})),
                );
                jobs.map(drop).map_err(|e| e.to_string())?;
                tables.map_err(|e| e.to_string())?;
                audit.map(drop).map_err(|e| e.to_string())
            })
        })
        .collect();
    for (i, start) in starts.into_iter().enumerate() {
        start.await.unwrap().unwrap_or_else(|e| panic!("process {i} did not start: {e}"));
    }
    let events = AuditLog::new(t.db.clone()).query(&AuditFilter::default(), None).await.unwrap();
    assert_eq!(events.items.len(), 4);
    for db in handles.into_iter().skip(1) {
        db.close().await;
    }
    t
}

/// A connection cached a statement before another process added a column to its
/// table: PostgreSQL refuses it, which aborts a transaction, so a transaction there
/// fails once, with a message that says to run it again; the next one on that
/// connection works, and so does anything outside a transaction.
pub(crate) async fn transactions_recover_from_columns_added_elsewhere(t: TestDb) -> TestDb {
    let one = t.connect_single().await;
    let saved = one.save_entity("items", json!({"n": 1})).await.unwrap();
    let id = saved["id"].as_str().unwrap().to_owned();
    let mut tx = one.transaction().await.unwrap();
    assert!(tx.get_entity("items", &id).await.unwrap().is_some());
    tx.commit().await.unwrap();
    t.db.save_entity("items", json!({"id": id, "extra": "x"})).await.unwrap();
    let mut tx = one.transaction().await.unwrap();
    let first = tx.get_entity("items", &id).await;
    // (PostgreSQL is the engine that refuses: the recovery below is what runs there.)
    assert_eq!(first.is_err(), t.db.kind() == DatabaseKind::Postgres, "{first:?}");
    if let Err(e) = first {
        assert!(e.to_string().contains("run the transaction again"), "{e}");
        drop(tx);
        tx = one.transaction().await.unwrap();
        let got = tx.get_entity("items", &id).await.unwrap().unwrap();
        assert_eq!(got["extra"], json!("x"));
    }
    tx.commit().await.unwrap();
    one.close().await;
    t
}
