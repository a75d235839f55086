use anyhow::Context;
use secrecy::ExposeSecret;

use crate::Config;

/// A name no other worker process shares, so Redis-side bookkeeping never mixes two processes:
/// host and pid, plus the start time's low bits to tell a reused pid apart.
pub fn worker_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".to_owned());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{host}-{}-{:x}", std::process::id(), started & 0xffff_ffff)
}

/// `portal work`: the background worker process. It checks that Redis answers, then runs the
/// job handlers registered in `portal-workers` until shutdown.
pub async fn run(
    config: &Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let client =
        redis::Client::open(config.redis_url.expose_secret()).context("PORTAL_REDIS_URL")?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .context("could not connect to Redis with PORTAL_REDIS_URL")?;
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .context("Redis did not answer PING")?;
    let name = worker_name();
    tracing::info!(worker = %name, prefix = %config.redis_prefix, "worker started");
    portal_workers::run(&name, shutdown).await;
    tracing::info!(worker = %name, "worker stopped");
    Ok(())
}
