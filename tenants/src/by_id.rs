use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use crate::{Registry, Tenant, TenantError, TenantId};

/// Clinics by id, for the job workers: every job names its clinic, and a burst of reminders
/// for one clinic should not look it up once per message. A change to any clinic (suspension,
/// a new sender name or colour) empties the cache through the same `NOTIFY` the web listens
/// to ([`ClinicsById::spawn_invalidation_listener`]); entries also live at most `ttl`, for when
/// that connection is down.
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

    /// Empties the cache on every clinic change notification (and whenever the listening
    /// connection drops, since changes may have been missed).
    pub fn spawn_invalidation_listener(&self, pool: sqlx::PgPool) -> tokio::task::JoinHandle<()> {
        let cache = self.cache.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = listen(&pool, || cache.invalidate_all()).await {
                    tracing::warn!(error = %e, "clinic change listener lost its connection");
                }
                cache.invalidate_all();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    }

    /// The clinic read from the registry now (and cached): for a decision that must not rest
    /// on a stale entry, such as holding a job because the clinic looked suspended.
    pub async fn fresh(&self, id: TenantId) -> Result<Option<Arc<Tenant>>, TenantError> {
        self.cache.invalidate(&id).await;
        self.get(id).await
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

/// Listens for clinic changes and calls `changed` on each (and once on connecting, since
/// changes may have been missed while not listening).
pub(crate) async fn listen(pool: &sqlx::PgPool, changed: impl Fn()) -> Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(crate::resolve::CHANGED_CHANNEL).await?;
    changed();
    while listener.try_recv().await?.is_some() {
        changed();
    }
    Ok(())
}
