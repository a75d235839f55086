use portal_tenants::{MigrationReport, Migrator, ensure_app_role};

use crate::{Config, pools};

/// `portal migrate`: control plane first, then the application role's grants, then every
/// clinic's schema, `parallelism` at a time.
pub async fn run(config: &Config, parallelism: usize) -> anyhow::Result<MigrationReport> {
    let admin = pools::admin_pool(config).await?;
    let migrator = Migrator::new(admin.clone());
    migrator.run_control().await?;
    ensure_app_role(&admin, &config.app_role()?).await?;
    let report = migrator.run_tenants(parallelism).await?;
    Ok(report)
}
