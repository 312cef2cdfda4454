//! The one way the kernel opens Redis: a reconnecting [`ConnectionManager`] that
//! gives up quickly when Redis is down at start-up (a few seconds, not minutes of
//! the library's default retries), and times out a command that gets no answer.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long one connection attempt may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a command may wait for its answer.
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

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
    conn: ConnectionManager,
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
    pub(crate) async fn connect(url: &str, prefix: &str, store: &str) -> Result<Self, redis::RedisError> {
        Ok(Self { conn: connect_url(url).await?, prefix: format!("{prefix}{store}:") })
    }

    /// The full name of `key`.
    pub(crate) fn key(&self, key: &str) -> String {
        [self.prefix.as_str(), key].concat()
    }

    /// A handle for one command (connection managers are cheap to clone).
    pub(crate) fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }
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
