//! The one way the kernel opens Redis: a reconnecting [`ConnectionManager`] that
//! gives up quickly when Redis is down at start-up (a few seconds, not minutes of
//! the library's default retries), and times out a command that gets no answer.
//!
//! The stores of the throttle, the rate limit, idempotency and the stream leases
//! reach Redis through a [`Keyspace`], whose connection sits behind a breaker: a
//! command gets [`STORE_RESPONSE_TIMEOUT`] to answer, and after a failure to reach
//! Redis every command of that keyspace fails at once; each [`COOL_DOWN`] a `PING`
//! in the background probes Redis again (an answer closes the breaker), so no
//! request waits on a reconnect to a dead Redis. A dead Redis thus costs the
//! requests in flight when it died one failure within the timeout, and the others
//! an immediate one; each store then
//! does what it documents (the rate limit and idempotency let the request through,
//! the leases refuse the stream). The job queue's connection is a [`GuardedConn`]
//! too, with [`QUEUE_RESPONSE_TIMEOUT`] (its scripts move batches of jobs): an
//! enqueue with Redis down fails within that, then at once until a probe answers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

/// How long one connection attempt may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a command may wait for its answer.
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a command of a [`Keyspace`] store may wait for its answer (a reconnect
/// included): the store's work is one round trip to a nearby Redis.
pub(crate) const STORE_RESPONSE_TIMEOUT: Duration = Duration::from_millis(250);
/// How long a command of the job queue may wait for its answer (a reconnect
/// included): an enqueue or a claim of a batch is one script on a nearby Redis.
pub(crate) const QUEUE_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a [`GuardedConn`]'s commands fail at once after Redis could not be reached,
/// before a background `PING` probes it again.
pub(crate) const COOL_DOWN: Duration = Duration::from_secs(1);

/// A client for `url` whose connections turn TCP keepalive on (the system's timings),
/// as redis 0.27 did by default; 1.x leaves it off unless asked.
///
/// # Errors
/// A malformed URL.
pub(crate) fn client(url: &str) -> Result<redis::Client, redis::RedisError> {
    use redis::io::tcp::{socket2::TcpKeepalive, TcpSettings};
    use redis::IntoConnectionInfo as _;
    let tcp = TcpSettings::default().set_keepalive(TcpKeepalive::new());
    redis::Client::open(url.into_connection_info()?.set_tcp_settings(tcp))
}

/// Connects to `url`.
///
/// # Errors
/// A malformed URL, or Redis unreachable after two retries.
pub(crate) async fn connect(url: &str) -> Result<ConnectionManager, redis::RedisError> {
    let client = client(url)?;
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        // Two waits of ~500 ms (with jitter), as with redis 0.27, whose backoff began
        // above its 500 ms cap; 1.x begins at `min_delay` (100 ms by default).
        .set_min_delay(Duration::from_millis(500))
        .set_max_delay(Duration::from_millis(500))
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    ConnectionManager::new_with_config(client, config).await
}

/// Checks that `url` is a `redis://` (or `rediss://`, `unix://`) URL, then connects.
///
/// # Errors
/// As [`connect`]; a malformed URL is an `InvalidClientConfig` error.
pub(crate) async fn connect_url(url: &str) -> Result<ConnectionManager, redis::RedisError> {
    if redis::parse_redis_url(url).is_none() {
        return Err((redis::ErrorKind::InvalidClientConfig, "not a redis:// URL").into());
    }
    connect(url).await
}

/// `d` in whole milliseconds, at least 1 (what `PX` and `PEXPIRE` take).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A connection and the key prefix of one store (`<redis.key_prefix><store>:`):
/// what the Redis stores of the throttle, the rate limit, idempotency and the
/// stream leases share.
#[derive(Clone)]
pub(crate) struct Keyspace {
    conn: GuardedConn,
    prefix: String,
}

impl std::fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyspace").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl Keyspace {
    /// Connects to `url` (see [`connect_url`]); keys are `prefix` + `store` + `:` + key.
    ///
    /// # Errors
    /// As [`connect_url`].
    pub(crate) async fn connect(url: &str, prefix: &str, store: &'static str) -> Result<Self, redis::RedisError> {
        let conn = GuardedConn::connect(url, store, STORE_RESPONSE_TIMEOUT).await?;
        Ok(Self { conn, prefix: format!("{prefix}{store}:") })
    }

    /// The full name of `key`.
    pub(crate) fn key(&self, key: &str) -> String {
        [self.prefix.as_str(), key].concat()
    }

    /// A handle for one command (cheap to clone), behind the keyspace's breaker.
    pub(crate) fn conn(&self) -> GuardedConn {
        self.conn.clone()
    }
}

/// A [`ConnectionManager`] behind a [`Breaker`]: what [`Keyspace::conn`] hands out,
/// and the job queue's connection.
#[derive(Clone)]
pub(crate) struct GuardedConn {
    conn: ConnectionManager,
    breaker: Arc<Breaker>,
    timeout: Duration,
}

impl GuardedConn {
    /// Connects to `url` (see [`connect_url`]); a command waits at most `timeout` for
    /// its answer, and `store` names the connection in the breaker's log lines.
    ///
    /// # Errors
    /// As [`connect_url`].
    pub(crate) async fn connect(url: &str, store: &'static str, timeout: Duration) -> redis::RedisResult<Self> {
        Ok(Self { conn: connect_url(url).await?, breaker: Arc::new(Breaker::new(store)), timeout })
    }

