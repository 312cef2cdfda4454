//! Writes that must land once their store answers again (a job's ack, an idempotency key
//! to forget): tried again with pauses doubling from 100 ms to 2 s, until the next pause
//! would end past a deadline. One policy for the kernel's background retries.

use std::future::Future;
use std::time::Duration;

/// The first pause; each next one doubles, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause.
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Runs `op` until it succeeds, or until the next pause would end more than `within`
/// from now; then returns its last error. `failed` sees each error with the pause before
/// the next try, `None` when it gives up.
pub(crate) async fn until_within<T, E, F, Fut>(
    within: Duration,
    mut op: F,
    mut failed: impl FnMut(&E, Option<Duration>),
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + within;
    let mut pause = FIRST_PAUSE;
    loop {
        match op().await {
            Err(e) if tokio::time::Instant::now() + pause < deadline => {
                failed(&e, Some(pause));
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            Err(e) => {
                failed(&e, None);
                return Err(e);
            }
            done => return done,
        }
    }
}
