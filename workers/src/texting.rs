//! Every text goes out through [`send`]: from the clinic's own number or the platform's shared
//! one; never to a phone that said STOP to that number (control.sms_opt_outs, per number and
//! phone, not per patient); at most [`DAILY_LIMIT`] a day to one phone; and recording which
//! clinic last texted the phone from that number, so a reply to a shared number finds it.

use chrono::Utc;
use portal_tenants::Tenant;

use crate::Deps;
use crate::handlers::JobError;

/// Texts a phone may get in one (UTC) day, from all clinics together.
pub const DAILY_LIMIT: i32 = 10;

/// What became of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Texted {
    Sent,
    /// The phone said STOP to the number it would come from.
    OptedOut,
    /// The phone already got its texts for today.
    DailyLimit,
}

/// The number a clinic's texts come from.
pub(crate) fn from_number<'a>(deps: &'a Deps, tenant: &'a Tenant) -> &'a str {
    tenant
        .sms_number()
        .unwrap_or_else(|| deps.sms.platform_number())
}

pub(crate) async fn send(
    deps: &Deps,
    tenant: &Tenant,
    phone: &str,
    body: &str,
    key: &str,
) -> Result<Texted, JobError> {
    let from = from_number(deps, tenant);
    let now = deps.clock.now();
    let day = now.with_timezone(&Utc).date_naive();
    let state = sqlx::query!(
        r#"SELECT EXISTS (SELECT 1 FROM control.sms_opt_outs WHERE from_number = $1 AND phone = $2)
                    AS "opted_out!",
                  COALESCE((SELECT sent FROM control.sms_daily WHERE phone = $2 AND day = $3), 0)
                    AS "sent_today!""#,
        from,
        phone,
        day
    )
    .fetch_one(&deps.pool)
    .await?;
    if state.opted_out {
        return Ok(Texted::OptedOut);
    }
    if state.sent_today >= DAILY_LIMIT {
        tracing::warn!(tenant = %tenant.id(), "daily text limit reached for a phone; not sent");
        return Ok(Texted::DailyLimit);
    }
    deps.sms.send(from, phone, body, key).await?;
    // The text is out: failing to record it must not fail the job (a retry would send it
    // again under a new code or count); the worst case is one uncounted text.
    let recorded = sqlx::query!(
        "WITH d AS (
             INSERT INTO control.sms_daily (phone, day, sent) VALUES ($2, $4, 1)
             ON CONFLICT (phone, day) DO UPDATE SET sent = sms_daily.sent + 1)
         INSERT INTO control.sms_last_sender (from_number, phone, tenant_id, sent_at)
         VALUES ($1, $2, $3, $5)
         ON CONFLICT (from_number, phone) DO UPDATE
             SET tenant_id = EXCLUDED.tenant_id, sent_at = EXCLUDED.sent_at",
        from,
        phone,
        tenant.id().as_uuid(),
        day,
        now
    )
    .execute(&deps.pool)
    .await;
    if let Err(e) = recorded {
        tracing::warn!(tenant = %tenant.id(), error = %e, "a sent text was not recorded");
    }
    Ok(Texted::Sent)
}