    /// Runs `attempt` on the connection under the connection's timeout and tells the
    /// breaker whether Redis answered; with the breaker open, fails at once (and, once
    /// per cool-down, starts a probe in the background).
    async fn run<T, F, Fut>(&self, attempt: F) -> redis::RedisResult<T>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        if self.breaker.admit()? {
            // The probe is a PING of its own, off the request's path: waiting for a
            // reconnect to a dead Redis (up to the timeout, each cool-down, per store)
            // would put that wait in the p99 of every instance during an outage.
            tokio::spawn(probe(self.conn.clone(), self.breaker.clone(), self.timeout));
            return Err(failing_fast());
        }
        let result = answered_in_time(self.timeout, attempt(self.conn.clone())).await;
        match &result {
            Err(e) if unreachable(e) => self.breaker.opened(e),
            _ => self.breaker.closed(),
        }
        result
    }
}

/// Asks Redis whether it answers again, and tells the breaker.
async fn probe(conn: ConnectionManager, breaker: Arc<Breaker>, timeout: Duration) {
    let ping = |mut conn: ConnectionManager| async move { redis::cmd("PING").query_async::<()>(&mut conn).await };
    let mut result = answered_in_time(timeout, ping(conn.clone())).await;
    // A connection manager whose last reconnect failed answers the next command with
    // that old failure and only then reconnects: a probe refused so is tried once more.
    if result.as_ref().is_err_and(RedisError::is_connection_refusal) {
        result = answered_in_time(timeout, ping(conn)).await;
    }
    match &result {
        Err(e) if unreachable(e) => breaker.opened(e),
        _ => breaker.closed(),
    }
}

/// The error of a command refused by an open breaker (a store sees Redis as unreachable).
fn failing_fast() -> RedisError {
    std::io::Error::new(std::io::ErrorKind::NotConnected, "redis unreachable: failing fast until a probe answers")
        .into()
}

async fn answered_in_time<T>(
    timeout: Duration,
    command: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    match tokio::time::timeout(timeout, command).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "redis did not answer in time").into()),
    }
}

impl ConnectionLike for GuardedConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.run(move |mut conn| async move { conn.req_packed_command(cmd).await }))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(self.run(move |mut conn| async move { conn.req_packed_commands(pipeline, offset, count).await }))
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

/// Whether Redis is taken as reachable: closed (commands go through), or open until
/// `retry_at`, when one caller starts a probe and the next probe is pushed
/// [`COOL_DOWN`] further (so a probe that never finishes blocks nothing).
#[derive(Debug)]
struct Breaker {
    store: &'static str,
    retry_at: Mutex<Option<Instant>>,
}

impl Breaker {
    fn new(store: &'static str) -> Self {
        Self { store, retry_at: Mutex::new(None) }
    }

    /// Whether a command may go: `Ok(false)` when closed, `Ok(true)` when the caller
    /// is to start the probe of an open breaker (and fail its own command);
    /// errors at once otherwise.
    fn admit(&self) -> redis::RedisResult<bool> {
        let mut retry_at = self.retry_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match *retry_at {
            None => Ok(false),
            Some(at) if Instant::now() >= at => {
                *retry_at = Some(Instant::now() + COOL_DOWN);
                Ok(true)
            }
            Some(_) => Err(failing_fast()),
        }
    }

    fn opened(&self, e: &RedisError) {
        let mut retry_at = self.retry_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if retry_at.is_none() {
            tracing::warn!(store = self.store, error = %e, "redis unreachable; its commands fail at once until a probe answers");
        }
        *retry_at = Some(Instant::now() + COOL_DOWN);
    }

    fn closed(&self) {
        let mut retry_at = self.retry_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if retry_at.take().is_some() {
            tracing::info!(store = self.store, "redis reachable again");
        }
    }
}

/// Whether `e` says Redis could not be reached (refused, dropped, timed out), not
/// that it refused a command.
pub(crate) fn unreachable(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
}

/// A readiness check called `redis` that pings Redis at `url` on a connection of
/// its own, and reports how long the answer took.
///
/// # Errors
/// As [`connect_url`].
pub(crate) async fn readiness_check(url: &str) -> Result<crate::observability::health::HealthCheck, redis::RedisError> {
    let conn = connect_url(url).await?;
    Ok(crate::observability::health::HealthCheck::new("redis", move || {
        let mut conn = conn.clone();
        async move {
            let pong: String =
                redis::cmd("PING").query_async(&mut conn).await.map_err(|e| format!("redis error: {e}"))?;
            Ok(format!("redis {}", pong.to_lowercase()))
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_breaker_fails_at_once_then_lets_one_probe_through() {
        let breaker = Breaker::new("test");
        assert!(matches!(breaker.admit(), Ok(false)), "closed: commands go");
        let down: RedisError = std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into();
        assert!(unreachable(&down));
        breaker.opened(&down);
        let refused = breaker.admit().expect_err("open: fails at once");
        assert!(unreachable(&refused), "a store sees the fast failure as Redis being unreachable");
        // The cool-down is over: one probe goes, the commands beside it still fail.
        *breaker.retry_at.lock().unwrap() = Some(Instant::now());
        assert!(matches!(breaker.admit(), Ok(true)), "the probe");
        assert!(breaker.admit().is_err(), "only one probe per cool-down");
        breaker.closed();
        assert!(matches!(breaker.admit(), Ok(false)), "an answered probe closes it");
        let refusal: RedisError = (redis::ErrorKind::Client, "NOSCRIPT").into();
        assert!(!unreachable(&refusal), "a refused command says Redis is there");
    }
}
