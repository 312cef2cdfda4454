//! [`JobRegistry`]: task names and their handlers.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::{JobContext, TaskError};

/// A task's defaults, used when the enqueuer does not say otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskOptions {
    /// Time limit of one attempt (default: `JobSettings::default_timeout_secs`).
    pub timeout: Option<Duration>,
    /// Attempts before the job is dead (default: `JobSettings::max_attempts`).
    pub max_attempts: Option<u32>,
}

impl TaskOptions {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the time limit of one attempt.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the attempts before the job is dead.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }
}

pub(crate) type Handler = Arc<dyn Fn(Value, JobContext) -> BoxFuture<'static, Result<Value, TaskError>> + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Task {
    pub(crate) handler: Handler,
    pub(crate) options: TaskOptions,
}

/// The tasks a service can run, by name.
///
/// A handler is an async function `(payload, ctx) -> Result<R, E>`; the payload is any
/// `DeserializeOwned` type (`serde_json::Value` for untyped), `R` any `Serialize`, `E`
/// anything that converts into [`TaskError`] (every `std::error::Error` does).
///
/// ```
/// use app_kernel::jobs::{JobContext, JobRegistry, TaskError};
/// use serde_json::{json, Value};
///
/// async fn process_order(payload: Value, _ctx: JobContext) -> Result<Value, TaskError> {
///     Ok(json!({"order_id": payload["order_id"], "status": "done"}))
/// }
/// let registry = JobRegistry::new().task("process_order", process_order);
/// assert!(registry.contains("process_order"));
/// ```
#[derive(Clone, Default)]
pub struct JobRegistry {
    tasks: HashMap<String, Task>,
}

impl std::fmt::Debug for JobRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.tasks.keys().collect();
        names.sort();
        f.debug_struct("JobRegistry").field("tasks", &names).finish()
    }
}

impl JobRegistry {
    /// No tasks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` under `name` with default options (replacing any previous one).
    pub fn register<P, R, E, F, Fut>(&mut self, name: impl Into<String>, handler: F)
    where
        P: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        E: Into<TaskError> + Send + 'static,
        F: Fn(P, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        self.register_with(name, TaskOptions::default(), handler);
    }

    /// Registers `handler` under `name` with `options`.
    pub fn register_with<P, R, E, F, Fut>(&mut self, name: impl Into<String>, options: TaskOptions, handler: F)
    where
        P: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        E: Into<TaskError> + Send + 'static,
        F: Fn(P, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let erased: Handler = Arc::new(move |payload: Value, ctx: JobContext| {
            let handler = Arc::clone(&handler);
            Box::pin(async move {
                let payload: P = serde_json::from_value(payload)
                    .map_err(|e| TaskError::new(format!("payload does not fit the task: {e}")))?;
                let out = handler(payload, ctx).await.map_err(Into::into)?;
                serde_json::to_value(out).map_err(|e| TaskError::internal(format!("result is not JSON: {e}")))
            })
        });
        self.tasks.insert(name.into(), Task { handler: erased, options });
    }

    /// Builder form of [`register`](Self::register).
    #[must_use]
    pub fn task<P, R, E, F, Fut>(mut self, name: impl Into<String>, handler: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        E: Into<TaskError> + Send + 'static,
        F: Fn(P, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        self.register(name, handler);
        self
    }

    /// Builder form of [`register_with`](Self::register_with).
    #[must_use]
    pub fn task_with<P, R, E, F, Fut>(mut self, name: impl Into<String>, options: TaskOptions, handler: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        E: Into<TaskError> + Send + 'static,
        F: Fn(P, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        self.register_with(name, options, handler);
        self
    }

    /// Adds every task of `other` (its tasks win on a name clash).
    pub fn merge(&mut self, other: JobRegistry) {
        self.tasks.extend(other.tasks);
    }

    /// Whether `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.tasks.contains_key(name)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.tasks.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Task> {
        self.tasks.get(name)
    }
}
