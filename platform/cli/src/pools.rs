use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::Config;

/// The application pool: the unprivileged login role that reaches tenant data only through
/// `TenantDb` transactions.
pub async fn app_pool(config: &Config) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(config.database_pool_size)
        .acquire_timeout(Duration::from_secs(5))
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
