//! Wake-ups for idle workers, for the engines that can push them (Redis pub/sub,
//! PostgreSQL `LISTEN`): each worker subscribes on a connection of its own and sees a
//! counter change per message. A message that arrives while a worker is busy is not
//! lost: the counter has moved, so its next wait returns at once and it claims again.
//! A lost subscription is made again a second later; workers poll meanwhile.

use std::future::Future;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::watch;

/// One subscription: an item per message, an error when the connection is lost.
pub(crate) type Messages = BoxStream<'static, Result<(), String>>;

/// Turns the messages of `subscribe`'s subscriptions into changes of `tx`, until every
/// receiver is gone or `subscribe` says the engine has none (`Ok(None)`).
pub(crate) async fn forward<F, Fut>(tx: watch::Sender<u64>, mut subscribe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<Messages>, String>>,
{
    loop {
        match subscribe().await {
            Ok(Some(mut messages)) => {
                // Jobs stored before the subscription went live: a claim finds them.
                tx.send_modify(|n| *n += 1);
                loop {
                    tokio::select! {
                        item = messages.next() => match item {
                            Some(Ok(())) => tx.send_modify(|n| *n += 1),
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "job wake-ups lost; polling until they are back");
                                break;
                            }
                            None => {
                                tracing::warn!("job wake-ups lost; polling until they are back");
                                break;
                            }
                        },
                        () = tx.closed() => return,
                    }
                }
            }
            Ok(None) => return,
            Err(e) => tracing::warn!(error = %e, "job wake-up subscription failed; polling meanwhile"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = tx.closed() => return,
        }
    }
}
