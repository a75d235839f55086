//! Wakes idle job workers the moment a job reaches Redis, instead of at their next heartbeat.
//!
//! apalis-redis publishes `…:available` only for tasks pushed without a start time, and its
//! push always sets one (now, in whole seconds), so every task lands in the scheduled set
//! that a worker's fetch promotes; nothing tells an idle worker. So whoever pushes (the relay,
//! the reconciler, in any process) publishes on the queue's `…:wake` channel after its
//! transaction commits, and every process listens on a connection of its own (reconnecting
//! when Redis goes away) and wakes its worker. The heartbeat stays the fallback: a message
//! lost while disconnected costs at most one poll interval, as before.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::{Notify, watch};

/// What a worker polls: one item per burst of pushes (wake-ups coalesce while it is busy).
pub(crate) type WakeStream = Pin<Box<dyn Stream<Item = ()> + Send>>;

/// The shared signal between the listener and the workers of this process.
#[derive(Clone, Default)]
pub(crate) struct Wake(Arc<Notify>);

impl Wake {
    /// A fresh stream for one worker generation. `Notify` keeps one permit when nobody waits,
    /// so a push between two polls is not lost.
    pub(crate) fn stream(&self) -> WakeStream {
        Box::pin(futures::stream::unfold(self.0.clone(), |n| async move {
            n.notified().await;
            Some(((), n))
        }))
    }

    fn signal(&self) {
        self.0.notify_one();
    }

    /// Listens on `channel` until `stop`, reconnecting a second after each loss.
    pub(crate) async fn listen(
        self,
        redis_url: String,
        channel: String,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let lost = tokio::select! {
                e = self.listen_once(&redis_url, &channel) => e,
                _ = stop.wait_for(|s| *s) => return,
            };
            tracing::debug!(error = %lost, "job wake-up listener lost Redis; retrying");
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    async fn listen_once(&self, redis_url: &str, channel: &str) -> redis::RedisError {
        let subscribed = async {
            let client = redis::Client::open(redis_url)?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = match subscribed.await {
            Ok(p) => p,
            Err(e) => return e,
        };
        // Whatever was pushed while nobody listened is fetched now rather than at a heartbeat.
        self.signal();
        let mut messages = pubsub.into_on_message();
        while messages.next().await.is_some() {
            self.signal();
        }
        redis::RedisError::from((redis::ErrorKind::Io, "subscription closed"))
    }
}

/// The channel pushes to `config`'s queue are announced on.
pub(crate) fn channel(config: &apalis_redis::Config) -> String {
    format!("{}:wake", config.queue)
}

/// Tells every process's workers that jobs were pushed. A failure only delays them until
/// their next look, so it is logged, not returned.
pub(crate) async fn announce(storage: &mut crate::Storage) {
    let channel = channel(storage.get_config());
    let sent: Result<i64, redis::RedisError> = redis::cmd("PUBLISH")
        .arg(channel)
        .arg("")
        .query_async(storage.get_connection())
        .await;
    if let Err(e) = sent {
        tracing::debug!(error = %e, "could not announce pushed jobs; workers find them at their next look");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_signal_before_anyone_waits_is_kept_and_many_coalesce() {
        let wake = Wake::default();
        let mut stream = wake.stream();
        wake.signal();
        wake.signal();
        assert_eq!(stream.next().await, Some(()));
        let second = tokio::time::timeout(Duration::from_millis(50), stream.next()).await;
        assert!(second.is_err(), "two signals before a poll wake once");
    }

    #[test]
    fn the_channel_is_the_queues_own() {
        let config = apalis_redis::Config::default().queue("p:jobs:notify");
        assert_eq!(channel(&config), "p:jobs:notify:wake");
    }
}
