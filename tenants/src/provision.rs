use futures::future::BoxFuture;
use sqlx::{AssertSqlSafe, PgPool};

use crate::migrate::{TENANT_MIGRATIONS, apply_pending, clinic_control_grants};
use crate::sql::ident;
use crate::{
    DisplayName, DomainName, HexColor, Logo, Registry, SenderName, Slug, Tenant, TenantError,
    TenantId, TenantStatus, TenantTx, TimeZoneName,
};

/// What a new clinic needs; every field already parsed.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub slug: Slug,
    pub display_name: DisplayName,
    pub time_zone: TimeZoneName,
    pub primary_color: HexColor,
    pub accent_color: HexColor,
    pub sender_name: SenderName,
    pub logo: Option<Logo>,
}

/// Control-plane changes: creating clinics, opening and closing them, their domains.
/// Runs on the admin pool (the role that owns the schemas and may create roles).
#[derive(Clone)]
pub struct Provisioner {
    admin: PgPool,
    app_role: String,
}

impl Provisioner {
    /// `app_role` is the application's login role; it becomes a member of each clinic's role
    /// so it can act as that clinic inside a transaction (and only there: it is NOINHERIT).
    pub fn new(admin: PgPool, app_role: impl Into<String>) -> Self {
        Self {
            admin,
            app_role: app_role.into(),
        }
    }

    fn registry(&self) -> Registry {
        Registry::new(self.admin.clone())
    }

    /// Creates the clinic's registry row, NOLOGIN role and schema, and migrates the schema, all
    /// in one transaction: a failure anywhere leaves nothing behind, so a retry is safe.
    pub async fn create(&self, new: NewTenant) -> Result<Tenant, TenantError> {
        self.create_with(new, |_| Box::pin(async { Ok(()) })).await
    }

