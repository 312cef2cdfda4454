//! Trace context in the stored job: a job enqueued inside a trace stores its
//! `traceparent`, and the worker runs it in the same trace; an old jobs table (made
//! before the column existed) is upgraded in place.

use app_kernel::observability::trace_context::{self, TraceContext, TraceParent};

use super::*;

const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Returns the trace id of the span it runs in.
async fn traced(_: Value, ctx: JobContext) -> Result<Value, TaskError> {
    let trace = trace_context::current().ok_or_else(|| TaskError::new("no trace in the task"))?;
    Ok(json!({"trace_id": trace.trace_id_hex(), "job": ctx.job_id}))
}

fn traced_registry() -> JobRegistry {
    registry().task("traced", traced)
}

pub(crate) async fn trace_context_is_stored_and_continued(e: &Engine) {
    let (client, worker) = e.worker(traced_registry(), quick()).await;
    let request = TraceContext::child_of(TraceParent::parse(CALLER.as_bytes()).as_ref());
    let (inside, batch) = trace_context::scope(request, async {
        let one = client.enqueue("traced", json!({}), EnqueueOptions::new()).await.unwrap();
        let many = client.enqueue_many(vec![("traced".to_owned(), json!({}), EnqueueOptions::new()); 2]).await.unwrap();
        (one, many)
    })
    .await;
    let outside = client.enqueue("traced", json!({}), EnqueueOptions::new()).await.unwrap();

    let stored = client.status(&inside.job_id).await.unwrap().unwrap();
    assert_eq!(stored.trace_parent.as_deref(), Some(request.traceparent().as_str()), "{}", e.name);
    for job in &batch {
        let stored = client.status(&job.job_id).await.unwrap().unwrap();
        assert_eq!(stored.trace_parent.as_deref(), Some(request.traceparent().as_str()), "{}", e.name);
    }
    assert_eq!(client.status(&outside.job_id).await.unwrap().unwrap().trace_parent, None, "{}", e.name);

    let report = worker.run_once().await.unwrap();
    assert_eq!(report.completed.len(), 4, "{}: {report:?}", e.name);
    for job in std::iter::once(&inside).chain(&batch) {
        let done = client.status(&job.job_id).await.unwrap().unwrap();
        assert_eq!(done.result.unwrap()["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736", "{}", e.name);
    }
    // Outside any trace, the job's own trace: its id is the job id's.
    let done = client.status(&outside.job_id).await.unwrap().unwrap();
    assert_eq!(done.result.unwrap()["trace_id"], outside.job_id.replace('-', ""), "{}", e.name);
}

/// `kernel_jobs` as the kernel created it before `trace_parent`.
const OLD_SCHEMA: &str = "CREATE TABLE [kernel_jobs] (
    [id] VARCHAR(64) NOT NULL PRIMARY KEY,
    [task] VARCHAR(255) NOT NULL,
    [payload] TEXT NOT NULL,
    [status] VARCHAR(16) NOT NULL,
    [priority] BIGINT NOT NULL,
    [run_at] BIGINT NOT NULL,
    [attempts] BIGINT NOT NULL,
    [max_attempts] BIGINT NOT NULL,
    [timeout_ms] BIGINT NOT NULL,
    [user_id] VARCHAR(255),
    [unique_key] VARCHAR(255) UNIQUE,
    [lease_token] VARCHAR(64),
    [lease_until] BIGINT,
    [worker_id] VARCHAR(255),
    [result] TEXT,
    [error] TEXT,
    [created_at] BIGINT NOT NULL,
    [updated_at] BIGINT NOT NULL
)";

pub(crate) async fn an_old_jobs_table_is_upgraded_in_place(e: &Engine) {
    if e.redis.is_some() {
        // A Redis job is a hash: a job stored without the field reads as `None`.
        return;
    }
    let db = &e.db.db;
    db.execute_schema(OLD_SCHEMA).await.unwrap();
    let now = now_ms();
    db.execute(
        "INSERT INTO [kernel_jobs] ([id], [task], [payload], [status], [priority], [run_at], [attempts], \
         [max_attempts], [timeout_ms], [created_at], [updated_at]) VALUES (?, ?, ?, ?, ?, ?, 0, 3, 1000, ?, ?)",
        &[
            json!("0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"),
            json!("traced"),
            json!("{}"),
            json!("pending"),
            json!(1),
            json!(now),
            json!(now),
            json!(now),
        ],
    )
    .await
    .unwrap();
    // Two clients open it: the second finds the column there.
    let (client, worker) = e.worker(traced_registry(), quick()).await;
    let _again = e.client(traced_registry(), quick()).await;
    let old = client.status("0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b").await.unwrap().expect("the old job survives");
    assert_eq!(old.trace_parent, None, "{}", e.name);
    let request = TraceContext::child_of(None);
    let new = trace_context::scope(request, client.enqueue("traced", json!({}), EnqueueOptions::new())).await.unwrap();
    assert_eq!(
        client.status(&new.job_id).await.unwrap().unwrap().trace_parent.as_deref(),
        Some(request.traceparent().as_str()),
        "{}",
        e.name
    );
    assert_eq!(worker.run_once().await.unwrap().completed.len(), 2, "{}", e.name);
    let old = client.status("0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b").await.unwrap().unwrap();
    assert_eq!(old.result.unwrap()["trace_id"], "0190a5b27c3d7e4f8a9b0c1d2e3f4a5b", "{}", e.name);
}
