//! Which clinic a connected Stripe account belongs to, cached: Stripe's webhook names the
//! account on every event, and a burst of payments should not read the registry once per
//! delivery. An account is stamped with its clinic when it is connected and never moves, so
//! an entry cannot point at the wrong clinic; entries still live at most `ttl` (and a clinic
//! change empties the cache, as for [`crate::ClinicsById`]) so what is cached of the clinic
//! itself stays fresh. A miss (an account no clinic has) is not kept.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use crate::{Registry, Tenant, TenantError};

#[derive(Clone)]
pub struct ClinicsByStripeAccount {
    registry: Registry,
    cache: Cache<String, Arc<Tenant>>,
}

impl ClinicsByStripeAccount {
    pub fn new(registry: Registry, ttl: Duration) -> Self {
        Self {
            registry,
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// Empties the cache on every clinic change notification (see
    /// [`crate::ClinicsById::spawn_invalidation_listener`]).
    pub fn spawn_invalidation_listener(&self, pool: sqlx::PgPool) -> tokio::task::JoinHandle<()> {
        let cache = self.cache.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = crate::by_id::listen(&pool, || cache.invalidate_all()).await {
                    tracing::warn!(error = %e, "clinic change listener lost its connection");
                }
                cache.invalidate_all();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    }

    /// The clinic of a connected account, or `None` when no clinic has it.
    pub async fn get(&self, account: &str) -> Result<Option<Arc<Tenant>>, TenantError> {
        if let Some(t) = self.cache.get(account).await {
            return Ok(Some(t));
        }
        let Some(t) = self.registry.by_stripe_account(account).await? else {
            return Ok(None);
        };
        let t = Arc::new(t);
        self.cache.insert(account.to_owned(), t.clone()).await;
        Ok(Some(t))
    }
}
