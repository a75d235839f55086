//! The patient's own choice, per result category, of when a new result is shown to them: at
//! once (the default), or once their clinician has commented or some days have passed,
//! whichever comes first. The clinic never sets it.

use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;

use super::Category;
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::PatientScope;
use crate::ids::PatientId;

/// Allowed waiting periods, in days.
pub const WAIT_DAYS: std::ops::RangeInclusive<i32> = 1..=30;

/// Each category with the patient's waiting period (`None`: shown at once).
pub async fn own(
    tx: &mut TenantTx,
    me: &PatientScope,
) -> Result<Vec<(Category, Option<i32>)>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT category, wait_days FROM result_preferences WHERE patient_id = $1",
        me.patient_id().as_uuid()
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(Category::ALL
        .into_iter()
        .map(|c| {
            let wait = rows
                .iter()
                .find(|r| r.category == c.as_str())
                .map(|r| r.wait_days);
            (c, wait)
        })
        .collect())
}

/// Sets how long the patient waits for results of `category` (`None`: shown at once).
/// Applies to results entered from now on. Audited.
pub async fn set(
    tx: &mut TenantTx,
    me: &PatientScope,
    ctx: &AuditContext,
    category: Category,
    wait_days: Option<i32>,
    now: DateTime<Utc>,
) -> Result<(), super::super::RecordError> {
    let patient = me.patient_id().as_uuid();
    match wait_days {
        Some(d) if !WAIT_DAYS.contains(&d) => {
            return Err(super::super::invalid(
                "wait_days",
                "Choose between 1 and 30 days.",
            ));
        }
        Some(d) => {
            sqlx::query!(
                "INSERT INTO result_preferences (patient_id, category, wait_days, updated_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (patient_id, category)
                 DO UPDATE SET wait_days = EXCLUDED.wait_days, updated_at = EXCLUDED.updated_at",
                patient,
                category.as_str(),
                d,
                now
            )
            .execute(tx.conn())
            .await?;
        }
        None => {
            sqlx::query!(
                "DELETE FROM result_preferences WHERE patient_id = $1 AND category = $2",
                patient,
                category.as_str()
            )
            .execute(tx.conn())
            .await?;
        }
    }
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::ResultPreference, "result_preferences")
            .resource(category.as_str())
            .patient(me.patient_id()),
    )
    .await?;
    Ok(())
}

/// How many days a new result of `category` waits for this patient (`None`: none).
pub(crate) async fn wait_for(
    tx: &mut TenantTx,
    patient: PatientId,
    category: Category,
) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT wait_days FROM result_preferences WHERE patient_id = $1 AND category = $2",
        patient.as_uuid(),
        category.as_str()
    )
    .fetch_optional(tx.conn())
    .await
}
