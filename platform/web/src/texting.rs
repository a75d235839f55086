//! What the web needs of the text-message facts kept per number (STOP/START): whether this
//! clinic's texts to a phone are stopped, and undoing that when the patient turns texts on.

use portal_tenants::{Tenant, sms};

use crate::AppState;

/// The number this clinic's texts come from.
pub fn from_number<'a>(state: &'a AppState, tenant: &'a Tenant) -> &'a str {
    tenant
        .sms_number()
        .unwrap_or(state.sms_platform_number.as_str())
}

/// Whether `phone` said STOP to this clinic's sending number.
pub async fn stopped(state: &AppState, tenant: &Tenant, phone: Option<&str>) -> poem::Result<bool> {
    let Some(phone) = phone else { return Ok(false) };
    sms::opted_out(state.registry.pool(), from_number(state, tenant), phone)
        .await
        .map_err(crate::internal)
}

/// The patient asked for texts again: their explicit consent undoes an earlier STOP to this
/// clinic's number.
pub async fn resume(state: &AppState, tenant: &Tenant, phone: Option<&str>) -> poem::Result<()> {
    if let Some(phone) = phone {
        sms::opt_in(state.registry.pool(), from_number(state, tenant), phone)
            .await
            .map_err(crate::internal)?;
    }
    Ok(())
}
