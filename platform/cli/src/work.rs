use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use portal_domain::clock::SharedClock;
use portal_tenants::{ClinicsById, Registry, TenantDb, verify_app_role};
use portal_workers::{Deps, Mailer, MailerConfig, PipelineConfig};
use secrecy::ExposeSecret;

use crate::{Config, pools};

/// A name no other worker process shares, so Redis-side bookkeeping never mixes two processes:
/// host and pid, plus the start time's low bits to tell a reused pid apart.
pub fn worker_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".to_owned());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{host}-{}-{:x}", std::process::id(), started & 0xffff_ffff)
}

/// What the workers need, from the configuration. `public_port` is the web server's real port
/// when it runs in the same process (it may have been bound to port 0).
pub async fn deps(
    config: &Config,
    clock: SharedClock,
    public_port: Option<u16>,
) -> anyhow::Result<Deps> {
    let pool = pools::app_pool(config).await?;
    verify_app_role(&pool).await.map_err(anyhow::Error::msg)?;
    let mailer = Mailer::new(&MailerConfig {
        smtp_url: config
            .smtp_url
            .as_ref()
            .map(|s| s.expose_secret().to_owned()),
        dir: config.mail_dir.clone(),
        from_address: config.mail_from.clone(),
    })
    .map_err(anyhow::Error::msg)?;
    // Emptied on every clinic change (NOTIFY), so a suspension stops sending at once; the
    // minute is the bound when that listening connection is down.
    // Clinic sign-up provisions schemas and roles: the owner's work, done here and never in
    // the web process.
    let provisioning = match config.database_admin_url {
        Some(_) => {
            let admin = pools::admin_pool(config).await?;
            Some(portal_workers::Provisioning {
                provisioner: portal_tenants::Provisioner::new(admin.clone(), config.app_role()?),
                admin,
            })
        }
        None => None,
    };
    let clinics = ClinicsById::new(Registry::new(pool.clone()), Duration::from_secs(60));
    clinics.spawn_invalidation_listener(pool.clone());
    Ok(Deps {
        stripe: config.stripe.as_ref().map(|s| s.client()).transpose()?,
        vault: config.vault().await?,
        // Compiles are CPU-bound: one per core at most, whatever the job concurrency.
        renderer: portal_workers::documents::Renderer::new(
            std::thread::available_parallelism().map_or(1, usize::from),
            config.render_timeout,
        )?,
        tenant_db: TenantDb::new(pool.clone()),
        clinics,
        pool,
        mailer,
        mailer_from: config.mail_from.clone(),
        links: config.links(public_port),
        sms: portal_workers::SmsSender::new(&config.sms).map_err(anyhow::Error::msg)?,
        clock,
        config: PipelineConfig {
            redis_url: config.redis_url.expose_secret().to_owned(),
            redis_prefix: config.redis_prefix.clone(),
            worker_name: worker_name(),
            max_attempts: config.job_max_attempts,
            retry_base: config.job_retry_base,
            retry_cap: Duration::from_secs(600),
            concurrency: config.job_concurrency,
            poll_interval: config.job_poll,
            reconcile_after: config.job_reconcile_after,
            lease: config.job_lease,
        },
        provisioning,
    })
}

/// `portal work`: the relay and the job handlers, until shutdown. Redis need not be up yet:
/// jobs wait in the outbox until it is.
pub async fn run(
    config: &Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let clock: SharedClock = Arc::new(portal_domain::clock::SystemClock);
    let deps = deps(config, clock, None).await.context("worker set-up")?;
    let name = deps.config.worker_name.clone();
    tracing::info!(worker = %name, prefix = %config.redis_prefix, "worker started");
    portal_workers::run(deps, shutdown).await;
    tracing::info!(worker = %name, "worker stopped");
    Ok(())
}
