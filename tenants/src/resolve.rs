use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use sqlx::PgPool;
use sqlx::postgres::PgListener;

use crate::{Registry, Tenant, TenantError};

/// What a request's Host header names.
#[derive(Debug, Clone)]
pub enum Site {
    /// The platform's own site (the base domain or `www.` on it).
    Platform,
    /// A clinic's site, active or suspended.
    Clinic(Arc<Tenant>),
    /// Nothing we serve: answered with a 404, never with a default clinic.
    Unknown,
}

/// Maps hosts to clinics: `<slug>.<base domain>` or a verified custom domain. Results (misses
/// too) are cached briefly and dropped as soon as the control plane announces a change.
#[derive(Clone)]
pub struct HostResolver {
    base_domain: Arc<str>,
    registry: Registry,
    cache: Cache<String, Option<Arc<Tenant>>>,
}

/// Channel the control plane's trigger notifies on any clinic or domain change.
pub(crate) const CHANGED_CHANNEL: &str = "portal_tenant_changed";

impl HostResolver {
    pub fn new(registry: Registry, base_domain: &str) -> Self {
        Self {
            base_domain: base_domain.to_ascii_lowercase().into(),
            registry,
            cache: Cache::builder()
                .max_capacity(100_000)
                // Changes arrive by NOTIFY (and a dropped listener empties the cache), so the
                // TTL is only a safety net; a short one makes busy platforms re-query the
                // registry for every clinic every minute.
                .time_to_live(Duration::from_secs(300))
                .build(),
        }
    }

    pub fn base_domain(&self) -> &str {
        &self.base_domain
    }

    pub async fn resolve(&self, host_header: &str) -> Result<Site, TenantError> {
        let host = normalize_host(host_header);
        let base = &*self.base_domain;
        if host == base || host.strip_prefix("www.") == Some(base) {
            return Ok(Site::Platform);
        }
        if host.is_empty() || host.len() > 253 {
            return Ok(Site::Unknown);
        }
        let registry = self.registry.clone();
        let key = host.clone();
        let found = self
            .cache
            .try_get_with(key, async move {
                let tenant = match host.strip_suffix(base).and_then(|p| p.strip_suffix('.')) {
                    Some(label) if !label.contains('.') => registry.by_slug(label).await?,
                    Some(_) => None,
                    None => registry.by_domain(&host).await?,
                };
                Ok::<_, TenantError>(tenant.map(Arc::new))
            })
            .await
            .map_err(|e: Arc<TenantError>| match Arc::try_unwrap(e) {
                Ok(e) => e,
                Err(shared) => TenantError::Database(sqlx::Error::Protocol(shared.to_string())),
            })?;
        Ok(found.map_or(Site::Unknown, Site::Clinic))
    }

    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }

    /// Listens for control-plane changes and empties the cache on each. If the listening
    /// connection drops, notifications may have been missed, so the cache is emptied then too.
    pub fn spawn_invalidation_listener(&self, pool: PgPool) -> tokio::task::JoinHandle<()> {
        let resolver = self.clone();
        tokio::spawn(async move {
            loop {
                match listen(&pool, &resolver).await {
                    Ok(()) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "tenant change listener lost its connection")
                    }
                }
                resolver.invalidate_all();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    }
}

async fn listen(pool: &PgPool, resolver: &HostResolver) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANGED_CHANNEL).await?;
    // Anything that changed before we were listening is not in the cache's favour either.
    resolver.invalidate_all();
    while listener.try_recv().await?.is_some() {
        resolver.invalidate_all();
    }
    Ok(())
}

/// Lowercases and strips the port and any trailing dot: `Sunrise.Localhost:8080` → `sunrise.localhost`.
fn normalize_host(raw: &str) -> String {
    let raw = raw.trim();
    let without_port = if raw.starts_with('[') {
        raw.split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default()
    } else {
        raw.rsplit_once(':').map_or(raw, |(h, _)| h).to_owned()
    };
    without_port.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::normalize_host;

    #[test]
    fn hosts_are_normalized() {
        assert_eq!(
            normalize_host("Sunrise.Localhost:8080"),
            "sunrise.localhost"
        );
        assert_eq!(normalize_host("portal.clinic.com."), "portal.clinic.com");
        assert_eq!(normalize_host("[::1]:8080"), "[::1]");
        assert_eq!(normalize_host("localhost"), "localhost");
    }
}
