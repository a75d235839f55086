//! Messages the job pipeline gave up on (out of attempts or refused for good), as the clinic's
//! staff see them: which patient, which visit, by which channel, and why — so someone can call
//! the patient instead. Read through `control.clinic_job_deliveries`, which shows a clinic's
//! role its own rows only.

use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;

use crate::audit::{self, Action, AuditContext};
use crate::identity::scope::SchedulingScope;
use crate::ids::{AppointmentId, JobId, PatientId};

/// How far back the list reaches.
pub const WINDOW_DAYS: i64 = 30;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Undelivered {
    pub job_id: JobId,
    /// What the message was, in words ("Reminder 24 h before, by text").
    pub what: String,
    pub patient_id: Option<PatientId>,
    /// The patient's (or, for staff invitations, the person's) name.
    pub who: Option<String>,
    pub appointment_id: Option<AppointmentId>,
    /// The visit (or offered time) the message was about.
    pub visit_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    /// A category and code, never message content.
    pub reason: Option<String>,
    pub failed_at: DateTime<Utc>,
}

fn describe(kind: &str, channel: Option<&str>, hours: Option<i32>, change: Option<&str>) -> String {
    let by = match channel {
        Some("sms") => "by text",
        _ => "by email",
    };
    match kind {
        "reminder.appointment" => match hours {
            Some(h) => format!("Reminder {h} h before, {by}"),
            None => format!("Reminder, {by}"),
        },
        "email.appointment" => match change {
            Some("moved") => "Visit moved notice, by email".to_owned(),
            Some("cancelled") => "Cancellation notice, by email".to_owned(),
            _ => "Booking confirmation, by email".to_owned(),
        },
        "waitlist.offer" => "Earlier-time offer".to_owned(),
        "sms.verify_phone" => "Code to confirm a mobile number, by text".to_owned(),
        "email.invitation" => "Portal invitation, by email".to_owned(),
        "email.password_reset" => "Password reset link, by email".to_owned(),
        other => other.to_owned(),
    }
}

/// Undelivered messages of the last `WINDOW_DAYS`, newest first. Audited: it names patients.
pub async fn list(
    tx: &mut TenantTx,
    _staff: &SchedulingScope,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<Vec<Undelivered>, sqlx::Error> {
    let since = now - chrono::Duration::days(WINDOW_DAYS);
    let rows = sqlx::query!(
        r#"SELECT d.job_id AS "job_id!", d.kind AS "kind!", d.attempts AS "attempts!",
                  d.last_error, d.updated_at AS "failed_at!",
                  d.payload->>'channel' AS channel,
                  (d.payload->>'hours_before')::int AS hours_before,
                  d.payload->>'change' AS change,
                  a.id AS "appointment_id?",
                  COALESCE(a.starts_at, o.starts_at) AS visit_at,
                  COALESCE(pa.id, po.id, u.patient_id) AS patient_id,
                  COALESCE(pa.given_name || ' ' || pa.family_name,
                           po.given_name || ' ' || po.family_name, u.display_name) AS who
           FROM control.clinic_job_deliveries d
           LEFT JOIN appointments a ON a.id = (d.payload->>'appointment_id')::uuid
           LEFT JOIN patients pa ON pa.id = a.patient_id
           LEFT JOIN waitlist_offers o ON o.id = (d.payload->>'offer_id')::uuid
           LEFT JOIN waitlist_entries e ON e.id = o.entry_id
           LEFT JOIN patients po ON po.id = e.patient_id
           LEFT JOIN users u ON u.id = (d.payload->>'user_id')::uuid
           WHERE d.status = 'dead' AND d.updated_at >= $1
           ORDER BY d.updated_at DESC
           LIMIT 500"#,
        since
    )
    .fetch_all(tx.conn())
    .await?;
    audit::record_list(
        tx,
        ctx,
        now,
        Action::UndeliveredList,
        "job_delivery",
        rows.iter()
            .filter_map(|r| r.patient_id.map(PatientId::from_uuid)),
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Undelivered {
            job_id: JobId::from_uuid(r.job_id),
            what: describe(
                &r.kind,
                r.channel.as_deref(),
                r.hours_before,
                r.change.as_deref(),
            ),
            patient_id: r.patient_id.map(PatientId::from_uuid),
            who: r.who,
            appointment_id: r.appointment_id.map(AppointmentId::from_uuid),
            visit_at: r.visit_at,
            attempts: r.attempts,
            reason: r.last_error,
            failed_at: r.failed_at,
        })
        .collect())
}

/// How many messages failed in the window, for a banner on the schedule (not audited: a count
/// names no one).
pub async fn count(tx: &mut TenantTx, now: DateTime<Utc>) -> Result<i64, sqlx::Error> {
    let since = now - chrono::Duration::days(WINDOW_DAYS);
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM control.clinic_job_deliveries
           WHERE status = 'dead' AND updated_at >= $1"#,
        since
    )
    .fetch_one(tx.conn())
    .await
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn messages_are_described_in_words() {
        assert_eq!(
            describe("reminder.appointment", Some("sms"), Some(24), None),
            "Reminder 24 h before, by text"
        );
        assert_eq!(
            describe("email.appointment", None, None, Some("cancelled")),
            "Cancellation notice, by email"
        );
        assert_eq!(
            describe("waitlist.offer", None, None, None),
            "Earlier-time offer"
        );
    }
}