    /// Like [`Provisioner::create`], and `seed` runs in the same transaction acting as the new
    /// clinic (e.g. its first administrator and their invitation): either all of it exists
    /// afterwards or none of it does.
    pub async fn create_with<F>(&self, new: NewTenant, seed: F) -> Result<Tenant, TenantError>
    where
        F: for<'t> FnOnce(&'t mut TenantTx) -> BoxFuture<'t, Result<(), TenantError>>,
    {
        let id = TenantId::new();
        let role = id.role_name();
        let schema = new.slug.schema_name();
        let mut tx = self.admin.begin().await?;

        sqlx::query!(
            r#"INSERT INTO control.tenants
                 (id, slug, display_name, schema_name, role_name, time_zone,
                  primary_color, accent_color, sender_name, logo, logo_type)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"#,
            id.as_uuid(),
            new.slug.as_str(),
            new.display_name.as_str(),
            schema,
            role,
            new.time_zone.as_str(),
            new.primary_color.as_str(),
            new.accent_color.as_str(),
            new.sender_name.as_str(),
            new.logo.as_ref().map(|l| l.bytes.as_slice()),
            new.logo.as_ref().map(|l| l.content_type.as_str()),
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            // The schema name derives from the slug, so either clash means the slug is taken.
            TenantError::on_unique(e, &["tenants_slug_key", "tenants_schema_name_key"], || {
                TenantError::SlugTaken(new.slug.to_string())
            })
        })?;

        let (role_q, schema_q, app_q) = (ident(&role)?, ident(&schema)?, ident(&self.app_role)?);
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE ROLE {role_q} NOLOGIN NOINHERIT;
             CREATE SCHEMA {schema_q};
             REVOKE ALL ON SCHEMA {schema_q} FROM PUBLIC;
             GRANT USAGE ON SCHEMA {schema_q} TO {role_q};
             GRANT {role_q} TO {app_q};"
        )))
        .execute(&mut *tx)
        .await?;
        // Grants on the shared outbox change its ACL row; concurrent provisionings would race
        // on it, so they take turns (for the few milliseconds left of this transaction).
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('portal.control_grants'))")
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(AssertSqlSafe(clinic_control_grants(&role_q)))
            .execute(&mut *tx)
            .await?;

        apply_pending(&mut tx, id, &schema, &role, 0).await?;
        let mut tx = TenantTx::scope(tx, id, &role, &schema).await?;
        seed(&mut tx).await?;
        tx.commit().await?;
        tracing::info!(tenant = %id, slug = %new.slug, "provisioned clinic");
        self.registry().require(&new.slug).await
    }

    pub async fn set_status(
        &self,
        slug: &Slug,
        status: TenantStatus,
    ) -> Result<Tenant, TenantError> {
        let updated = sqlx::query!(
            "UPDATE control.tenants SET status = $2, updated_at = now() WHERE slug = $1",
            slug.as_str(),
            status.as_str()
        )
        .execute(&self.admin)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(TenantError::UnknownSlug(slug.to_string()));
        }
        self.registry().require(slug).await
    }

    /// Replaces the clinic's name and branding (the logo only when one is given).
    pub async fn update_branding(
        &self,
        slug: &Slug,
        new: &NewTenant,
    ) -> Result<Tenant, TenantError> {
        let updated = sqlx::query!(
            r#"UPDATE control.tenants
               SET display_name = $2, time_zone = $3, primary_color = $4, accent_color = $5,
                   sender_name = $6, logo = COALESCE($7, logo), logo_type = COALESCE($8, logo_type),
                   updated_at = now()
               WHERE slug = $1"#,
            slug.as_str(),
            new.display_name.as_str(),
            new.time_zone.as_str(),
            new.primary_color.as_str(),
            new.accent_color.as_str(),
            new.sender_name.as_str(),
            new.logo.as_ref().map(|l| l.bytes.as_slice()),
            new.logo.as_ref().map(|l| l.content_type.as_str()),
        )
        .execute(&self.admin)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(TenantError::UnknownSlug(slug.to_string()));
        }
        self.registry().require(slug).await
    }

    /// Gives the clinic its own text-message number (E.164), or takes it away (`None`: it texts
    /// from the platform's shared number again).
    pub async fn set_sms_number(
        &self,
        slug: &Slug,
        number: Option<&str>,
    ) -> Result<Tenant, TenantError> {
        let updated = sqlx::query!(
            "UPDATE control.tenants SET sms_number = $2, updated_at = now() WHERE slug = $1",
            slug.as_str(),
            number
        )
        .execute(&self.admin)
        .await
        .map_err(|e| {
            TenantError::on_unique(e, &["tenants_sms_number_key"], || {
                TenantError::SmsNumberTaken(number.unwrap_or_default().to_owned())
            })
        })?;
        if updated.rows_affected() == 0 {
            return Err(TenantError::UnknownSlug(slug.to_string()));
        }
        self.registry().require(slug).await
    }

    /// Registers a custom domain, not yet routed: it routes once verified.
    pub async fn add_domain(&self, slug: &Slug, domain: &DomainName) -> Result<(), TenantError> {
        let tenant = self.registry().require(slug).await?;
        sqlx::query!(
            "INSERT INTO control.tenant_domains (domain, tenant_id) VALUES ($1, $2)",
            domain.as_str(),
            tenant.id().as_uuid()
        )
        .execute(&self.admin)
        .await
        .map_err(|e| {
            TenantError::on_unique(e, &["tenant_domains_pkey"], || {
                TenantError::DomainTaken(domain.as_str().to_owned())
            })
        })?;
        Ok(())
    }

    /// Marks a domain verified (the operator has checked its DNS points at the platform).
    pub async fn verify_domain(&self, slug: &Slug, domain: &DomainName) -> Result<(), TenantError> {
        let tenant = self.registry().require(slug).await?;
        let updated = sqlx::query!(
            r#"UPDATE control.tenant_domains SET verified_at = COALESCE(verified_at, now())
               WHERE domain = $1 AND tenant_id = $2"#,
            domain.as_str(),
            tenant.id().as_uuid()
        )
        .execute(&self.admin)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(TenantError::UnknownDomain(domain.as_str().to_owned()));
        }
        Ok(())
    }

    /// The highest tenant migration version this build knows.
    pub fn latest_version() -> i64 {
        TENANT_MIGRATIONS
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or(0)
    }
}
