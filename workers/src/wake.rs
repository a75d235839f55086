//! Wakes idle job workers as soon as a job reaches Redis, instead of at their next heartbeat.
//!
//! apalis-redis publishes `…:available` only for tasks pushed without a start time, and its
//! push always sets one (now, in whole seconds), so every task lands in the scheduled set
//! that a worker's fetch promotes; nothing tells an idle worker. So whoever pushes (the relay,
//! the reconciler, in any process) publishes on the queue's `…:wake` channel once its
//! transaction has committed, and every process listens on a connection of its own
//! (reconnecting when Redis goes away, pinging to notice a connection that died silently) and
//! wakes its worker. The heartbeat stays the fallback: a wake-up lost costs at most one poll
//! interval, as before.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use apalis::prelude::{PollSnapshot, PollStrategy};
use futures::{Stream, StreamExt};
use tokio::sync::{Notify, watch};

/// A wake-up comes again this long after the last of a burst: a worker's fetch already on its
/// way when a push landed (and so empty of it) took the first one, and the echo fetches again.
const ECHO: Duration = Duration::from_millis(20);

/// How often the listener makes sure its connection still answers.
const PING_EVERY: Duration = Duration::from_secs(30);
const PING_LIMIT: Duration = Duration::from_secs(5);

/// What a worker polls: one item per burst of pushes (they coalesce while it is busy), and
/// one more [`ECHO`] after it.
pub(crate) type WakeStream = Pin<Box<dyn Stream<Item = ()> + Send>>;

/// The shared signal between the listener and the workers of this process.
#[derive(Clone, Default)]
pub(crate) struct Wake(Arc<Notify>);

impl Wake {
    /// A fresh stream for one worker generation. `Notify` keeps one permit when nobody waits,
    /// so a push between two polls is not lost.
    pub(crate) fn stream(&self) -> WakeStream {
        Box::pin(futures::stream::unfold(
            (self.0.clone(), false),
            |(n, echo_due)| async move {
                if !echo_due {
                    n.notified().await;
                    return Some(((), (n, true)));
                }
                tokio::select! {
                    () = n.notified() => Some(((), (n, true))),
                    () = tokio::time::sleep(ECHO) => Some(((), (n, false))),
                }
            },
        ))
    }

    fn signal(&self) {
        self.0.notify_one();
    }

    /// Listens on `channel` until `stop`, reconnecting a second after each loss. The first
    /// loss after a working spell is a warning; the retries after it are not repeated.
    pub(crate) async fn listen(
        self,
        redis_url: String,
        channel: String,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut worked = true;
        loop {
            let (lost, subscribed) = tokio::select! {
                r = self.listen_once(&redis_url, &channel) => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            if worked || subscribed {
                tracing::warn!(error = %lost, "job wake-up listener lost Redis; jobs start at the workers' next look until it is back");
            } else {
                tracing::debug!(error = %lost, "job wake-up listener still without Redis");
            }
            worked = false;
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// One connection's life: why it ended, and whether it had subscribed.
    async fn listen_once(&self, redis_url: &str, channel: &str) -> (redis::RedisError, bool) {
        let subscribed = async {
            let client = redis::Client::open(redis_url)?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let (mut sink, mut messages) = match subscribed.await {
            Ok(p) => p.split(),
            Err(e) => return (e, false),
        };
        // Whatever was pushed while nobody listened is fetched now rather than at a heartbeat.
        self.signal();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.reset();
        loop {
            tokio::select! {
                m = messages.next() => match m {
                    Some(_) => self.signal(),
                    None => {
                        let closed = (redis::ErrorKind::Io, "subscription closed");
                        return (closed.into(), true);
                    }
                },
                _ = ping.tick() => {
                    let answered =
                        tokio::time::timeout(PING_LIMIT, sink.ping::<redis::Value>()).await;
                    match answered {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return (e, true),
                        Err(_) => {
                            let silent = (redis::ErrorKind::Io, "no answer to a ping");
                            return (silent.into(), true);
                        }
                    }
                }
            }
        }
    }
}

/// The worker's poll strategy: the wake-ups, re-arming themselves. apalis's `PollWith` drops
/// what a strategy yields and polls the queue; when that poll finds nothing at once, the
/// stream would not be polled again until something else woke the worker, and later wake-ups
/// would wake nobody. Asking for one more poll when a wake-up is taken avoids that (one
/// fetch more per wake-up, never a loop: the stream yields once per signal or echo).
pub(crate) struct Rearming(pub(crate) WakeStream);

impl PollStrategy for Rearming {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        let polled = self.0.poll_next_unpin(cx);
        if let Poll::Ready(Some(())) = polled {
            cx.waker().wake_by_ref();
        }
        polled
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
    async fn a_burst_wakes_once_and_once_more_after_it() {
        let wake = Wake::default();
        let mut stream = wake.stream();
        wake.signal();
        wake.signal();
        assert_eq!(
            stream.next().await,
            Some(()),
            "a signal before the poll is kept"
        );
        let echo = tokio::time::timeout(Duration::from_secs(5), stream.next()).await;
        assert_eq!(echo, Ok(Some(())), "the echo");
        let quiet = tokio::time::timeout(ECHO * 5, stream.next()).await;
        assert!(quiet.is_err(), "nothing more until the next signal");
        wake.signal();
        assert_eq!(stream.next().await, Some(()));
    }

    #[test]
    fn the_channel_is_the_queues_own() {
        let config = apalis_redis::Config::default().queue("p:jobs:notify");
        assert_eq!(channel(&config), "p:jobs:notify:wake");
    }
}
