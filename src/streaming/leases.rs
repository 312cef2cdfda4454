//! Stream leases: at most `max_concurrent_per_user` open streams per user.
//!
//! [`StreamLeases::acquire`] takes a lease or refuses with
//! [`StreamError::LimitExceeded`] (429); the [`StreamLease`] it gives back frees the
//! lease when it is released or dropped. A lease lives `lease_ttl_seconds` unless
//! refreshed ([`StreamLease::refresh`] by hand, or [`StreamLease::keep_alive`], which
//! refreshes it on a timer for as long as the lease is held), so the leases of an
//! instance that dies free themselves. The leases live behind [`LeaseStore`]:
//! [`MemoryLeaseStore`] in process, a Redis store when every instance must count
//! together.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::StreamError;

/// Where leases live. Implementations must be safe to share across tasks.
#[async_trait]
pub trait LeaseStore: Send + Sync + std::fmt::Debug {
    /// Takes lease `lease` for `user`, living `ttl`, if the user holds fewer than
    /// `max` live leases; whether it was taken.
    async fn acquire(&self, user: &str, lease: &str, max: u32, ttl: Duration) -> Result<bool, StreamError>;
    /// Makes a live lease live `ttl` from now; `false` if it had already expired
    /// or been released.
    async fn refresh(&self, user: &str, lease: &str, ttl: Duration) -> Result<bool, StreamError>;
    /// Frees a lease (nothing if it is gone already).
    async fn release(&self, user: &str, lease: &str) -> Result<(), StreamError>;
}

/// The lease limiter. Cheap to clone; also an extractor in a kernel's routes.
#[derive(Debug, Clone)]
pub struct StreamLeases {
    max: u32,
    ttl: Duration,
    store: Arc<dyn LeaseStore>,
}

impl StreamLeases {
    /// At most `max` leases per user, each living `ttl` unless refreshed.
    pub fn new(max: u32, ttl: Duration, store: Arc<dyn LeaseStore>) -> Self {
        Self { max, ttl, store }
    }

    /// Takes a lease for `user` (the spec's `stream_lease(user.id)`).
    ///
    /// # Errors
    /// [`StreamError::LimitExceeded`] when the user holds `max` live leases;
    /// [`StreamError::Store`] when the store cannot be asked.
    pub async fn acquire(&self, user: &str) -> Result<StreamLease, StreamError> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        if !self.store.acquire(user, &id, self.max, self.ttl).await? {
            return Err(StreamError::LimitExceeded { max: self.max });
        }
        Ok(StreamLease { leases: self.clone(), user: user.to_owned(), id, held: true, keep_alive: None })
    }
}

// The lease limiter of the router's state (the spec's `stream_lease`).
state_extractor!(StreamLeases);

/// A held lease. Freed by [`StreamLease::release`], or when dropped (in the
/// background, on the current tokio runtime), or by its expiry.
#[derive(Debug)]
#[must_use = "the lease is freed when dropped"]
pub struct StreamLease {
    leases: StreamLeases,
    user: String,
    id: String,
    held: bool,
    keep_alive: Option<tokio::task::JoinHandle<()>>,
}

impl StreamLease {
    /// The lease's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Makes the lease live another `lease_ttl_seconds` from now.
    ///
    /// # Errors
    /// [`StreamError::Expired`] when it expired before (its place may be taken);
    /// [`StreamError::Store`] when the store cannot be asked.
    pub async fn refresh(&self) -> Result<(), StreamError> {
        if self.leases.store.refresh(&self.user, &self.id, self.leases.ttl).await? {
            Ok(())
        } else {
            Err(StreamError::Expired)
        }
    }

    /// Refreshes the lease every third of its lifetime until it is released or
    /// dropped: for a stream of unknown length. (Its instance dying stops the
    /// refreshing, and the lease expires.)
    pub fn keep_alive(mut self) -> Self {
        let (leases, user, id) = (self.leases.clone(), self.user.clone(), self.id.clone());
        self.keep_alive = Some(tokio::spawn(async move {
            let mut every = tokio::time::interval((leases.ttl / 3).max(Duration::from_millis(1)));
            every.tick().await;
            loop {
                every.tick().await;
                match leases.store.refresh(&user, &id, leases.ttl).await {
                    Ok(true) => {}
                    Ok(false) => return tracing::warn!(lease = %id, "stream lease expired while held"),
                    Err(e) => tracing::warn!(lease = %id, error = %e, "stream lease refresh failed"),
                }
            }
        }));
        self
    }

    /// Frees the lease now.
    ///
    /// # Errors
    /// [`StreamError::Store`] when the store cannot be asked (the lease then
    /// expires on its own).
    pub async fn release(mut self) -> Result<(), StreamError> {
        self.stop_keep_alive();
        self.held = false;
        self.leases.store.release(&self.user, &self.id).await
    }

    fn stop_keep_alive(&mut self) {
        if let Some(task) = self.keep_alive.take() {
            task.abort();
        }
    }
}

impl Drop for StreamLease {
    fn drop(&mut self) {
        self.stop_keep_alive();
        if !self.held {
            return;
        }
        let (store, user, id) =
            (self.leases.store.clone(), std::mem::take(&mut self.user), std::mem::take(&mut self.id));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = store.release(&user, &id).await {
                    tracing::warn!(lease = %id, error = %e, "stream lease release failed; it expires on its own");
                }
            });
        }
    }
}

/// The in-process store: each user's leases with their expiry.
#[derive(Debug, Default)]
pub struct MemoryLeaseStore {
    users: Mutex<HashMap<String, Vec<(String, Instant)>>>,
}

impl MemoryLeaseStore {
    fn with_live<T>(&self, user: &str, f: impl FnOnce(&mut Vec<(String, Instant)>, Instant) -> T) -> T {
        let now = Instant::now();
        let mut users = self.users.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let leases = users.entry(user.to_owned()).or_default();
        leases.retain(|(_, expires)| *expires > now);
        let out = f(leases, now);
        if leases.is_empty() {
            users.remove(user);
        }
        out
    }
}

#[async_trait]
impl LeaseStore for MemoryLeaseStore {
    async fn acquire(&self, user: &str, lease: &str, max: u32, ttl: Duration) -> Result<bool, StreamError> {
        Ok(self.with_live(user, |leases, now| {
            let room = leases.len() < max as usize;
            if room {
                leases.push((lease.to_owned(), now + ttl));
            }
            room
        }))
    }

    async fn refresh(&self, user: &str, lease: &str, ttl: Duration) -> Result<bool, StreamError> {
        Ok(self.with_live(user, |leases, now| match leases.iter_mut().find(|(id, _)| id == lease) {
            Some((_, expires)) => {
                *expires = now + ttl;
                true
            }
            None => false,
        }))
    }

    async fn release(&self, user: &str, lease: &str) -> Result<(), StreamError> {
        self.with_live(user, |leases, _| leases.retain(|(id, _)| id != lease));
        Ok(())
    }
}
