//! Clinic sign-up, the worker's side: claims each request the web recorded, provisions the
//! clinic with the owner's credentials (which only workers hold) and its first administrator's
//! invitation, and records the outcome the sign-up page is waiting for. Woken by
//! `NOTIFY portal_signup`, polling as a fallback; a request whose worker died mid-way is taken
//! up again after a while (provisioning is one transaction, so a half-made clinic never is).

use std::sync::Arc;
use std::time::Duration;

use portal_domain::signup::{self, Provisioned};
use portal_tenants::signups;
use portal_tenants::{Provisioner, Registry};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

use crate::Deps;

/// Attempts before a request is given up as failed.
const MAX_ATTEMPTS: i32 = 5;
/// A request `provisioning` this long had a worker that died.
const STALE_SECS: f64 = 300.0;

/// What the worker needs to provision: the owner's pool and a provisioner on it.
#[derive(Clone)]
pub struct Provisioning {
    pub admin: PgPool,
    pub provisioner: Provisioner,
}

pub(crate) async fn run(deps: Arc<Deps>, p: Provisioning, mut stop: watch::Receiver<bool>) {
    let mut listener = PgListener::connect_with(&p.admin).await.ok();
    if let Some(l) = listener.as_mut()
        && l.listen("portal_signup").await.is_err()
    {
        listener = None;
    }
    loop {
        while let Some(()) = once(&deps, &p).await {}
        tokio::select! {
            _ = stop.changed() => return,
            failed = async {
                match listener.as_mut() {
                    Some(l) => l.try_recv().await.is_err(),
                    None => std::future::pending::<bool>().await,
                }
            } => {
                // A broken listening connection: fall back to polling, not to spinning.
                if failed {
                    listener = None;
                }
            }
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// Handles one waiting request; `None` when there was none (or the claim failed).
async fn once(deps: &Deps, p: &Provisioning) -> Option<()> {
    let claimed = match signups::claim_next(&p.admin, STALE_SECS).await {
        Ok(c) => c?,
        Err(e) => {
            tracing::warn!(error = %e, "could not claim a sign-up request");
            return None;
        }
    };
    let registry = Registry::new(deps.pool.clone());
    let outcome = signup::provision(
        &p.provisioner,
        &deps.tenant_db,
        &registry,
        &claimed.request,
        deps.clock.now(),
    )
    .await;
    let recorded = match outcome {
        Provisioned::Done(id) => {
            tracing::info!(tenant = %id, "clinic signed up");
            signups::finish(&p.admin, claimed.id, Ok(id)).await
        }
        Provisioned::SlugTaken => signups::finish(&p.admin, claimed.id, Err("slug_taken")).await,
        Provisioned::Failed(e) if claimed.attempts >= MAX_ATTEMPTS => {
            tracing::error!(error = %e, "sign-up failed for good");
            signups::finish(&p.admin, claimed.id, Err("internal")).await
        }
        Provisioned::Failed(e) => {
            tracing::warn!(error = %e, attempts = claimed.attempts, "sign-up failed; will retry");
            tokio::time::sleep(Duration::from_millis(
                200 * u64::from(claimed.attempts.unsigned_abs()),
            ))
            .await;
            signups::release(&p.admin, claimed.id).await
        }
    };
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "could not record a sign-up's outcome");
    }
    Some(())
}
