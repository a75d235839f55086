//! A clinic's branding (name, colours, sender name, logo) lives in the control plane, but the
//! clinic changes it itself: inside its own clinic transaction it records the change in
//! `control.branding_changes`, which PostgreSQL stamps with the acting clinic and applies to
//! that clinic's registry row only. No owner credentials are needed (nor held by the web).

use chrono::{DateTime, Utc};
use portal_tenants::{DisplayName, HexColor, Logo, SenderName, TenantTx};

use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::AdminScope;

/// A new look for the clinic; the logo stays as it is when `None`.
#[derive(Debug, Clone)]
pub struct Branding {
    pub display_name: DisplayName,
    pub primary_color: HexColor,
    pub accent_color: HexColor,
    pub sender_name: SenderName,
    pub logo: Option<Logo>,
}

/// Changes this clinic's branding (audited). Web processes learn of it through the registry's
/// change notification.
pub async fn change(
    tx: &mut TenantTx,
    _admin: &AdminScope,
    ctx: &AuditContext,
    new: &Branding,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO control.branding_changes
             (display_name, primary_color, accent_color, sender_name, logo, logo_type, changed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        new.display_name.as_str(),
        new.primary_color.as_str(),
        new.accent_color.as_str(),
        new.sender_name.as_str(),
        new.logo.as_ref().map(|l| l.bytes.as_slice()),
        new.logo.as_ref().map(|l| l.content_type.as_str()),
        now
    )
    .execute(tx.conn())
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::BrandingUpdate, "clinic"),
    )
    .await
}
