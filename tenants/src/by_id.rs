use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use crate::{Registry, Tenant, TenantError, TenantId};

/// Clinics by id, for the job workers: every job names its clinic, and a burst of reminders
/// for one clinic should not look it up once per message. Entries live for `ttl`, so a change
/// (suspension, a new sender name or colour) reaches the workers within that time.
#[derive(Clone)]
pub struct ClinicsById {
    registry: Registry,
    cache: Cache<TenantId, Arc<Tenant>>,
}

impl ClinicsById {
    pub fn new(registry: Registry, ttl: Duration) -> Self {
        Self {
            registry,
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// The clinic, or `None` when it no longer exists (a miss is not kept).
    pub async fn get(&self, id: TenantId) -> Result<Option<Arc<Tenant>>, TenantError> {
        if let Some(t) = self.cache.get(&id).await {
            return Ok(Some(t));
        }
        let Some(t) = self.registry.by_id(id).await? else {
            return Ok(None);
        };
        let t = Arc::new(t);
        self.cache.insert(id, t.clone()).await;
        Ok(Some(t))
    }
}
