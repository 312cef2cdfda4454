//! `enqueue_in`: a job enqueued inside the app's transaction exists only if it commits.

use super::*;

async fn orders(e: &Engine) -> usize {
    e.db.db.fetch_all("SELECT [id] FROM [tx_orders]", &[]).await.unwrap().len()
}

pub(crate) async fn enqueue_in_follows_its_transaction(e: &Engine) {
    let (client, worker) = e.worker(registry(), quick()).await;
    let db = &e.db.db;
    if e.redis.is_some() {
        let mut tx = db.transaction().await.unwrap();
        let err = client.enqueue_in(&mut tx, "echo", json!({}), EnqueueOptions::new()).await.unwrap_err();
        assert!(matches!(err, JobError::Config(_)), "{}: {err:?}", e.name);
        assert_eq!(worker.run_once().await.unwrap().ran(), 0, "{}: nothing enqueued", e.name);
        return;
    }
    db.execute("CREATE TABLE [tx_orders] ([id] INTEGER NOT NULL)", &[]).await.unwrap();

    let mut tx = db.transaction().await.unwrap();
    tx.execute("INSERT INTO [tx_orders] ([id]) VALUES (?)", &[json!(1)]).await.unwrap();
    let rolled_back = client.enqueue_in(&mut tx, "echo", json!({"order": 1}), EnqueueOptions::new()).await.unwrap();
    tx.rollback().await.unwrap();
    assert!(client.status(&rolled_back.job_id).await.unwrap().is_none(), "{}: rolled back, no job", e.name);

    let mut tx = db.transaction().await.unwrap();
    tx.execute("INSERT INTO [tx_orders] ([id]) VALUES (?)", &[json!(2)]).await.unwrap();
    let dropped = client.enqueue_in(&mut tx, "echo", json!({"order": 2}), EnqueueOptions::new()).await.unwrap();
    drop(tx); // an early return or a `?` between the enqueue and the commit
    assert!(client.status(&dropped.job_id).await.unwrap().is_none(), "{}: dropped, no job", e.name);
    assert_eq!(orders(e).await, 0, "{}: neither order was kept", e.name);
    assert_eq!(worker.run_once().await.unwrap().ran(), 0, "{}: no job runs", e.name);

    let mut tx = db.transaction().await.unwrap();
    tx.execute("INSERT INTO [tx_orders] ([id]) VALUES (?)", &[json!(3)]).await.unwrap();
    let kept = client.enqueue_in(&mut tx, "echo", json!({"order": 3}), EnqueueOptions::new()).await.unwrap();
    assert!(client.status(&kept.job_id).await.unwrap().is_none(), "{}: not visible before the commit", e.name);
    tx.commit().await.unwrap();
    assert_eq!(orders(e).await, 1);
    assert_eq!(worker.run_once().await.unwrap().completed, vec![kept.job_id], "{}: the committed job runs", e.name);
}
