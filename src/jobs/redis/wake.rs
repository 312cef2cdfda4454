//! Wake-ups for idle workers: enqueues of due jobs and hand-backs publish on the
//! queue's `wake` channel; each worker subscribes on its own connection and sees a
//! counter change. A message published while a worker is busy is not lost: the counter
//! has moved, so its next wait returns at once and it claims again.

use std::time::Duration;

use tokio::sync::watch;

/// Turns the `wake` channel's messages into changes of `tx`, until every receiver is
/// gone; resubscribes after a lost connection (workers poll meanwhile).
pub(super) async fn listen(client: redis::Client, channel: String, tx: watch::Sender<u64>) {
    use futures::StreamExt;
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    // Jobs enqueued before the subscription went live: a claim finds them.
                    tx.send_modify(|n| *n += 1);
                    let mut messages = pubsub.into_on_message();
                    loop {
                        tokio::select! {
                            msg = messages.next() => match msg {
                                Some(_) => tx.send_modify(|n| *n += 1),
                                None => break,
                            },
                            () = tx.closed() => return,
                        }
                    }
                    tracing::warn!("job wake-up subscription lost; polling until it is back");
                }
                Err(e) => tracing::warn!(error = %e, "job wake-up subscription failed; polling meanwhile"),
            },
            Err(e) => tracing::warn!(error = %e, "job wake-up subscription failed; polling meanwhile"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = tx.closed() => return,
        }
    }
}
