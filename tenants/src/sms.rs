//! Text-message facts that belong to a phone number, not to any clinic's patient record:
//! STOP and START replies (per sending number and phone), and which clinic last texted a phone
//! from a number (so a reply to a shared number reaches it). Read and written with the
//! application role; clinic roles cannot see them.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::{Registry, Tenant, TenantError, TenantId};

/// Records a STOP from `phone` to `from_number`: nothing more goes to that phone from it.
pub async fn opt_out(
    pool: &PgPool,
    from_number: &str,
    phone: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO control.sms_opt_outs (from_number, phone, at) VALUES ($1, $2, $3)
         ON CONFLICT (from_number, phone) DO NOTHING",
        from_number,
        phone,
        at
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Undoes a STOP (a START reply, or the patient turning texts on again).
pub async fn opt_in(pool: &PgPool, from_number: &str, phone: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "DELETE FROM control.sms_opt_outs WHERE from_number = $1 AND phone = $2",
        from_number,
        phone
    )
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn opted_out(pool: &PgPool, from_number: &str, phone: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM control.sms_opt_outs WHERE from_number = $1 AND phone = $2)
           AS "e!""#,
        from_number,
        phone
    )
    .fetch_one(pool)
    .await
}

/// The clinic a reply from `phone` to `to_number` is for: the clinic whose own number it is,
/// else (a shared number) the clinic that last texted that phone from it.
pub async fn route_reply(
    registry: &Registry,
    to_number: &str,
    phone: &str,
) -> Result<Option<Tenant>, TenantError> {
    if let Some(t) = registry.by_sms_number(to_number).await? {
        return Ok(Some(t));
    }
    let last = sqlx::query_scalar!(
        "SELECT tenant_id FROM control.sms_last_sender WHERE from_number = $1 AND phone = $2",
        to_number,
        phone
    )
    .fetch_optional(registry.pool())
    .await?;
    match last {
        Some(id) => registry.by_id(TenantId::from_uuid(id)).await,
        None => Ok(None),
    }
}
