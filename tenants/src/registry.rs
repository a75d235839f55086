use sqlx::PgPool;

use crate::model::TenantRow;
use crate::{Logo, Slug, Tenant, TenantError, TenantId};

/// Read access to the control plane's clinic registry. Works on the application pool, which
/// may SELECT the registry but not change it.
#[derive(Clone)]
pub struct Registry {
    pool: PgPool,
}

impl Registry {
    /// The pool the registry reads with (the application role's), for the control-plane
    /// stores the web may use: sign-up requests.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn by_slug(&self, slug: &str) -> Result<Option<Tenant>, TenantError> {
        let row = sqlx::query_as!(
            TenantRow,
            r#"SELECT id, slug, display_name, status, schema_name, role_name, time_zone,
                      primary_color, accent_color, sender_name, logo IS NOT NULL AS has_logo,
                      sms_number
               FROM control.tenants WHERE slug = $1"#,
            slug
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Tenant::from))
    }

    /// The clinic with this id (jobs carry ids, never names).
    pub async fn by_id(&self, id: TenantId) -> Result<Option<Tenant>, TenantError> {
        let row = sqlx::query_as!(
            TenantRow,
            r#"SELECT id, slug, display_name, status, schema_name, role_name, time_zone,
                      primary_color, accent_color, sender_name, logo IS NOT NULL AS has_logo,
                      sms_number
               FROM control.tenants WHERE id = $1"#,
            id.as_uuid()
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Tenant::from))
    }

    /// The clinic behind a *verified* custom domain.
    pub async fn by_domain(&self, domain: &str) -> Result<Option<Tenant>, TenantError> {
        let row = sqlx::query_as!(
            TenantRow,
            r#"SELECT t.id, t.slug, t.display_name, t.status, t.schema_name, t.role_name,
                      t.time_zone, t.primary_color, t.accent_color, t.sender_name,
                      t.logo IS NOT NULL AS has_logo, t.sms_number
               FROM control.tenant_domains d JOIN control.tenants t ON t.id = d.tenant_id
               WHERE d.domain = $1 AND d.verified_at IS NOT NULL"#,
            domain
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Tenant::from))
    }

    pub async fn list(&self) -> Result<Vec<Tenant>, TenantError> {
        let rows = sqlx::query_as!(
            TenantRow,
            r#"SELECT id, slug, display_name, status, schema_name, role_name, time_zone,
                      primary_color, accent_color, sender_name, logo IS NOT NULL AS has_logo,
                      sms_number
               FROM control.tenants ORDER BY slug"#
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Tenant::from).collect())
    }

    /// A deployment-wide secret made by the migrations (`control.platform_secrets`).
    pub async fn platform_secret(&self, name: &str) -> Result<Option<Vec<u8>>, TenantError> {
        Ok(sqlx::query_scalar!(
            "SELECT value FROM control.platform_secrets WHERE name = $1",
            name
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The clinic whose own sending number this is (replies to it are that clinic's).
    pub async fn by_sms_number(&self, number: &str) -> Result<Option<Tenant>, TenantError> {
        let row = sqlx::query_as!(
            TenantRow,
            r#"SELECT id, slug, display_name, status, schema_name, role_name, time_zone,
                      primary_color, accent_color, sender_name, logo IS NOT NULL AS has_logo,
                      sms_number
               FROM control.tenants WHERE sms_number = $1"#,
            number
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Tenant::from))
    }

    /// The clinic whose Stripe connected account this is (its webhook events are that
    /// clinic's).
    pub async fn by_stripe_account(&self, account: &str) -> Result<Option<Tenant>, TenantError> {
        let row = sqlx::query_as!(
            TenantRow,
            r#"SELECT t.id, t.slug, t.display_name, t.status, t.schema_name, t.role_name,
                      t.time_zone, t.primary_color, t.accent_color, t.sender_name,
                      t.logo IS NOT NULL AS has_logo, t.sms_number
               FROM control.stripe_accounts a JOIN control.tenants t ON t.id = a.tenant_id
               WHERE a.account_id = $1"#,
            account
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Tenant::from))
    }

    pub async fn require(&self, slug: &Slug) -> Result<Tenant, TenantError> {
        self.by_slug(slug.as_str())
            .await?
            .ok_or_else(|| TenantError::UnknownSlug(slug.to_string()))
    }

    pub async fn logo(&self, tenant: TenantId) -> Result<Option<Logo>, TenantError> {
        let row = sqlx::query!(
            r#"SELECT logo AS "logo!", logo_type AS "logo_type!"
               FROM control.tenants WHERE id = $1 AND logo IS NOT NULL"#,
            tenant.as_uuid()
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| Logo {
            content_type: r.logo_type,
            bytes: r.logo,
        }))
    }
}
