//! Wake-ups on Redis: enqueues of due jobs and hand-backs publish on the queue's
//! `wake` channel, which each idle worker subscribes to (see `jobs::wakeups`).

use futures::StreamExt;
use tokio::sync::watch;

use crate::jobs::wakeups::{self, Messages};

/// Forwards the `wake` channel's messages to `tx` until every receiver is gone.
pub(super) async fn listen(client: redis::Client, channel: String, tx: watch::Sender<u64>) {
    wakeups::forward(tx, || {
        let (client, channel) = (client.clone(), channel.clone());
        async move {
            let mut pubsub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
            pubsub.subscribe(&channel).await.map_err(|e| e.to_string())?;
            let messages: Messages = pubsub.into_on_message().map(|_| Ok(())).boxed();
            Ok(Some(messages))
        }
    })
    .await;
}
