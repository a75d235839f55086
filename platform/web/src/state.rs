use portal_tenants::{HostResolver, Registry, TenantDb};

/// What handlers share. Cheap to clone: every field is a handle.
#[derive(Clone)]
pub struct AppState {
    pub tenant_db: TenantDb,
    pub registry: Registry,
    pub resolver: HostResolver,
    pub redis: redis::Client,
}
