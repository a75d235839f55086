use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};

use crate::Config;

/// A pooled connection idle for longer than this is pinged before it is handed out.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(10);

/// The application pool: the unprivileged login role that reaches tenant data only through
/// `TenantDb` transactions.
///
/// sqlx pings every connection before handing it out by default: one more round trip on every
/// transaction (a booking, a reminder's three steps). Connections in steady use are known
/// good, so only one that sat idle for a while is checked; a connection broken in between
/// fails its one request and is replaced.
pub async fn app_pool(config: &Config) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(config.database_pool_size)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_WHEN_IDLE_FOR {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(config.database_options()?)
        .await
        .context("could not connect to PostgreSQL with PORTAL_DATABASE_URL")
}

/// The admin pool, for control-plane changes: a few connections are plenty.
pub async fn admin_pool(config: &Config) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(config.admin_options()?)
        .await
        .context("could not connect to PostgreSQL with PORTAL_DATABASE_ADMIN_URL")
}
