//! The one way the kernel opens Redis: a reconnecting [`ConnectionManager`] that
//! gives up quickly when Redis is down at start-up (a few seconds, not minutes of
//! the library's default retries), and times out a command that gets no answer.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long one connection attempt may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a command may wait for its answer.
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to `url`.
///
/// # Errors
/// A malformed URL, or Redis unreachable after two retries.
pub(crate) async fn connect(url: &str) -> Result<ConnectionManager, redis::RedisError> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_max_delay(500)
        .set_connection_timeout(CONNECT_TIMEOUT)
        .set_response_timeout(RESPONSE_TIMEOUT);
    ConnectionManager::new_with_config(client, config).await
}
