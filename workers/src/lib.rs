//! Background work: the outbox relay (PostgreSQL → apalis queues on Redis) and the handlers
//! that run the jobs (email today; SMS, payments and PDFs later). Handlers are idempotent
//! through the delivery log in the control plane, retry with exponential backoff, and leave
//! jobs that keep failing as *dead*, visible to `portal jobs dead` and retried by
//! `portal jobs retry`.

mod autopay;
mod billing;
pub mod dead;
mod delivery;
pub mod documents;
mod handlers;
pub mod mail;
mod notices;
mod payments;
mod reconcile;
mod relay;
mod reminders;
mod results;
mod signups;
pub mod sms;
mod stripe_inbox;
mod texting;
mod wake;

use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use apalis_redis::{ConnectionManager, RedisStorage};
use portal_domain::clock::SharedClock;
use portal_domain::jobs::JobEnvelope;
use portal_tenants::{ClinicsById, TenantDb};
use sqlx::PgPool;

pub use mail::{Mailer, MailerConfig};
pub use portal_domain::links::Links;
pub use signups::Provisioning;
pub use sms::{SmsConfig, SmsSender};

/// How the pipeline runs; built from the process configuration.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub redis_url: String,
    /// Prefix of every Redis key of this deployment (tests use one each).
    pub redis_prefix: String,
    /// Unique per process (host, pid and a random part), as apalis requires.
    pub worker_name: String,
    /// Attempts before a job is declared dead.
    pub max_attempts: u32,
    /// First retry delay; each next one doubles (with jitter), capped at `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Jobs run at once by this process.
    pub concurrency: usize,
    /// How often the relay looks at the outbox when no notification arrives, and how often an
    /// idle worker looks for new tasks in Redis (its heartbeat).
    pub poll_interval: Duration,
    /// A job `queued` this long without being picked up is pushed to Redis again (Redis may
    /// have lost it).
    pub reconcile_after: Duration,
    /// How long a `running` job may go without a sign of life before another worker may take
    /// it over. A live handler renews it every third of that, waits included.
    pub lease: Duration,
}

/// What handlers need; shared by every job this process runs.
pub struct Deps {
    pub pool: PgPool,
    pub tenant_db: TenantDb,
    /// The clinics jobs name, cached briefly.
    pub clinics: ClinicsById,
    pub mailer: Mailer,
    /// The address emails come from.
    pub mailer_from: String,
    pub links: Links,
    pub sms: sms::SmsSender,
    pub clock: SharedClock,
    pub config: PipelineConfig,
    /// Where documents are stored, sealed with each clinic's key.
    pub vault: portal_domain::documents::Vault,
    /// Prints documents to PDF.
    pub renderer: documents::Renderer,
    /// The platform's Stripe client; `None`: no card payments in this deployment.
    pub stripe: Option<portal_stripe::Stripe>,
    /// Clinic sign-up needs the owner's credentials; a process without them provisions
    /// nothing (another worker process must).
    pub provisioning: Option<Provisioning>,
}

fn queue_name(prefix: &str) -> String {
    format!("{prefix}:jobs:notify")
}

/// Runs the relay and this process's job handlers until `shutdown` completes. Redis being
/// down at start or later is survived: jobs wait in the outbox and flow once it is back.
pub async fn run(deps: Deps, shutdown: impl std::future::Future<Output = ()> + Send + 'static) {
    let deps = Arc::new(deps);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    let signups = deps
        .provisioning
        .clone()
        .map(|p| tokio::spawn(signups::run(deps.clone(), p, stop_rx.clone())));
    if signups.is_none() {
        tracing::warn!("no PORTAL_DATABASE_ADMIN_URL: this worker will not provision clinics");
    }

    let storage = loop {
        match connect(&deps.config).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, "Redis unreachable; jobs wait in the outbox, retrying");
                let mut stop = stop_rx.clone();
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    };

    let relay = tokio::spawn(relay::run(
        deps.pool.clone(),
        deps.clock.clone(),
        storage.clone(),
        deps.config.poll_interval,
        stop_rx.clone(),
    ));

    let stripe_sweep = tokio::spawn(payments::sweep(deps.clone(), stop_rx.clone()));

    let wake = wake::Wake::default();
    let listener = tokio::spawn(wake.clone().listen(
        deps.config.redis_url.clone(),
        wake::channel(storage.get_config()),
        stop_rx.clone(),
    ));

    let reconciler = tokio::spawn(reconcile::run(
        deps.pool.clone(),
        storage.clone(),
        deps.config.reconcile_after,
        deps.config.lease,
        stop_rx.clone(),
    ));

    // A worker whose registration Redis lost (a restart without persistence) stops with an
    // error; a fresh one, under a new name, takes its place until shutdown.
    for generation in 0u64.. {
        let worker = WorkerBuilder::new(format!("{}-{generation}", deps.config.worker_name))
            .backend(PollWith::new(
                storage.clone(),
                wake::Rearming(wake.stream()),
            ))
            .data(deps.clone())
            .concurrency(deps.config.concurrency)
            .build(handlers::handle);
        let mut stop = stop_rx.clone();
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
            Ok::<(), std::io::Error>(())
        };
        match worker.run_until(stopped).await {
            Ok(()) => break,
            Err(e) => {
                tracing::error!(error = %e, "job worker stopped with an error; starting a new one")
            }
        }
        if *stop_rx.borrow() {
            break;
        }
        let mut stop = stop_rx.clone();
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => break,
        }
    }
    let _ = relay.await;
    let _ = reconciler.await;
    let _ = listener.await;
    let _ = stripe_sweep.await;
    if let Some(s) = signups {
        let _ = s.await;
    }
}

pub(crate) type Storage = RedisStorage<JobEnvelope, ConnectionManager>;

async fn connect(config: &PipelineConfig) -> Result<Storage, redis::RedisError> {
    let client = apalis_redis::Client::open(config.redis_url.as_str())?;
    let conn = ConnectionManager::new(client).await?;
    // apalis-redis looks for new tasks when a worker falls idle and on every heartbeat; `wake`
    // fetches at once when a task is pushed, so the heartbeat is only the fallback pickup. A
    // worker that misses 10 heartbeats is taken for dead and its in-flight tasks are re-queued
    // (the delivery log keeps that harmless; our own leases take over sooner).
    let cfg = apalis_redis::Config::default()
        .queue(queue_name(&config.redis_prefix))
        .heartbeat_interval(config.poll_interval)
        .missed_heartbeats(10)
        .batch_size(config.concurrency.min(100));
    Ok(RedisStorage::new(conn).with_config(cfg))
}
