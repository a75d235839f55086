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
