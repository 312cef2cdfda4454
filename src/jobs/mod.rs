//! Background jobs: named tasks, a durable queue, separate worker processes.
//!
//! - [`JobRegistry`] maps task names to async handlers `(payload, JobContext) -> Result`;
//!   register them with `ServiceBuilder::task`.
//! - [`JobClient`] (an extractor, and `kernel.jobs()`) enqueues: an unknown task name is
//!   refused at once (422 `unknown_task`). On the SQL queue, [`JobClient::enqueue_in`]
//!   enqueues inside the app's own transaction.
//! - [`Worker`] runs them, in the same binary started with the `worker` command.
//!
//! One lifecycle on every engine ([`QueueBackend`]): `pending` -> `running` under a
//! lease -> `done` | `retry` (after exponential backoff) | `dead` (after `max_attempts`).
//! A job is never lost: a worker that dies stops renewing its lease and the job is
//! claimed again when it expires; the dead worker's late acks are refused.
//! Admins list jobs, retry a `retry` or `dead` one and cancel a `pending` or `retry` one
//! (status `cancelled`: it never runs) from the jobs view (`admin_routes`, `admin_page`).
//! Engines: the service's database (`kernel_jobs`, [`SqlQueue`]) by default, Redis
//! (`RedisQueue`, feature `redis`) when `REDIS_URL` is set.
//!
//! ```no_run
//! # async fn demo(jobs: app_kernel::jobs::JobClient) -> Result<(), app_kernel::jobs::JobError> {
//! use app_kernel::jobs::{EnqueueOptions, Priority};
//! use serde_json::json;
//! let job = jobs
//!     .enqueue("process_order", json!({"order_id": "o1"}), EnqueueOptions::new().priority(Priority::High))
//!     .await?;
//! println!("{}", job.job_id);
//! # Ok(()) }
//! ```

mod acks;
mod admin;
pub(crate) mod admin_page;
pub(crate) mod admin_routes;
mod ahead;
mod backend;
mod client;
mod context;
mod error;
mod metrics;
#[cfg(feature = "redis")]
mod redis;
mod registry;
pub(crate) mod routes;
mod settings;
mod sql;
mod wakeups;
mod worker;

pub use admin::{JobChange, JobFilter, JobPage, DEFAULT_PAGE, MAX_PAGE};
pub use backend::{now_ms, ClaimedJob, FailOutcome, JobRecord, JobStatus, NewJob, Priority, QueueBackend, QueueDepth};
pub use client::{EnqueueOptions, Enqueued, JobClient};
pub use context::JobContext;
pub use error::{JobError, TaskError, INTERNAL_ERROR};
#[cfg(feature = "redis")]
pub use redis::RedisQueue;
pub use registry::{JobRegistry, TaskOptions};
pub use settings::{JobSettings, QueueEngine};
pub use sql::{SqlQueue, JOBS_TABLE};
pub use worker::{RunReport, Worker};
