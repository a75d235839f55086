//! Clinic sign-up on the platform's own site: the clinic is provisioned and its first
//! administrator invited in one transaction, so a failure leaves nothing behind.

use chrono::{DateTime, Utc};
use portal_tenants::{
    DisplayName, HexColor, NewTenant, Provisioner, SenderName, Slug, Tenant, TenantError,
    TimeZoneName,
};

use crate::identity::accounts;
use crate::values::{EmailAddress, PersonName};

/// A parsed sign-up form.
#[derive(Debug, Clone)]
pub struct ClinicSignup {
    pub clinic_name: DisplayName,
    pub slug: Slug,
    pub time_zone: TimeZoneName,
    pub admin_name: PersonName,
    pub admin_email: EmailAddress,
}

/// Colours a new clinic starts with (changed in the branding editor).
const DEFAULT_PRIMARY: &str = "#1d4ed8";
const DEFAULT_ACCENT: &str = "#0f766e";

pub async fn sign_up(
    provisioner: &Provisioner,
    form: ClinicSignup,
    now: DateTime<Utc>,
) -> Result<Tenant, TenantError> {
    let new = NewTenant {
        sender_name: SenderName::from_display_name(&form.clinic_name),
        display_name: form.clinic_name,
        slug: form.slug,
        time_zone: form.time_zone,
        primary_color: HexColor::parse(DEFAULT_PRIMARY)?,
        accent_color: HexColor::parse(DEFAULT_ACCENT)?,
        logo: None,
    };
    let (email, name) = (form.admin_email, form.admin_name);
    provisioner
        .create_with(new, move |tx| {
            Box::pin(async move {
                accounts::invite_first_admin(tx, &email, &name, now)
                    .await
                    .map(|_| ())
                    .map_err(|e| TenantError::Seed(Box::new(e)))
            })
        })
        .await
}

/// How provisioning a claimed sign-up request ended.
#[derive(Debug)]
pub enum Provisioned {
    Done(portal_tenants::TenantId),
    /// The web address belongs to another clinic.
    SlugTaken,
    /// A passing failure (the database, say): try again later.
    Failed(TenantError),
}

/// Provisions a clinic from a claimed request (the worker's side of sign-up). An earlier
/// attempt may have committed and then lost its reply; a taken address whose clinic has this
/// request's administrator is that attempt's clinic, not someone else's.
pub async fn provision(
    provisioner: &Provisioner,
    tenant_db: &portal_tenants::TenantDb,
    registry: &portal_tenants::Registry,
    request: &portal_tenants::signups::SignupRequest,
    now: DateTime<Utc>,
) -> Provisioned {
    let parsed = (
        PersonName::parse(&request.admin_name, "your name"),
        EmailAddress::parse(&request.admin_email),
    );
    let (Ok(admin_name), Ok(admin_email)) = parsed else {
        return Provisioned::Failed(TenantError::Seed("unreadable administrator".into()));
    };
    let form = ClinicSignup {
        clinic_name: request.display_name.clone(),
        slug: request.slug.clone(),
        time_zone: request.time_zone.clone(),
        admin_name,
        admin_email: admin_email.clone(),
    };
    match sign_up(provisioner, form, now).await {
        Ok(t) => Provisioned::Done(t.id()),
        Err(TenantError::SlugTaken(_)) => {
            match ours_already(tenant_db, registry, &request.slug, &admin_email).await {
                Ok(Some(id)) => Provisioned::Done(id),
                Ok(None) => Provisioned::SlugTaken,
                Err(e) => Provisioned::Failed(e),
            }
        }
        Err(e) => Provisioned::Failed(e),
    }
}

async fn ours_already(
    tenant_db: &portal_tenants::TenantDb,
    registry: &portal_tenants::Registry,
    slug: &Slug,
    admin: &EmailAddress,
) -> Result<Option<portal_tenants::TenantId>, TenantError> {
    let Some(tenant) = registry.by_slug(slug.as_str()).await? else {
        return Ok(None);
    };
    let mut tx = tenant_db.begin(&tenant).await?;
    let found = accounts::by_email(&mut tx, admin)
        .await?
        .filter(|a| a.role == crate::identity::Role::ClinicAdmin);
    tx.commit().await?;
    Ok(found.map(|_| tenant.id()))
}
